//! A strict local stand-in for the Google side of Workload Identity Federation, for tests
//! and the demo only (never shipped): an EKS-like OIDC issuer that mints pod tokens, STS
//! `/v1/token`, IAM Credentials `generateAccessToken`, token introspection, and an
//! authenticating gate in front of bqemulator, which checks no tokens itself.
//!
//! It verifies what Google verifies (docs/architecture.md, "The credential chain") and answers with Google's
//! error bodies, so each misconfiguration can be reproduced offline.

// Handlers return the finished error response (Google's body) as their error, so `?` ends the
// request; its size does not matter in a test server.
#![allow(clippy::result_large_err)]

pub mod aws;
pub mod bigquery_fake;
pub mod cel;
mod config;
mod gate;
mod iam;
pub mod keys;
mod oauth;
mod rds;
mod state;
pub mod storage_write;
mod sts;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::*;
pub use rds::{DbEngine, RdsFront, RdsFrontConfig, TokenSeen};
pub use state::TokenInfo;

use state::State;

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    state: Arc<State>,
    addr: SocketAddr,
    stops: Vec<oneshot::Sender<()>>,
}

impl Emulator {
    /// Starts on 127.0.0.1 at `port` (0 picks a free one).
    pub async fn start(config: EmulatorConfig, port: u16) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let state = Arc::new(State::new(config, &base));
        let app = Router::new()
            .route("/oidc/id/{cluster}/.well-known/openid-configuration", get(state::discovery))
            .route("/oidc/id/{cluster}/keys", get(state::jwks))
            .route("/v1/token", post(sts::token))
            .route("/token", post(oauth::token))
            .route("/v1/tokeninfo", get(state::tokeninfo))
            .route("/v1/{*rest}", post(iam::generate_access_token))
            .route("/aws-sts/", post(aws::sts::assume_role))
            .with_state(state.clone());
        let stop = serve(listener, app);
        Ok(Emulator { state, addr, stops: vec![stop] })
    }

    /// Starts an authenticating gate on `port` that forwards to `upstream` only requests
    /// carrying an unexpired access token this emulator issued. `grpc` makes it speak
    /// HTTP/2 to the upstream (the Storage Write API).
    pub async fn start_gate(&mut self, port: u16, upstream: &str, grpc: bool) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = gate::router(self.state.clone(), upstream, grpc);
        self.stops.push(serve(listener, app));
        Ok(addr)
    }

    /// Starts the latency-only BigQuery REST API ([`bigquery_fake`]) on `port`.
    pub async fn start_latency_bigquery(
        &mut self,
        port: u16,
        latency: std::time::Duration,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        self.stops.push(serve(listener, bigquery_fake::router(latency)));
        Ok(addr)
    }

    /// Starts an emulated Aurora endpoint with IAM authentication on `port`, in front of a
    /// real database; tokens must be signed with credentials this emulator's AWS STS issued.
    pub async fn start_rds_front(&mut self, config: RdsFrontConfig, port: u16) -> std::io::Result<RdsFront> {
        let (front, stop) = rds::start(self.state.clone(), config, port).await?;
        self.stops.push(stop);
        Ok(front)
    }

    /// The emulated AWS STS endpoint (`source.aws_sts_url`).
    pub fn aws_sts_url(&self) -> String {
        format!("{}/aws-sts/", self.base_url())
    }

    /// AssumeRoleWithWebIdentity calls so far.
    pub fn aws_sts_calls(&self) -> u64 {
        self.state.aws.sts_calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    pub fn sts_url(&self) -> String {
        format!("{}/v1/token", self.base_url())
    }

    pub fn impersonation_url(&self, email: &str) -> String {
        format!("{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken", self.base_url())
    }

    /// `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/V`.
    pub fn audience(&self, pool: &str, provider: &str) -> String {
        let n = self.state.config.read().expect("config lock").project_number.clone();
        format!("//iam.googleapis.com/projects/{n}/locations/global/workloadIdentityPools/{pool}/providers/{provider}")
    }

    /// Mints a pod token as the cluster's issuer would.
    pub fn mint(&self, spec: &TokenSpec) -> String {
        self.state.mint(spec)
    }

    /// Introspects an access token this emulator issued.
    pub fn token_info(&self, token: &str) -> Option<TokenInfo> {
        self.state.token_info(token)
    }

    /// Changes the emulated project while it runs (e.g. removes a binding).
    pub fn update(&self, f: impl FnOnce(&mut EmulatorConfig)) {
        f(&mut self.state.config.write().expect("config lock"));
    }

    /// Makes the next `n` calls to `endpoint` misbehave.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, n: usize) {
        self.state.inject(endpoint, fault, n);
    }

    /// A new key for service account `email`, as the JSON key file Google hands out; its
    /// `token_uri` is this emulator.
    pub fn create_service_account_key(&self, email: &str) -> serde_json::Value {
        let key = keys::SigningKey::generate(&uuid::Uuid::new_v4().simple().to_string());
        self.state.sa_keys.lock().expect("keys lock").insert(key.kid.clone(), (email.to_owned(), key.jwk()));
        serde_json::json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": key.kid,
            "private_key": key.pkcs8_pem(),
            "client_email": email,
            "client_id": "1000000000000000000",
            "token_uri": format!("{}/token", self.base_url()),
        })
    }

    /// gcloud's application default credentials for a user, refreshable here.
    pub fn authorized_user(&self, email: &str) -> serde_json::Value {
        let (id, secret, refresh) =
            ("emu-client.apps.googleusercontent.com", "emu-secret", uuid::Uuid::new_v4().to_string());
        self.state.users.lock().expect("users lock").insert(refresh.clone(), (id.into(), secret.into(), email.into()));
        serde_json::json!({"type": "authorized_user", "client_id": id, "client_secret": secret, "refresh_token": refresh})
    }

    /// Whether any STS or IAM call carried `x-goog-user-project`.
    pub fn quota_header_seen(&self) -> bool {
        self.state.quota_header_seen.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops every planned fault.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        self.state.calls(endpoint)
    }

    /// Requests the gates let through and refused.
    pub fn gate_counts(&self) -> (u64, u64) {
        self.state.gate_counts()
    }

    /// The `labels` of each query job request that passed the REST gate.
    pub fn query_labels(&self) -> Vec<serde_json::Value> {
        self.state.query_labels.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
    }
}

fn serve(listener: TcpListener, app: Router) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    tx
}
