//! `aurora2bq cred-config`: writes the same `external_account` JSON that
//! `gcloud iam workload-identity-pools create-cred-config` writes, for an EKS pod's token.

use std::path::PathBuf;

use serde_json::json;

use super::exit;

#[derive(clap::Args)]
pub struct Args {
    /// The project NUMBER that holds the workload identity pool (not the project ID).
    #[arg(long)]
    project_number: String,
    #[arg(long)]
    pool: String,
    #[arg(long)]
    provider: String,
    /// Service account to impersonate; without it the federated token is used directly.
    #[arg(long)]
    service_account: Option<String>,
    /// The pod's projected token file.
    #[arg(long, default_value = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")]
    token_path: PathBuf,
    /// Lifetime of the impersonated token, 600 to 43200 seconds.
    #[arg(long)]
    lifetime_seconds: Option<u64>,
    /// Development only: STS endpoint (e.g. the local emulator).
    #[arg(long, hide = true)]
    sts_url: Option<String>,
    /// Development only: IAM Credentials base URL, up to and without `/v1/...`.
    #[arg(long, hide = true)]
    iam_url: Option<String>,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(a: Args) -> u8 {
    let ok_name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !a.project_number.chars().all(|c| c.is_ascii_digit()) || a.project_number.is_empty() {
        eprintln!(
            "aurora2bq: --project-number {:?} is not a project number; find it with \
             `gcloud projects describe PROJECT_ID --format='value(projectNumber)'`",
            a.project_number
        );
        return exit::SETUP_FAILED;
    }
    if !ok_name(&a.pool) || !ok_name(&a.provider) {
        eprintln!("aurora2bq: --pool and --provider take the short IDs, e.g. `eks` and `eks-oidc`");
        return exit::SETUP_FAILED;
    }
    let mut v = json!({
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": format!(
            "//iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{}/providers/{}",
            a.project_number, a.pool, a.provider
        ),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": a.sts_url.unwrap_or_else(|| "https://sts.googleapis.com/v1/token".into()),
        "credential_source": { "file": a.token_path, "format": { "type": "text" } },
    });
    if let Some(sa) = &a.service_account {
        let base = a.iam_url.unwrap_or_else(|| "https://iamcredentials.googleapis.com".into());
        v["service_account_impersonation_url"] =
            json!(format!("{}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken", base.trim_end_matches('/')));
        if let Some(l) = a.lifetime_seconds {
            v["service_account_impersonation"] = json!({ "token_lifetime_seconds": l });
        }
    }
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
