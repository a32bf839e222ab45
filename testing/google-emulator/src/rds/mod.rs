//! A stand-in for an Aurora endpoint with IAM database authentication: it terminates TLS
//! with a certificate from its own CA, takes the password the client sends as an RDS auth
//! token and checks it as RDS does (a SigV4 presigned `connect` for this host, port, region
//! and user, signed with live credentials this emulator's STS issued, whose role holds
//! `rds-db:connect` on the user), then hands the session to the real PostgreSQL or MariaDB
//! behind it. Like RDS, it tells the client nothing of why a token failed; tests read the
//! reason from [`RdsFront::seen`].

mod mysql;
mod pg;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::aws::{policy, sigv4};
use crate::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Postgres,
    Mysql,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RdsFrontConfig {
    pub engine: DbEngine,
    /// The real database, reached without a password (trust / empty password).
    pub upstream: SocketAddr,
    pub region: String,
    /// The cluster's resource id, as in `arn:aws:rds-db:REGION:ACCOUNT:dbuser:ID/USER`.
    pub resource_id: String,
    /// The name on the certificate and in the tokens (the cluster endpoint's DNS name).
    pub hostname: String,
    /// MySQL: users created `IDENTIFIED WITH AWSAuthenticationPlugin` (MariaDB has no such
    /// plugin, so the front keeps the list). PostgreSQL users take tokens when they are
    /// members of the `rds_iam` role in the real database, as on RDS.
    #[serde(default)]
    pub iam_users: Vec<String>,
}

/// One token the front was given, and what it made of it.
#[derive(Debug, Clone)]
pub struct TokenSeen {
    pub user: String,
    pub access_key: String,
    pub amz_date: String,
    /// `None`: accepted; else why not.
    pub refused: Option<String>,
}

pub struct RdsFront {
    pub addr: SocketAddr,
    /// The CA that signed the front's certificate, for the client's `ca_file`.
    pub ca_pem: String,
    pub seen: Arc<Mutex<Vec<TokenSeen>>>,
}

pub(crate) struct Shared {
    cfg: RdsFrontConfig,
    state: Arc<State>,
    /// `HOST:PORT` as the tokens must name it.
    endpoint: String,
    seen: Arc<Mutex<Vec<TokenSeen>>>,
}

pub(crate) async fn start(
    state: Arc<State>,
    cfg: RdsFrontConfig,
    port: u16,
) -> std::io::Result<(RdsFront, oneshot::Sender<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let (acceptor, ca_pem) = tls(&cfg.hostname).map_err(std::io::Error::other)?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared =
        Arc::new(Shared { endpoint: format!("{}:{}", cfg.hostname, addr.port()), cfg, state, seen: seen.clone() });
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut rx => break,
                accepted = listener.accept() => {
                    let Ok((socket, _)) = accepted else { continue };
                    let (shared, acceptor) = (shared.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        let _ = socket.set_nodelay(true);
                        let served = match shared.cfg.engine {
                            DbEngine::Postgres => pg::serve(socket, acceptor, shared).await,
                            DbEngine::Mysql => mysql::serve(socket, acceptor, shared).await,
                        };
                        if let Err(e) = served {
                            eprintln!("rds front: {e}");
                        }
                    });
                }
            }
        }
    });
    Ok((RdsFront { addr, ca_pem, seen }, tx))
}

/// A fresh CA and a certificate for `hostname` and 127.0.0.1 signed by it.
fn tls(hostname: &str) -> Result<(TlsAcceptor, String), rcgen::Error> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "aurora2bq emulated RDS CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec![hostname.to_owned(), "127.0.0.1".to_owned()])?;
    let cert = leaf.signed_by(&key, &issuer)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| rcgen::Error::PemError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .map_err(|e| rcgen::Error::PemError(e.to_string()))?;
    Ok((TlsAcceptor::from(Arc::new(config)), ca_cert.pem()))
}

/// Skew RDS allows between the token's date and its clock.
const SKEW: Duration = Duration::from_secs(300);

impl Shared {
    /// Checks `token` as RDS would for `user`, and records the outcome.
    pub(crate) fn check(&self, user: &str, token: &str) -> bool {
        let params = params_of(token);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let verdict = self.verdict(user, token, &params);
        let access_key = get("X-Amz-Credential").split('/').next().unwrap_or_default().to_owned();
        let seen = TokenSeen { user: user.to_owned(), access_key, amz_date: get("X-Amz-Date"), refused: verdict.err() };
        let ok = seen.refused.is_none();
        self.seen.lock().expect("seen lock").push(seen);
        ok
    }

    fn verdict(&self, user: &str, token: &str, params: &[(String, String)]) -> Result<(), String> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or_default();
        let (host, _) = token.split_once("/?").ok_or("not a presigned URL")?;
        if host != self.endpoint {
            return Err(format!("signed for {host}, not {}", self.endpoint));
        }
        if get("Action") != "connect" || get("DBUser") != user {
            return Err(format!("Action/DBUser are {:?}/{:?}, not connect/{user:?}", get("Action"), get("DBUser")));
        }
        if get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || get("X-Amz-SignedHeaders") != "host" {
            return Err("algorithm or signed headers".into());
        }
        let date = get("X-Amz-Date");
        let scope: Vec<&str> = get("X-Amz-Credential").split('/').collect();
        let [key, day, region, "rds-db", "aws4_request"] = scope.as_slice() else {
            return Err(format!("credential scope {:?}", get("X-Amz-Credential")));
        };
        if *region != self.cfg.region || !date.starts_with(day) {
            return Err(format!("scope {day}/{region}, expected region {}", self.cfg.region));
        }
        let signed = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").map_err(|e| e.to_string())?;
        let signed = SystemTime::UNIX_EPOCH + Duration::from_secs(signed.and_utc().timestamp().max(0) as u64);
        let expires: u64 = get("X-Amz-Expires").parse().map_err(|_| "X-Amz-Expires")?;
        if expires > 900 {
            return Err(format!("X-Amz-Expires {expires} > 900"));
        }
        let now = SystemTime::now();
        if signed > now + SKEW || signed + Duration::from_secs(expires) < now {
            return Err("the token has expired (or is dated in the future)".into());
        }
        let issued = self.state.aws.issued.lock().expect("issued lock").get(*key).cloned();
        let issued = issued.ok_or_else(|| format!("access key {key} was not issued here"))?;
        if issued.expiration < now {
            return Err(format!("the credentials of {key} expired"));
        }
        if get("X-Amz-Security-Token") != issued.session_token {
            return Err("wrong session token".into());
        }
        let canonical = sigv4::canonical_request("GET", "/", params, host, &sigv4::sha256_hex(b""));
        if sigv4::signature(&issued.secret, date, region, "rds-db", &canonical) != get("X-Amz-Signature") {
            return Err("signature mismatch".into());
        }
        let cfg = self.state.config.read().expect("config lock").aws.clone();
        let role = cfg.roles.iter().find(|r| r.name == issued.role).ok_or("the role is gone")?;
        let resource =
            format!("arn:aws:rds-db:{}:{}:dbuser:{}/{user}", self.cfg.region, cfg.account, self.cfg.resource_id);
        let empty = HashMap::new();
        let req =
            policy::Request { action: "rds-db:connect", resource: Some(&resource), federated: None, context: &empty };
        if !policy::allows(&role.policies.iter().collect::<Vec<_>>(), &req) {
            return Err(format!("role {} may not rds-db:connect to {resource}", role.name));
        }
        Ok(())
    }
}

/// The query parameters of `HOST:PORT/?…`, decoded.
fn params_of(token: &str) -> Vec<(String, String)> {
    let query = token.split_once("/?").map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}
