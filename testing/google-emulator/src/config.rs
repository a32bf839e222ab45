//! What the emulated Google project holds: workload identity pools with OIDC providers,
//! and service accounts with their `roles/iam.workloadIdentityUser` members.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    pub project_number: String,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountConfig>,
    /// The AWS account: OIDC providers, roles, STS.
    #[serde(default)]
    pub aws: crate::aws::AwsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub pool: String,
    pub provider: String,
    /// The issuer the provider trusts; `None` means this emulator's own issuer.
    #[serde(default)]
    pub issuer_uri: Option<String>,
    /// Empty: the token's `aud` must be the provider's full name.
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    /// CEL per attribute; `google.subject` defaults to `assertion.sub`.
    #[serde(default)]
    pub attribute_mapping: BTreeMap<String, String>,
    #[serde(default)]
    pub attribute_condition: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountConfig {
    pub email: String,
    /// Members holding roles/iam.workloadIdentityUser on this account.
    #[serde(default)]
    pub workload_identity_users: Vec<String>,
    /// BigQuery permissions the account lacks (e.g. `bigquery.jobs.create` without
    /// roles/bigquery.jobUser): the REST gate answers 403 as BigQuery does.
    #[serde(default)]
    pub missing_permissions: Vec<String>,
}

impl ProviderConfig {
    /// A provider for the emulator's own issuer, accepting IRSA's `sts.amazonaws.com`
    /// audience, with the mapping docs/architecture.md describes.
    pub fn eks(pool: &str, provider: &str) -> Self {
        let mut mapping = BTreeMap::new();
        mapping.insert("google.subject".into(), "assertion.sub".into());
        mapping.insert("attribute.ksa_name".into(), "assertion.sub.extract('system:serviceaccount:{ksa_name}')".into());
        mapping.insert("attribute.namespace".into(), "assertion['kubernetes.io']['namespace']".into());
        Self {
            pool: pool.into(),
            provider: provider.into(),
            issuer_uri: None,
            allowed_audiences: vec!["sts.amazonaws.com".into()],
            attribute_mapping: mapping,
            attribute_condition: None,
            disabled: false,
        }
    }
}

/// The pod token to mint.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub namespace: String,
    pub service_account: String,
    pub audience: Vec<String>,
    /// Seconds from now to `exp`; negative makes an expired token.
    pub lifetime_secs: i64,
    /// Overrides `iss` (default: this emulator's issuer).
    pub issuer: Option<String>,
    /// Overrides `sub` (default `system:serviceaccount:NS:KSA`).
    pub subject: Option<String>,
    pub key: KeyChoice,
}

/// Which key signs a minted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// The issuer's published key.
    Published,
    /// Another key with the published key's `kid`: a bad signature.
    SameKidOtherKey,
    /// A key whose `kid` the JWKS does not list.
    UnknownKid,
}

impl Default for TokenSpec {
    fn default() -> Self {
        Self {
            namespace: "analytics".into(),
            service_account: "aurora2bq".into(),
            audience: vec!["sts.amazonaws.com".into()],
            lifetime_secs: 3600,
            issuer: None,
            subject: None,
            key: KeyChoice::Published,
        }
    }
}

/// A planned misbehaviour of the STS or IAM endpoint, for refresh and retry tests.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this HTTP status and a generic error body.
    Status(u16),
    /// Wait this long before answering normally.
    Delay(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Sts,
    Iam,
}
