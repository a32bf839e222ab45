//! The AWS side of the pod's identity, for RDS IAM database authentication: the IRSA
//! web-identity token (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`) → AWS STS
//! `AssumeRoleWithWebIdentity` → temporary credentials (cached, refreshed before they
//! expire) → a SigV4-presigned RDS auth token, used as the database password. A token is
//! valid for 15 minutes, so each new connection signs its own.
//!
//! Where the web-identity token may go is decided by aurora2bq's configuration alone: an
//! AWS STS host over HTTPS (or loopback under the development switch), never a URL from the
//! environment such as `AWS_ENDPOINT_URL_STS`.

mod rds_token;
mod sts;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::describe::Diagnosis;
use crate::secret::Secret;

pub use rds_token::presign;
pub use sts::Credentials;

pub use crate::config::IamConfig;

/// One link of the AWS chain, in the order they are crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsLink {
    /// Region, role and token file: what IRSA injects into the pod.
    Environment,
    /// The projected web-identity token file.
    WebIdentityToken,
    /// STS AssumeRoleWithWebIdentity: the role's trust policy and the account's OIDC provider.
    AssumeRole,
    /// Signing the RDS auth token.
    Sign,
}

impl AwsLink {
    pub fn label(self) -> &'static str {
        match self {
            AwsLink::Environment => "AWS environment (IRSA)",
            AwsLink::WebIdentityToken => "web-identity token file",
            AwsLink::AssumeRole => "AWS STS AssumeRoleWithWebIdentity",
            AwsLink::Sign => "RDS auth token",
        }
    }
}

/// A broken link of the AWS chain: which, what is wrong, and the fix.
#[derive(Debug)]
pub struct AwsError {
    pub link: AwsLink,
    pub problem: String,
    pub fix: Option<String>,
    /// A retry may succeed (STS unreachable or throttled).
    pub transient: bool,
}

impl AwsError {
    fn new(link: AwsLink, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { link, problem: problem.into(), fix: Some(fix.into()), transient: false }
    }
}

impl Diagnosis for AwsError {
    fn problem(&self) -> String {
        format!("{}: {}", self.link.label(), self.problem)
    }
    fn fix(&self) -> Option<String> {
        self.fix.clone()
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::describe::render(self, f)
    }
}

impl std::error::Error for AwsError {}

/// The fix when IRSA did not reach the pod.
const IRSA_FIX: &str = "annotate the pod's Kubernetes ServiceAccount with eks.amazonaws.com/role-arn (the role \
     `aurora2bq setup` prints), then restart the pod: EKS then sets AWS_ROLE_ARN and \
     AWS_WEB_IDENTITY_TOKEN_FILE and mounts the token";

/// The resolved AWS identity settings.
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub role_arn: String,
    pub token_file: PathBuf,
    pub sts_url: url::Url,
}

impl Identity {
    /// The config's values, else IRSA's variables.
    pub fn resolve(cfg: &IamConfig) -> Result<Identity, AwsError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let missing =
            |what: &str| AwsError::new(AwsLink::Environment, format!("{what} is not set"), IRSA_FIX.to_string());
        let region =
            cfg.region.clone().or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION")).ok_or_else(
                || {
                    AwsError::new(
                        AwsLink::Environment,
                        "no AWS region: neither source.aws_region nor AWS_REGION is set",
                        "set source.aws_region to the cluster's region, e.g. aws_region = \"eu-west-1\"",
                    )
                },
            )?;
        let role_arn = cfg.role_arn.clone().or_else(|| env("AWS_ROLE_ARN")).ok_or_else(|| missing("AWS_ROLE_ARN"))?;
        let token_file = cfg
            .token_file
            .clone()
            .or_else(|| env("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from))
            .ok_or_else(|| missing("AWS_WEB_IDENTITY_TOKEN_FILE"))?;
        let sts_url = match &cfg.sts_url {
            Some(u) => u.clone(),
            None => default_sts_url(&region)?,
        };
        Ok(Identity { region, role_arn, token_file, sts_url })
    }

    /// The account of the role, for policy ARNs in fixes.
    pub fn account(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or("ACCOUNT_ID")
    }
}

/// STS's regional endpoint, as the SDKs use by default.
fn default_sts_url(region: &str) -> Result<url::Url, AwsError> {
    if !crate::trust::is_aws_region(region) {
        return Err(AwsError::new(
            AwsLink::Environment,
            format!("{region:?} is not an AWS region"),
            "set source.aws_region (or AWS_REGION) to a region such as eu-west-1",
        ));
    }
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    url::Url::parse(&format!("https://sts.{region}.{suffix}/")).map_err(|e| {
        AwsError::new(AwsLink::Environment, format!("no STS URL for region {region:?}: {e}"), "set source.aws_region")
    })
}

/// Temporary credentials from STS, refreshed before they run out; one STS call serves every
/// connection of the run.
pub struct RdsIam {
    pub identity: Identity,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl RdsIam {
    pub fn new(identity: Identity, request_timeout: Duration) -> Self {
        Self { identity, http: crate::http::client(request_timeout), cached: tokio::sync::Mutex::new(None) }
    }

    /// Current credentials: the cached ones while they have more than a margin left (five
    /// minutes, or half their lifetime when they live shorter), else new ones.
    pub async fn credentials(&self) -> Result<Credentials, AwsError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.fresh_at(SystemTime::now())
        {
            return Ok(c.clone());
        }
        let token = self.web_identity_token()?;
        let creds = sts::assume_role(&self.http, &self.identity, &token).await?;
        tracing::debug!(access_key = %creds.access_key_id, "assumed the AWS role");
        *cached = Some(creds.clone());
        Ok(creds)
    }

    /// The token file, read on every STS call because the kubelet rotates it.
    pub fn web_identity_token(&self) -> Result<Secret, AwsError> {
        let path = &self.identity.token_file;
        let text = crate::secret::read_token_file(path).map_err(|problem| {
            AwsError::new(
                AwsLink::WebIdentityToken,
                problem,
                format!("{IRSA_FIX}; the token is mounted at {} (AWS_WEB_IDENTITY_TOKEN_FILE)", path.display()),
            )
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(AwsError::new(
                AwsLink::WebIdentityToken,
                format!("token file {} is empty", path.display()),
                IRSA_FIX,
            ));
        }
        Ok(Secret::new(text))
    }

    /// A fresh RDS auth token for `user` at `host:port`, valid for 15 minutes.
    pub async fn token(&self, host: &str, port: u16, user: &str) -> Result<Secret, AwsError> {
        let creds = self.credentials().await?;
        presign(&creds, &self.identity.region, host, port, user, SystemTime::now())
    }
}
