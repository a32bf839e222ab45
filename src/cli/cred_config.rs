//! `aurora2bq cred-config`: writes the same `external_account` JSON that
//! `gcloud iam workload-identity-pools create-cred-config` writes, for an EKS pod's token.

use std::path::PathBuf;

use serde_json::json;

use super::exit;

pub const EXAMPLES: &str = "Examples:
  aurora2bq cred-config --project-number 123456789012 --pool eks --provider eks-oidc \\
    --service-account aurora2bq@my-project.iam.gserviceaccount.com --output credential-config.json
  # the same with gcloud's names (create-cred-config's AUDIENCE and flags):
  aurora2bq cred-config projects/123456789012/locations/global/workloadIdentityPools/eks/providers/eks-oidc \\
    --service-account=aurora2bq@my-project.iam.gserviceaccount.com \\
    --credential-source-file=/var/run/secrets/eks.amazonaws.com/serviceaccount/token \\
    --output-file=credential-config.json";

#[derive(clap::Args)]
pub struct Args {
    /// gcloud's AUDIENCE: projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER
    /// (instead of --project-number, --pool and --provider).
    #[arg(conflicts_with_all = ["project_number", "pool", "provider"])]
    audience: Option<String>,
    /// The project NUMBER that holds the workload identity pool (not the project ID).
    #[arg(long, required_unless_present = "audience")]
    project_number: Option<String>,
    #[arg(long, required_unless_present = "audience")]
    pool: Option<String>,
    #[arg(long, required_unless_present = "audience")]
    provider: Option<String>,
    /// Service account to impersonate; without it the federated token is used directly.
    #[arg(long)]
    service_account: Option<String>,
    /// The pod's projected token file (gcloud: --credential-source-file).
    #[arg(
        long,
        alias = "credential-source-file",
        default_value = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    )]
    token_path: PathBuf,
    /// Lifetime of the impersonated token, 600 to 43200 seconds (gcloud:
    /// --service-account-token-lifetime-seconds).
    #[arg(long, alias = "service-account-token-lifetime-seconds")]
    lifetime_seconds: Option<u64>,
    /// Development only: STS endpoint (e.g. the local emulator).
    #[arg(long, hide = true)]
    sts_url: Option<String>,
    /// Development only: IAM Credentials base URL, up to and without `/v1/...`.
    #[arg(long, hide = true)]
    iam_url: Option<String>,
    /// Write here instead of standard output (gcloud: --output-file).
    #[arg(long, alias = "output-file")]
    output: Option<PathBuf>,
}

/// (project number, pool, provider) from gcloud's AUDIENCE, with or without the
/// `//iam.googleapis.com/` prefix.
fn parse_audience(a: &str) -> Option<(String, String, String)> {
    let rest = a.trim_start_matches("//iam.googleapis.com/");
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["projects", n, "locations", "global", "workloadIdentityPools", pool, "providers", provider] => {
            Some((n.to_string(), pool.to_string(), provider.to_string()))
        }
        _ => None,
    }
}

/// What an `external_account` credential config names.
pub struct Wif<'a> {
    pub project_number: &'a str,
    pub pool: &'a str,
    pub provider: &'a str,
    pub service_account: Option<&'a str>,
    pub token_path: &'a std::path::Path,
    pub lifetime_seconds: Option<u64>,
    /// Development only: the emulator's STS and IAM Credentials.
    pub sts_url: Option<&'a str>,
    pub iam_url: Option<&'a str>,
}

/// The credential config gcloud's create-cred-config writes (also used by `setup`).
pub fn credential_config(w: &Wif) -> serde_json::Value {
    let mut v = json!({
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": format!(
            "//iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{}/providers/{}",
            w.project_number, w.pool, w.provider
        ),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": w.sts_url.unwrap_or("https://sts.googleapis.com/v1/token"),
        "credential_source": { "file": w.token_path, "format": { "type": "text" } },
    });
    if let Some(sa) = w.service_account {
        let base = w.iam_url.unwrap_or("https://iamcredentials.googleapis.com");
        v["service_account_impersonation_url"] =
            json!(format!("{}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken", base.trim_end_matches('/')));
        if let Some(l) = w.lifetime_seconds {
            v["service_account_impersonation"] = json!({ "token_lifetime_seconds": l });
        }
    }
    v
}

pub fn run(a: Args) -> u8 {
    let (project_number, pool, provider) = match &a.audience {
        Some(aud) => match parse_audience(aud) {
            Some(p) => p,
            None => {
                eprintln!(
                    "aurora2bq: {aud:?} is not a provider name: write \
                     projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER"
                );
                return exit::SETUP_FAILED;
            }
        },
        // clap requires all three when there is no AUDIENCE.
        None => (
            a.project_number.clone().unwrap_or_default(),
            a.pool.clone().unwrap_or_default(),
            a.provider.clone().unwrap_or_default(),
        ),
    };
    let ok_name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !project_number.chars().all(|c| c.is_ascii_digit()) || project_number.is_empty() {
        eprintln!(
            "aurora2bq: --project-number {:?} is not a project number; find it with \
             `gcloud projects describe PROJECT_ID --format='value(projectNumber)'`",
            project_number
        );
        return exit::SETUP_FAILED;
    }
    if !ok_name(&pool) || !ok_name(&provider) {
        eprintln!("aurora2bq: --pool and --provider take the short IDs, e.g. `eks` and `eks-oidc`");
        return exit::SETUP_FAILED;
    }
    let v = credential_config(&Wif {
        project_number: &project_number,
        pool: &pool,
        provider: &provider,
        service_account: a.service_account.as_deref(),
        token_path: &a.token_path,
        lifetime_seconds: a.lifetime_seconds,
        sts_url: a.sts_url.as_deref(),
        iam_url: a.iam_url.as_deref(),
    });
    let text = serde_json::to_string_pretty(&v).expect("JSON serializes") + "\n";
    match &a.output {
        None => {
            print!("{text}");
            exit::OK
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("aurora2bq: cannot write {}: {e}", path.display());
                exit::SETUP_FAILED
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gclouds_audience_is_read_with_or_without_its_prefix() {
        let want = Some(("123".to_string(), "eks".to_string(), "eks-oidc".to_string()));
        assert_eq!(parse_audience("projects/123/locations/global/workloadIdentityPools/eks/providers/eks-oidc"), want);
        assert_eq!(
            parse_audience(
                "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/eks/providers/eks-oidc"
            ),
            want
        );
        assert_eq!(parse_audience("projects/123/pools/eks"), None);
    }
}
