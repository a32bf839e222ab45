//! Access tokens for every Google call, from Workload Identity Federation (the pod's
//! projected token → STS → service-account impersonation) or, for local runs, a static
//! token file. A small [`TokenSource`] trait is the seam; caching and refresh wrap it.
//!
//! Every failure is an [`AuthError`] that names the link of the chain that broke.

mod call;
pub mod cache;
pub mod clock;
pub mod credentials;
pub mod endpoints;
pub mod external;
pub mod hints;
pub mod impersonate;
pub mod jwt;
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
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::CredentialConfig => "credential config",
            Link::SubjectToken => "subject token",
            Link::StsExchange => "STS token exchange",
            Link::Impersonation => "service account impersonation",
            Link::AccessTokenFile => "access token file",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A permanent failure of one link, with what is wrong and how to fix it.
    #[error("{} failed: {problem}{}", link.name(), fix.as_ref().map(|f| format!("\n  fix: {f}")).unwrap_or_default())]
    Broken { link: Link, problem: String, fix: Option<String> },
    /// A failure that may pass (network, 5xx, 429); retried before it is reported.
    #[error("{} failed: {problem} (temporary; retried {attempts} times)", link.name())]
    Transient { link: Link, problem: String, attempts: u32 },
}

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
pub fn from_config(
    config: &GoogleConfig,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenSource>, AuthError> {
    let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
    match &config.credentials {
        CredentialsFrom::AccessTokenFile(path) => {
            Ok(Arc::new(static_file::StaticTokenFile::new(path.clone(), clock)))
        }
        CredentialsFrom::File(path) => {
            let path = credential_path(path.as_ref())?;
            let creds = credentials::load(&path)?;
            let policy = endpoints::Policy { allow_insecure: config.allow_insecure_endpoints };
            let inner = external::ExternalAccount::new(creds, policy, http, clock.clone())?;
            Ok(Arc::new(cache::CachedTokenSource::new(Arc::new(inner), clock)))
        }
    }
}

/// The credential file: the configured path, else `$GOOGLE_APPLICATION_CREDENTIALS`.
pub fn credential_path(configured: Option<&PathBuf>) -> Result<PathBuf, AuthError> {
    if let Some(p) = configured {
        return Ok(p.clone());
    }
    match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(AuthError::broken(
            Link::CredentialConfig,
            "no Google credentials: GOOGLE_APPLICATION_CREDENTIALS is not set and the config has \
             no google.credentials",
            Some(
                "mount the credential config written by `gcloud iam workload-identity-pools \
                 create-cred-config` and set GOOGLE_APPLICATION_CREDENTIALS to its path"
                    .into(),
            ),
        )),
    }
}
