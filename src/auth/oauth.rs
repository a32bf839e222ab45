//! Credentials for local runs, as Google's libraries read them: a service-account key file
//! (a self-signed JWT exchanged at the OAuth token endpoint) and gcloud's application default
//! credentials (`authorized_user`, a refresh token). The pod path is `external_account`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use serde::Deserialize;

use super::clock::Clock;
use super::{AccessToken, AuthError, CLOUD_PLATFORM_SCOPE, Link, TokenSource, call};
use crate::retry::Policy;
use crate::secret::Secret;
use crate::trust::{self, EndpointPolicy, Service};

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key_id: Option<String>,
    private_key: String,
    token_uri: Option<String>,
    universe_domain: Option<String>,
}

#[derive(Deserialize)]
struct UserFile {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token_uri: Option<String>,
    universe_domain: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct OauthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

enum Grant {
    ServiceAccount { email: String, key_id: Option<String>, key: Arc<RsaKeyPair> },
    User { client_id: String, client_secret: Secret, refresh_token: Secret },
}

/// A service-account key or an authorized user, refreshed at Google's token endpoint.
pub struct OauthToken {
    grant: Grant,
    token_uri: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    retry: Policy,
}

fn bad(path: &Path, problem: impl Into<String>, fix: &str) -> AuthError {
    AuthError::broken(Link::CredentialConfig, format!("{}: {}", path.display(), problem.into()), Some(fix.into()))
}

impl OauthToken {
    pub fn service_account(
        path: &Path,
        text: &str,
        policy: &EndpointPolicy,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        const FIX: &str = "download a new key: gcloud iam service-accounts keys create key.json --iam-account=EMAIL";
        let f: KeyFile =
            serde_json::from_str(text).map_err(|e| bad(path, format!("not a service-account key: {e}"), FIX))?;
        let der = pem_body(&f.private_key).ok_or_else(|| bad(path, "private_key is not a PEM key", FIX))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| bad(path, format!("private_key is not an RSA PKCS#8 key: {e}"), FIX))?;
        let token_uri = checked_uri(path, policy, f.universe_domain.as_deref(), f.token_uri)?;
        let grant = Grant::ServiceAccount { email: f.client_email, key_id: f.private_key_id, key: Arc::new(key) };
        Ok(Self { grant, token_uri, http, clock, retry: Policy::STANDARD })
    }

    pub fn authorized_user(
        path: &Path,
        text: &str,
        policy: &EndpointPolicy,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        const FIX: &str = "run `gcloud auth application-default login` again";
        let f: UserFile =
            serde_json::from_str(text).map_err(|e| bad(path, format!("not gcloud user credentials: {e}"), FIX))?;
        let token_uri = checked_uri(path, policy, f.universe_domain.as_deref(), f.token_uri)?;
        let grant = Grant::User {
            client_id: f.client_id,
            client_secret: Secret::new(f.client_secret),
            refresh_token: Secret::new(f.refresh_token),
        };
        Ok(Self { grant, token_uri, http, clock, retry: Policy::STANDARD })
    }

    pub fn with_retry(mut self, retry: Policy) -> Self {
        self.retry = retry;
        self
    }

    /// The self-signed assertion of the JWT bearer grant (RFC 7523), valid for an hour.
    fn assertion(&self, email: &str, key_id: Option<&str>, key: &RsaKeyPair) -> Result<Secret, AuthError> {
        let now = self.clock.now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(k) = key_id {
            header["kid"] = k.into();
        }
        let claims = serde_json::json!({
            "iss": email, "scope": CLOUD_PLATFORM_SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600,
        });
        let input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| AuthError::broken(Link::CredentialConfig, "signing the key's assertion failed", None))?;
        Ok(Secret::new(format!("{input}.{}", b64.encode(sig))))
    }
}

#[async_trait]
impl TokenSource for OauthToken {
    async fn token(&self) -> Result<AccessToken, AuthError> {
        let form: Vec<(&str, String)> = match &self.grant {
            Grant::ServiceAccount { email, key_id, key } => vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".into()),
                ("assertion", self.assertion(email, key_id.as_deref(), key)?.expose().to_owned()),
            ],
            Grant::User { client_id, client_secret, refresh_token } => vec![
                ("grant_type", "refresh_token".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose().to_owned()),
                ("refresh_token", refresh_token.expose().to_owned()),
            ],
        };
        let started = self.clock.now();
        let (status, body) =
            call::send(Link::OauthToken, &self.retry, || self.http.post(&self.token_uri).form(&form)).await?;
        if !status.is_success() {
            let (code, desc) = serde_json::from_str::<OauthError>(&body)
                .map(|e| (e.error, e.error_description))
                .unwrap_or_else(|_| (status.to_string(), crate::http::snippet(&body)));
            let fix = match &self.grant {
                Grant::ServiceAccount { email, .. } => format!(
                    "the key may have been deleted or disabled: list keys with `gcloud iam service-accounts keys list --iam-account={email}`"
                ),
                Grant::User { .. } => "run `gcloud auth application-default login` again".into(),
            };
            return Err(AuthError::broken(
                Link::OauthToken,
                format!("token endpoint answered {code}: \"{desc}\""),
                Some(fix),
            ));
        }
        let t: TokenResponse = serde_json::from_str(&body)
            .map_err(|e| AuthError::broken(Link::OauthToken, format!("unreadable token response: {e}"), None))?;
        let secs = t.expires_in.filter(|s| *s > 0).unwrap_or(3600) as u64;
        Ok(AccessToken { token: Secret::new(t.access_token), expires_at: started + Duration::from_secs(secs) })
    }
}

fn checked_uri(
    path: &Path,
    policy: &EndpointPolicy,
    universe: Option<&str>,
    uri: Option<String>,
) -> Result<String, AuthError> {
    const FIX: &str = "use the file Google wrote, unchanged";
    policy.check_universe(universe).map_err(|p| bad(path, p, FIX))?;
    let uri = uri.unwrap_or_else(|| format!("https://oauth2.{}/token", policy.universe));
    // Old key files name accounts.google.com: Google's token endpoint in Google's universe.
    if policy.universe.as_ref() == trust::DEFAULT_UNIVERSE && uri.starts_with("https://accounts.google.com/") {
        return Ok(uri);
    }
    trust::check(policy, Service::Oauth2, "token_uri", &uri).map(|_| uri).map_err(|p| bad(path, p, FIX))
}

/// The DER bytes of a PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok().filter(|d| !d.is_empty())
}
