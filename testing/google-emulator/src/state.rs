//! The emulator's state: the project config, the issuer's keys, issued access tokens,
//! call counters and planned faults.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::config::{EmulatorConfig, Endpoint, Fault, KeyChoice, TokenSpec};
use crate::keys::SigningKey;

pub const CLUSTER_ID: &str = "EMULATED0CLUSTER";

/// What an access token stands for.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The service account's email, or `None` for a federated (STS) token.
    pub email: Option<String>,
    /// `projects/N/locations/global/workloadIdentityPools/P`.
    pub pool: String,
    pub subject: String,
    pub attributes: Map<String, Value>,
    pub expires_at: SystemTime,
}

pub struct State {
    pub config: RwLock<EmulatorConfig>,
    pub issuer: String,
    key: SigningKey,
    rogue_same_kid: SigningKey,
    rogue_unknown_kid: SigningKey,
    tokens: Mutex<HashMap<String, TokenInfo>>,
    sts_calls: AtomicU64,
    iam_calls: AtomicU64,
    gate_passed: AtomicU64,
    gate_refused: AtomicU64,
    faults: Mutex<HashMap<Endpoint, VecDeque<Fault>>>,
    /// Service-account keys by key id: (email, public JWK).
    pub sa_keys: Mutex<HashMap<String, (String, Value)>>,
    /// gcloud users by refresh token: (client id, client secret, email).
    pub users: Mutex<HashMap<String, (String, String, String)>>,
    /// Set when any call arrives with a quota-project header (`x-goog-user-project`).
    pub quota_header_seen: std::sync::atomic::AtomicBool,
    /// The `labels` of each query job request through the REST gate, in order (bqemulator
    /// ignores them, so the gate is where a test can see them).
    pub query_labels: Mutex<Vec<Value>>,
    pub aws: crate::aws::AwsState,
}

pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64
}

impl State {
    pub fn new(config: EmulatorConfig, base: &str) -> Self {
        Self {
            config: RwLock::new(config),
            issuer: format!("{base}/oidc/id/{CLUSTER_ID}"),
            key: SigningKey::generate("emulator-key-1"),
            rogue_same_kid: SigningKey::generate("emulator-key-1"),
            rogue_unknown_kid: SigningKey::generate("rotated-away-key"),
            tokens: Mutex::new(HashMap::new()),
            sts_calls: AtomicU64::new(0),
            iam_calls: AtomicU64::new(0),
            gate_passed: AtomicU64::new(0),
            gate_refused: AtomicU64::new(0),
            faults: Mutex::new(HashMap::new()),
            sa_keys: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            quota_header_seen: std::sync::atomic::AtomicBool::new(false),
            query_labels: Mutex::new(Vec::new()),
            aws: crate::aws::AwsState::default(),
        }
    }

    pub fn mint(&self, spec: &TokenSpec) -> String {
        let now = now_secs();
        let sub = spec
            .subject
            .clone()
            .unwrap_or_else(|| format!("system:serviceaccount:{}:{}", spec.namespace, spec.service_account));
        let claims = json!({
            "iss": spec.issuer.clone().unwrap_or_else(|| self.issuer.clone()),
            "sub": sub,
            "aud": spec.audience,
            "iat": now.min(now + spec.lifetime_secs) - 60,
            "nbf": now.min(now + spec.lifetime_secs) - 60,
            "exp": now + spec.lifetime_secs,
            "kubernetes.io": {
                "namespace": spec.namespace,
                "pod": { "name": format!("{}-pod", spec.service_account), "uid": uuid::Uuid::new_v4().to_string() },
                "serviceaccount": { "name": spec.service_account, "uid": uuid::Uuid::new_v4().to_string() },
            },
        });
        match spec.key {
            KeyChoice::Published => self.key.sign(&claims, None),
            KeyChoice::SameKidOtherKey => self.rogue_same_kid.sign(&claims, None),
            KeyChoice::UnknownKid => self.rogue_unknown_kid.sign(&claims, None),
        }
    }

    /// The published JWKS of `issuer`, if it is this emulator's.
    pub fn jwks_of(&self, issuer: &str) -> Option<Value> {
        (issuer == self.issuer).then(|| json!({ "keys": [self.key.jwk()] }))
    }

    pub fn issue(&self, prefix: &str, info: TokenInfo) -> String {
        let token = format!("{prefix}.{}", uuid::Uuid::new_v4().simple());
        self.tokens.lock().expect("tokens lock").insert(token.clone(), info);
        token
    }

    pub fn token_info(&self, token: &str) -> Option<TokenInfo> {
        let t = self.tokens.lock().expect("tokens lock").get(token).cloned()?;
        (t.expires_at > SystemTime::now()).then_some(t)
    }

    pub fn count(&self, e: Endpoint) {
        match e {
            Endpoint::Sts => self.sts_calls.fetch_add(1, Ordering::SeqCst),
            Endpoint::Iam => self.iam_calls.fetch_add(1, Ordering::SeqCst),
        };
    }

    pub fn calls(&self, e: Endpoint) -> u64 {
        match e {
            Endpoint::Sts => self.sts_calls.load(Ordering::SeqCst),
            Endpoint::Iam => self.iam_calls.load(Ordering::SeqCst),
        }
    }

    pub fn gate_count(&self, passed: bool) {
        if passed { &self.gate_passed } else { &self.gate_refused }.fetch_add(1, Ordering::SeqCst);
    }

    pub fn gate_counts(&self) -> (u64, u64) {
        (self.gate_passed.load(Ordering::SeqCst), self.gate_refused.load(Ordering::SeqCst))
    }

    pub fn inject(&self, e: Endpoint, fault: Fault, n: usize) {
        let mut f = self.faults.lock().expect("faults lock");
        let q = f.entry(e).or_default();
        for _ in 0..n {
            q.push_back(fault);
        }
    }

    pub fn clear_faults(&self) {
        self.faults.lock().expect("faults lock").clear();
    }

    /// Applies the next planned fault, if any: an answer to send instead, or a delay.
    pub async fn fault(&self, e: Endpoint) -> Option<Response> {
        let next = self.faults.lock().expect("faults lock").get_mut(&e).and_then(VecDeque::pop_front);
        match next? {
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Some(
                    (
                        status,
                        Json(json!({"error": {"code": code, "message": "injected fault", "status": "UNAVAILABLE"}})),
                    )
                        .into_response(),
                )
            }
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }
}

pub async fn discovery(AxState(s): AxState<std::sync::Arc<State>>) -> Json<Value> {
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{}/keys", s.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

pub async fn jwks(AxState(s): AxState<std::sync::Arc<State>>) -> Json<Value> {
    Json(s.jwks_of(&s.issuer.clone()).expect("own issuer"))
}

/// Like Google's `oauth2/v3/tokeninfo`: what an access token is, or 400.
pub async fn tokeninfo(
    AxState(s): AxState<std::sync::Arc<State>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let info = q.get("access_token").and_then(|t| s.token_info(t));
    match info {
        Some(t) => {
            let left = t.expires_at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            Json(json!({
                "email": t.email,
                "sub": t.subject,
                "expires_in": left.as_secs(),
                "scope": "https://www.googleapis.com/auth/cloud-platform",
            }))
            .into_response()
        }
        None => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_token", "error_description": "Invalid Value"})))
                .into_response()
        }
    }
}
