//! The Google credential file (`GOOGLE_APPLICATION_CREDENTIALS`), validated field by field
//! as docs/architecture.md describes, with errors that name the field and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{AuthError, Link};
use crate::secret::Secret;

pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

#[derive(Debug, Clone)]
pub struct ExternalAccountConfig {
    /// Where the file was read from, for messages.
    pub path: PathBuf,
    pub audience: String,
    pub subject_token_type: String,
    /// Empty when the file has none: then STS of aurora2bq's universe (set by `ExternalAccount`).
    pub token_url: String,
    pub impersonation: Option<Impersonation>,
    pub source: CredentialSource,
    pub client_auth: Option<(String, Secret)>,
    /// As the file says; checked against aurora2bq's own universe before any call.
    pub universe_domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Impersonation {
    pub url: String,
    pub email: String,
    pub lifetime_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Text,
    Json { field: String },
}

#[derive(Debug, Clone)]
pub enum CredentialSource {
    File { path: PathBuf, format: Format },
    Url { url: String, headers: BTreeMap<String, String>, format: Format },
    Executable { command: String, timeout_ms: u64, output_file: Option<PathBuf> },
}

impl ExternalAccountConfig {
    /// Project number, pool and provider from the audience
    /// `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/V`.
    pub fn pool_parts(&self) -> Option<(String, String, String)> {
        let rest = self.audience.split("/projects/").nth(1)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [n, "locations", _, "workloadIdentityPools", p, "providers", v] => {
                Some((n.to_string(), p.to_string(), v.to_string()))
            }
            _ => None,
        }
    }
}

fn bad(path: &Path, problem: impl Into<String>, fix: impl Into<String>) -> AuthError {
    AuthError::broken(Link::CredentialConfig, format!("{}: {}", path.display(), problem.into()), Some(fix.into()))
}

const REGENERATE: &str = "regenerate it with `gcloud iam workload-identity-pools create-cred-config` \
                          or `aurora2bq cred-config`";

pub fn load(path: &Path) -> Result<ExternalAccountConfig, AuthError> {
    let text = super::credfile::read(path, "the credential file")?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<ExternalAccountConfig, AuthError> {
    let v: Value = serde_json::from_str(text).map_err(|e| bad(path, format!("not valid JSON: {e}"), REGENERATE))?;
    let obj = v.as_object().ok_or_else(|| bad(path, "not a JSON object", REGENERATE))?;
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    let ty = s("type").unwrap_or_default();
    if ty != "external_account" {
        return Err(bad(
            path,
            format!("credential type {ty:?} is not supported here; expected \"external_account\""),
            REGENERATE,
        ));
    }
    let audience = s("audience").ok_or_else(|| bad(path, "missing field \"audience\"", REGENERATE))?;
    let subject_token_type =
        s("subject_token_type").ok_or_else(|| bad(path, "missing field \"subject_token_type\"", REGENERATE))?;
    let workforce = audience.starts_with("//iam.googleapis.com/locations/") && audience.contains("/workforcePools/");
    const AUDIENCE_FORM: &str = "the audience is //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/\
                                 workloadIdentityPools/POOL/providers/PROVIDER; `aurora2bq cred-config` writes it";
    if workforce {
        return Err(bad(
            path,
            format!(
                "audience {audience:?} names a workforce pool (for people signing in), not a workload identity pool"
            ),
            format!(
                "a pod federates through a workload identity pool with an OIDC provider for the cluster: {AUDIENCE_FORM}"
            ),
        ));
    }
    if let Some(project) = audience.split("/projects/").nth(1).and_then(|r| r.split('/').next())
        && !project.is_empty()
        && !project.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad(
            path,
            format!("audience names project {project:?} by its ID; the audience needs the project NUMBER"),
            format!(
                "find it with `gcloud projects describe {project} --format='value(projectNumber)'` and put it in the \
                 audience ({AUDIENCE_FORM})"
            ),
        ));
    }
    if obj.get("workforce_pool_user_project").is_some_and(|v| !v.is_null()) && !workforce {
        return Err(bad(
            path,
            "workforce_pool_user_project should not be set for non-workforce pool credentials",
            "remove workforce_pool_user_project: a workload identity pool does not use it",
        ));
    }
    let universe_domain = s("universe_domain");
    // Filled from aurora2bq's universe when absent; never from the file's universe_domain.
    let token_url = s("token_url").unwrap_or_default();
    let impersonation = match s("service_account_impersonation_url") {
        None => None,
        Some(url) => Some(impersonation(path, obj, url)?),
    };
    let source = credential_source(path, obj)?;
    let client_auth = match (s("client_id"), s("client_secret")) {
        (Some(id), Some(secret)) => Some((id, Secret::new(secret))),
        _ => None,
    };
    Ok(ExternalAccountConfig {
        path: path.to_owned(),
        audience,
        subject_token_type,
        token_url,
        impersonation,
        source,
        client_auth,
        universe_domain,
    })
}

fn impersonation(path: &Path, obj: &Map<String, Value>, url: String) -> Result<Impersonation, AuthError> {
    // The email is what sits between the last '/' and ':generateAccessToken'.
    let email = url
        .rsplit_once('/')
        .and_then(|(_, tail)| tail.strip_suffix(":generateAccessToken"))
        .filter(|e| e.contains('@'))
        .ok_or_else(|| {
            bad(
                path,
                format!("cannot find the service account in service_account_impersonation_url {url:?}"),
                "it must end in /serviceAccounts/EMAIL:generateAccessToken",
            )
        })?
        .to_owned();
    let lifetime = obj.get("service_account_impersonation").and_then(|o| o.get("token_lifetime_seconds"));
    let lifetime_secs = match lifetime {
        None | Some(Value::Null) => 3600,
        Some(v) => match v.as_u64() {
            Some(n) if (600..=43_200).contains(&n) => n,
            _ => {
                return Err(bad(
                    path,
                    format!("service_account_impersonation.token_lifetime_seconds {v} is out of range"),
                    "use 600 to 43200 (more than 3600 needs the org policy \
                     constraints/iam.allowServiceAccountCredentialLifetimeExtension)",
                ));
            }
        },
    };
    Ok(Impersonation { url, email, lifetime_secs })
}

fn credential_source(path: &Path, obj: &Map<String, Value>) -> Result<CredentialSource, AuthError> {
    let src = obj
        .get("credential_source")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(path, "missing object \"credential_source\"", REGENERATE))?;
    if src.contains_key("environment_id") {
        return Err(aws_source_refused(path));
    }
    let kinds: Vec<&str> = ["file", "url", "executable"].into_iter().filter(|k| src.contains_key(*k)).collect();
    if kinds.len() > 1 {
        return Err(bad(
            path,
            format!("ambiguous credential_source: it has {}", kinds.join(" and ")),
            "keep exactly one of file, url or executable",
        ));
    }
    let format = || format_of(path, src.get("format"));
    match kinds.first().copied() {
        Some("file") => {
            let file = src["file"]
                .as_str()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| bad(path, "credential_source.file is not a path", REGENERATE))?;
            Ok(CredentialSource::File { path: PathBuf::from(file), format: format()? })
        }
        Some("url") => {
            let url = src["url"].as_str().unwrap_or_default().to_owned();
            let headers = src
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
                .unwrap_or_default();
            Ok(CredentialSource::Url { url, headers, format: format()? })
        }
        Some(_) => executable(path, &src["executable"]),
        None => Err(bad(
            path,
            "credential_source has none of file, url or executable",
            "for EKS, point credential_source.file at the projected service-account token",
        )),
    }
}

fn executable(path: &Path, v: &Value) -> Result<CredentialSource, AuthError> {
    if std::env::var("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES").as_deref() != Ok("1") {
        return Err(bad(
            path,
            "executable credential sources are disabled",
            "set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 if you trust this config, or use a \
             file source",
        ));
    }
    let command = v.get("command").and_then(Value::as_str).unwrap_or_default().to_owned();
    if command.trim().is_empty() {
        return Err(bad(path, "credential_source.executable.command is empty", REGENERATE));
    }
    let timeout_ms = v.get("timeout_millis").and_then(Value::as_u64).unwrap_or(30_000);
    if !(5_000..=120_000).contains(&timeout_ms) {
        return Err(bad(
            path,
            format!("credential_source.executable.timeout_millis {timeout_ms} is out of range"),
            "use 5000 to 120000",
        ));
    }
    let output_file = v.get("output_file").and_then(Value::as_str).map(PathBuf::from);
    Ok(CredentialSource::Executable { command, timeout_ms, output_file })
}

fn format_of(path: &Path, v: Option<&Value>) -> Result<Format, AuthError> {
    let Some(v) = v else { return Ok(Format::Text) };
    match v.get("type").and_then(Value::as_str).unwrap_or("text") {
        "text" => Ok(Format::Text),
        "json" => match v.get("subject_token_field_name").and_then(Value::as_str) {
            Some(f) if !f.is_empty() => Ok(Format::Json { field: f.to_owned() }),
            _ => Err(bad(
                path,
                "credential_source.format.type is \"json\" but subject_token_field_name is missing",
                "name the JSON field that holds the token, or use format type \"text\"",
            )),
        },
        other => {
            Err(bad(path, format!("credential_source.format.type {other:?} is unknown"), "use \"text\" or \"json\""))
        }
    }
}

/// `environment_id: aws1` signs AWS requests with keys from EC2 metadata, which Fargate
/// does not have; the request would hang on 169.254.169.254, so it is refused at once.
fn aws_source_refused(path: &Path) -> AuthError {
    bad(
        path,
        "this config uses an AWS credential source (environment_id aws1). It needs the EC2 \
         instance metadata server (169.254.169.254) for AWS keys, and EKS Fargate has none; on \
         EC2 nodes it would authenticate as the node's role, not the pod's",
        "create an OIDC provider for the cluster's EKS issuer in the workload identity pool, and \
         write the config with --credential-source-file pointing at the pod's projected \
         service-account token (e.g. /var/run/secrets/eks.amazonaws.com/serviceaccount/token); \
         `aurora2bq cred-config` writes it",
    )
}

#[cfg(test)]
mod tests;
