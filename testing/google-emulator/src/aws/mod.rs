//! The AWS side, as strict as the Google side: IAM OIDC providers, roles with their trust
//! and permission policies (the JSON documents `aws iam` takes), STS
//! `AssumeRoleWithWebIdentity`, and the SigV4 check RDS applies to an IAM auth token.

pub mod policy;
pub mod sigv4;
pub mod sts;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The emulated AWS account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    pub account: String,
    /// IAM OIDC identity providers registered in the account.
    #[serde(default)]
    pub oidc_providers: Vec<AwsOidcProvider>,
    #[serde(default)]
    pub roles: Vec<AwsRole>,
    /// How long issued credentials live (AWS: at least 900 s; shorter here to test refresh).
    #[serde(default = "default_lifetime")]
    pub credential_lifetime_secs: u64,
}

fn default_lifetime() -> u64 {
    3600
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            account: "111122223333".into(),
            oidc_providers: Vec::new(),
            roles: Vec::new(),
            credential_lifetime_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsOidcProvider {
    /// The issuer URL; `None` is this emulator's own issuer.
    #[serde(default)]
    pub url: Option<String>,
    pub client_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsRole {
    pub name: String,
    /// The AssumeRolePolicyDocument.
    pub trust_policy: Value,
    /// Permission policy documents (inline or attached alike).
    #[serde(default)]
    pub policies: Vec<Value>,
}

/// Credentials STS handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub secret: String,
    pub session_token: String,
    pub role: String,
    pub expiration: SystemTime,
}

/// What the AWS side remembers while it runs.
#[derive(Default)]
pub struct AwsState {
    pub issued: Mutex<HashMap<String, Issued>>,
    pub sts_calls: AtomicU64,
}

impl AwsState {
    pub fn count(&self) {
        self.sts_calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// `host[:port]/path` of an issuer URL: how IAM names its OIDC provider and condition keys.
pub fn provider_id(issuer: &str) -> String {
    issuer.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/').to_owned()
}
