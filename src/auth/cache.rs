//! Caches the chain's final token and refreshes it ahead of expiry, one refresh at a time,
//! keeping the old token in service while a refresh fails (docs/architecture.md, "Refresh").

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::clock::Clock;
use super::{AccessToken, AuthError, TokenSource};

/// Refresh this long before expiry: Google's Rust and Go libraries use 225–240 s, long
/// enough that a slow STS + IAM round trip with retries finishes before the old token dies.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(240);
/// Spread over this much more, so many pods started together do not refresh together.
pub const REFRESH_JITTER: Duration = Duration::from_secs(30);
/// After a failed refresh with a still-valid token, wait this long before trying again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

struct Cached {
    token: AccessToken,
    /// When to start refreshing.
    refresh_at: SystemTime,
}

pub struct CachedTokenSource {
    inner: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<Cached>>,
    /// Held while a refresh runs: callers that need a new token wait here, then find it
    /// in `cached`; only one refresh reaches the network.
    refreshing: tokio::sync::Mutex<()>,
}

impl CachedTokenSource {
    pub fn new(inner: Arc<dyn TokenSource>, clock: Arc<dyn Clock>) -> Self {
        Self { inner, clock, cached: Mutex::new(None), refreshing: tokio::sync::Mutex::new(()) }
    }

    /// The cached token if it does not need refreshing yet.
    fn fresh(&self, now: SystemTime) -> Option<AccessToken> {
        let guard = self.cached.lock().expect("token cache lock");
        guard.as_ref().filter(|c| now < c.refresh_at).map(|c| c.token.clone())
    }

    /// The cached token if it has not expired, fresh or not.
    fn unexpired(&self, now: SystemTime) -> Option<AccessToken> {
        let guard = self.cached.lock().expect("token cache lock");
        guard.as_ref().filter(|c| now < c.token.expires_at).map(|c| c.token.clone())
    }

    fn store(&self, token: AccessToken, now: SystemTime) {
        let lifetime = token.expires_at.duration_since(now).unwrap_or_default();
        // A token shorter-lived than the margin is refreshed at half its life instead.
        let margin = if lifetime > REFRESH_MARGIN * 2 {
            REFRESH_MARGIN + REFRESH_JITTER.mul_f64(fastrand::f64())
        } else {
            lifetime / 2
        };
        let refresh_at = token.expires_at - margin;
        *self.cached.lock().expect("token cache lock") = Some(Cached { token, refresh_at });
    }

    fn postpone(&self, now: SystemTime) {
        if let Some(c) = self.cached.lock().expect("token cache lock").as_mut() {
            c.refresh_at = (now + RETRY_AFTER_FAILURE).min(c.token.expires_at);
        }
    }
}

#[async_trait]
impl TokenSource for CachedTokenSource {
    async fn token(&self) -> Result<AccessToken, AuthError> {
        if let Some(t) = self.fresh(self.clock.now()) {
            return Ok(t);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Someone else may have refreshed while this caller waited.
        if let Some(t) = self.fresh(self.clock.now()) {
            return Ok(t);
        }
        match self.inner.token().await {
            Ok(t) => {
                self.store(t.clone(), self.clock.now());
                Ok(t)
            }
            Err(e) => {
                let now = self.clock.now();
                match self.unexpired(now) {
                    Some(old) => {
                        tracing::warn!(error = %e, "token refresh failed; the current token is still valid and stays in use");
                        self.postpone(now);
                        Ok(old)
                    }
                    None => Err(e),
                }
            }
        }
    }
}
