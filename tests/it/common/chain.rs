//! The credential chain on loopback: the Google emulator (issuer, STS, IAM) with gates in
//! front of bqemulator, a pod token file and the credential config pointing at them.

use std::path::PathBuf;

use aurora2bq_google_emulator::{Emulator, EmulatorConfig, ProviderConfig, ServiceAccountConfig, TokenSpec};

pub const PROJECT_NUMBER: &str = "123456789012";
pub const POOL: &str = "eks";
pub const PROVIDER: &str = "eks-oidc";
pub const SA: &str = "aurora2bq@test-project.iam.gserviceaccount.com";

pub struct Chain {
    pub emulator: Emulator,
    pub dir: tempfile::TempDir,
    pub token_path: PathBuf,
    pub cred_path: PathBuf,
    pub rest_gate: String,
    pub grpc_gate: String,
}

/// The project as it should be: provider for the emulator's issuer accepting IRSA tokens,
/// and the service account bound to the pod's KSA through the ksa_name attribute.
pub fn good_project() -> EmulatorConfig {
    EmulatorConfig {
        project_number: PROJECT_NUMBER.into(),
        providers: vec![ProviderConfig::eks(POOL, PROVIDER)],
        service_accounts: vec![ServiceAccountConfig {
            email: SA.into(),
            workload_identity_users: vec![format!(
                "principalSet://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{POOL}/attribute.ksa_name/analytics:aurora2bq"
            )],
            missing_permissions: vec![],
        }],
        aws: Default::default(),
    }
}

impl Chain {
    pub async fn start(project: EmulatorConfig) -> Chain {
        let mut emulator = Emulator::start(project, 0).await.expect("start the Google emulator");
        let rest = super::env_var("AURORA2BQ_TEST_BQ_REST");
        let grpc = super::env_var("AURORA2BQ_TEST_BQ_GRPC");
        let rest_gate = emulator.start_gate(0, &rest, false).await.expect("REST gate");
        let grpc_gate = emulator.start_gate(0, &grpc, true).await.expect("gRPC gate");
        let dir = tempfile::tempdir().expect("temp dir");
        let token_path = dir.path().join("token");
        let cred_path = dir.path().join("credential-config.json");
        let chain = Chain {
            emulator,
            token_path,
            cred_path,
            dir,
            rest_gate: format!("http://{rest_gate}"),
            grpc_gate: format!("http://{grpc_gate}"),
        };
        chain.write_token(&TokenSpec::default());
        chain.write_cred_config(|_| {});
        chain
    }

    pub fn write_token(&self, spec: &TokenSpec) {
        std::fs::write(&self.token_path, self.emulator.mint(spec)).expect("write token");
    }

    /// Writes the gcloud-shaped credential config, after `edit` has changed it.
    pub fn write_cred_config(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut v = serde_json::json!({
            "universe_domain": "googleapis.com",
            "type": "external_account",
            "audience": self.emulator.audience(POOL, PROVIDER),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": self.emulator.sts_url(),
            "service_account_impersonation_url": self.emulator.impersonation_url(SA),
            "credential_source": { "file": self.token_path, "format": { "type": "text" } },
        });
        edit(&mut v);
        std::fs::write(&self.cred_path, serde_json::to_vec_pretty(&v).unwrap()).expect("write cred config");
    }
}
