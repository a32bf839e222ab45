//! A file holding a bare access token (e.g. from `gcloud auth print-access-token`), re-read
//! on every use so it can be replaced while a run goes on. For local runs and the demo.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::clock::Clock;
use super::{AccessToken, AuthError, Link, TokenSource};
use crate::secret::Secret;

pub struct StaticTokenFile {
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl StaticTokenFile {
    pub fn new(path: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self { path, clock }
    }
}

#[async_trait]
impl TokenSource for StaticTokenFile {
    async fn token(&self) -> Result<AccessToken, AuthError> {
        let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
            AuthError::broken(
                Link::AccessTokenFile,
                format!("cannot read {}: {e}", self.path.display()),
                Some("write a token into it, e.g. `gcloud auth print-access-token > FILE`".into()),
            )
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(AuthError::broken(
                Link::AccessTokenFile,
                format!("{} is empty", self.path.display()),
                Some("write a token into it, e.g. `gcloud auth print-access-token > FILE`".into()),
            ));
        }
        // Its lifetime is unknown; callers re-read it for every connection anyway.
        Ok(AccessToken { token: Secret::new(token), expires_at: self.clock.now() + Duration::from_secs(300) })
    }
}
