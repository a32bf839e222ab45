//! A strict local stand-in for the Google side of Workload Identity Federation, for tests
//! and the demo only (never shipped): an EKS-like OIDC issuer that mints pod tokens, STS
//! `/v1/token`, IAM Credentials `generateAccessToken`, token introspection, and an
//! authenticating gate in front of bqemulator, which checks no tokens itself.
//!
//! It verifies what Google verifies (wif-spec.md §2, §3, §6) and answers with Google's
//! error bodies, so each misconfiguration can be reproduced offline.

pub mod cel;
mod config;
mod gate;
mod iam;
mod keys;
mod state;
mod sts;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::*;
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
            .route("/v1/tokeninfo", get(state::tokeninfo))
            .route("/v1/{*rest}", post(iam::generate_access_token))
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

    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        self.state.calls(endpoint)
    }

    /// Requests the gates let through and refused.
    pub fn gate_counts(&self) -> (u64, u64) {
        self.state.gate_counts()
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
