//! Access tokens for every Google call, from Workload Identity Federation (the pod's
//! projected token → STS → service-account impersonation) or, for local runs, a static
//! token file. A small [`TokenSource`] trait is the seam; caching and refresh wrap it.
//!
//! Every failure is an [`AuthError`] that names the link of the chain that broke.

pub mod cache;
mod call;
pub mod clock;
pub mod credentials;
pub mod credfile;
pub mod diagnose;
pub mod external;
pub mod impersonate;
pub mod jwt;
pub mod member;
pub mod oauth;
pub mod static_file;
pub mod sts;
pub mod subject;
mod subject_exec;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::config::{CredentialsFrom, GoogleConfig};
use crate::describe::Diagnosis;
use crate::secret::Secret;

/// The scope requested for BigQuery work: cloud-platform covers BigQuery REST, the Storage
/// Write API and IAM Credentials alike.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// An OAuth access token and when it stops working.
#[derive(Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: SystemTime,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_at", &chrono::DateTime::<chrono::Utc>::from(self.expires_at))
            .finish()
    }
}

/// Gives an access token valid for at least a little while.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> Result<AccessToken, AuthError>;
}

/// The links of the credential chain, in the order they are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    CredentialConfig,
    SubjectToken,
    StsExchange,
    Impersonation,
    AccessTokenFile,
    OauthToken,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::CredentialConfig => "credential config",
            Link::SubjectToken => "subject token",
            Link::StsExchange => "STS token exchange",
            Link::Impersonation => "service account impersonation",
            Link::AccessTokenFile => "access token file",
            Link::OauthToken => "OAuth token endpoint",
        }
    }
}

/// A failure of one link of the chain: the problem, and apart from it the fix ([`Diagnosis`]).
#[derive(Debug)]
pub enum AuthError {
    /// A permanent failure of one link, with what is wrong and how to fix it.
    Broken { link: Link, problem: String, fix: Option<String> },
    /// A failure that may pass (network, 5xx, 429); retried before it is reported.
    Transient { link: Link, problem: String, attempts: u32 },
}

impl Diagnosis for AuthError {
    fn problem(&self) -> String {
        match self {
            AuthError::Broken { link, problem, .. } => format!("{} failed: {problem}", link.name()),
            AuthError::Transient { link, problem, attempts } => {
                format!("{} failed: {problem} (temporary; retried {attempts} times)", link.name())
            }
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            AuthError::Broken { fix, .. } => fix.clone(),
            AuthError::Transient { link, .. } => Some(format!(
                "a network or service failure: check that the pod can reach {} over HTTPS (NAT or proxy in private \
                 subnets), then retry",
                match link {
                    Link::OauthToken => "oauth2.googleapis.com",
                    Link::Impersonation => "iamcredentials.googleapis.com",
                    _ => "sts.googleapis.com and iamcredentials.googleapis.com",
                }
            )),
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::describe::render(self, f)
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    pub fn broken(link: Link, problem: impl Into<String>, fix: Option<String>) -> Self {
        AuthError::Broken { link, problem: problem.into(), fix }
    }

    pub fn link(&self) -> Link {
        match self {
            AuthError::Broken { link, .. } | AuthError::Transient { link, .. } => *link,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Transient { .. })
    }
}

/// Builds the token source the config asks for, wrapped in the refreshing cache.
pub fn from_config(config: &GoogleConfig, http: reqwest::Client) -> Result<Arc<dyn TokenSource>, AuthError> {
    let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
    let policy = config.endpoint_policy();
    let inner: Arc<dyn TokenSource> = match &config.credentials {
        // Re-read on every call and never cached: the file is the cache.
        CredentialsFrom::AccessTokenFile(path) => {
            return Ok(Arc::new(static_file::StaticTokenFile::new(path.clone(), clock)));
        }
        CredentialsFrom::File(configured) => {
            let path = credential_path(configured.as_ref())?;
            let text = credfile::read(&path, credfile::origin(configured.as_ref()))?;
            from_text(&path, &text, &policy, config.retry, http, clock.clone())?
        }
    };
    Ok(Arc::new(cache::CachedTokenSource::new(inner, clock)))
}

/// The uncached token source for a credential file, by its `type`.
pub fn from_file(
    path: &std::path::Path,
    policy: &crate::trust::EndpointPolicy,
    retry: crate::retry::Policy,
    http: reqwest::Client,
    clock: Arc<dyn clock::Clock>,
) -> Result<Arc<dyn TokenSource>, AuthError> {
    let text = credfile::read(path, "the credential file")?;
    from_text(path, &text, policy, retry, http, clock)
}

/// As [`from_file`], for text already read.
pub fn from_text(
    path: &std::path::Path,
    text: &str,
    policy: &crate::trust::EndpointPolicy,
    retry: crate::retry::Policy,
    http: reqwest::Client,
    clock: Arc<dyn clock::Clock>,
) -> Result<Arc<dyn TokenSource>, AuthError> {
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
    Ok(match kind.as_deref() {
        Some("service_account") => {
            Arc::new(oauth::OauthToken::service_account(path, text, policy, http, clock)?.with_retry(retry))
        }
        Some("authorized_user") => {
            Arc::new(oauth::OauthToken::authorized_user(path, text, policy, http, clock)?.with_retry(retry))
        }
        // Everything else, including unreadable JSON, gets external_account's detailed errors.
        _ => Arc::new(
            external::ExternalAccount::new(credentials::parse(path, text)?, policy, http, clock)?.with_retry(retry),
        ),
    })
}

/// The credential file, in the order Google's libraries look: the configured path,
/// `$GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's application default credentials.
pub fn credential_path(configured: Option<&PathBuf>) -> Result<PathBuf, AuthError> {
    if let Some(p) = configured {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let gcloud = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))
        .map(|d| d.join("application_default_credentials.json"));
    match gcloud {
        Some(p) if p.is_file() => Ok(p),
        _ => Err(AuthError::broken(
            Link::CredentialConfig,
            "no Google credentials: google.credentials is not set, GOOGLE_APPLICATION_CREDENTIALS is \
             not set, and there are no gcloud application default credentials",
            Some(
                "in the pod, mount the credential config written by `aurora2bq cred-config` (or gcloud's \
                 create-cred-config) and set GOOGLE_APPLICATION_CREDENTIALS to its path; locally, run \
                 `gcloud auth application-default login`"
                    .into(),
            ),
        )),
    }
}
