//! The checks themselves. Each one uses the same code a run uses (the token sources, the
//! BigQuery client, the source), so a green doctor means the run's links work.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;

use super::report::{Check, Report, Status};
use super::Options;
use crate::auth::clock::SystemClock;
use crate::auth::credentials::{self, CredentialSource, Format};
use crate::auth::endpoints::Policy;
use crate::auth::external::ExternalAccount;
use crate::auth::{self, jwt, AccessToken, AuthError, TokenSource};
use crate::config::{Config, CredentialsFrom, GoogleConfig};
use crate::secret::Secret;
use crate::sink::bigquery::BigQuerySink;
use crate::sink::SinkError;
use crate::source::{self, BatchLimits, SourceError};

pub struct Doctor {
    options: Options,
    checks: Vec<Check>,
    http: reqwest::Client,
}

/// Hands out one token already obtained, so later checks reuse the chain's result.
struct Fixed(AccessToken);

#[async_trait]
impl TokenSource for Fixed {
    async fn token(&self) -> Result<AccessToken, AuthError> {
        Ok(self.0.clone())
    }
}

fn auth_failure(e: &AuthError) -> (String, Option<String>) {
    match e {
        AuthError::Broken { problem, fix, .. } => (problem.clone(), fix.clone()),
        AuthError::Transient { .. } => (
            e.to_string(),
            Some("a network or service failure: check that the pod can reach sts.googleapis.com and \
                  iamcredentials.googleapis.com over HTTPS (NAT or proxy in private subnets), then retry"
                .into()),
        ),
    }
}

fn minutes_until(t: SystemTime) -> String {
    match t.duration_since(SystemTime::now()) {
        Ok(d) => format!("in {} min", d.as_secs() / 60),
        Err(e) => format!("{} min ago", e.duration().as_secs() / 60),
    }
}

impl Doctor {
    pub fn new(options: Options) -> Self {
        Self { options, checks: Vec::new(), http: crate::http::client(Duration::from_secs(30)) }
    }

    fn broken(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Failed)
    }

    /// Records a check, or "not run" if an earlier link already failed.
    fn push(&mut self, c: Check) -> bool {
        let ok = c.status != Status::Failed;
        if self.broken() {
            self.checks.push(Check { status: Status::NotRun, details: vec!["not checked: an earlier link is broken".into()], problem: None, fix: None, ..c });
        } else {
            self.checks.push(c);
        }
        ok
    }

    pub async fn run(mut self) -> Report {
        let config = self.config();
        let google = config.as_ref().map(|c| c.google.clone()).unwrap_or_default();
        let token = if self.broken() { None } else { self.credentials(&google).await };
        match (&config, token) {
            (Some(cfg), Some(token)) => {
                self.bigquery(cfg, &google, token).await;
                self.source(cfg).await;
            }
            (Some(_), None) => {
                self.push(Check::skipped("BigQuery", "needs an access token"));
                self.push(Check::skipped("source database", "not checked"));
            }
            (None, _) => {
                self.push(Check::skipped("BigQuery", "no --config: destination unknown"));
                self.push(Check::skipped("source database", "no --config: source unknown"));
            }
        }
        Report::new(self.checks)
    }

    fn config(&mut self) -> Option<Config> {
        let path = self.options.config.clone()?;
        match crate::config::load(&path) {
            Ok(c) => {
                let n = c.tables.len();
                self.push(Check::ok("aurora2bq config", vec![format!("{}: {n} tables", path.display())]));
                Some(c)
            }
            Err(e) => {
                self.push(Check::failed("aurora2bq config", vec![], e.to_string(), Some("fix the file; docs/config.md lists every key".into())));
                None
            }
        }
    }

    async fn credentials(&mut self, g: &GoogleConfig) -> Option<AccessToken> {
        let policy = Policy { allow_insecure: g.allow_insecure_endpoints };
        let path = match &g.credentials {
            CredentialsFrom::AccessTokenFile(p) => {
                let src = auth::static_file::StaticTokenFile::new(p.clone(), Arc::new(SystemClock));
                return match src.token().await {
                    Ok(t) => {
                        self.push(Check::ok("access token file", vec![format!("{}: a token is there (its validity shows at BigQuery)", p.display())]));
                        Some(t)
                    }
                    Err(e) => {
                        let (p, f) = auth_failure(&e);
                        self.push(Check::failed("access token file", vec![], p, f));
                        None
                    }
                };
            }
            CredentialsFrom::File(p) => match auth::credential_path(p.as_ref()) {
                Ok(p) => p,
                Err(e) => {
                    let (p, f) = auth_failure(&e);
                    self.push(Check::failed("credential config", vec![], p, f));
                    return None;
                }
            },
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let loose: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match loose["type"].as_str() {
            Some("service_account") | Some("authorized_user") => self.oauth(&path, policy).await,
            _ => self.external(&path, &text, &loose, policy).await,
        }
    }

    async fn oauth(&mut self, path: &Path, policy: Policy) -> Option<AccessToken> {
        let src = match auth::from_file(path, policy, self.http.clone(), Arc::new(SystemClock)) {
            Ok(s) => s,
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("credential config", vec![], p, f));
                return None;
            }
        };
        self.push(Check::ok("credential config", vec![format!("{}: a key or user credential for local runs", path.display())]));
        match src.token().await {
            Ok(t) => {
                self.push(Check::ok("OAuth token", vec![format!("access token, expires {}", minutes_until(t.expires_at))]));
                Some(t)
            }
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("OAuth token", vec![], p, f));
                None
            }
        }
    }

    /// Subject token → credential config → STS → impersonation.
    async fn external(&mut self, path: &Path, text: &str, loose: &Value, policy: Policy) -> Option<AccessToken> {
        let mut subject = self.subject_token(loose).await;
        if self.broken() {
            return None;
        }
        let ext = match credentials::parse(path, text)
            .and_then(|c| ExternalAccount::new(c, policy, self.http.clone(), Arc::new(SystemClock)))
        {
            Ok(ext) => ext,
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("credential config", vec![], p, f));
                return None;
            }
        };
        let c = ext.config();
        let mut details = vec![format!("{}", path.display()), format!("audience {}", c.audience), format!("token_url {}", c.token_url)];
        if let Some(imp) = &c.impersonation {
            details.push(format!("impersonates {} for {} s", imp.email, imp.lifetime_secs));
        }
        self.push(Check::ok("credential config", details));
        let subject = match subject.take() {
            Some(s) => s,
            None => match ext.subject_token().await {
                Ok(s) => s,
                Err(e) => {
                    let (p, f) = auth_failure(&e);
                    self.push(Check::failed("STS token exchange", vec!["reading the subject token".into()], p, f));
                    return None;
                }
            },
        };
        let federated = match ext.exchange(&subject).await {
            Ok(t) => {
                self.push(Check::ok("STS token exchange", vec![format!("federated token, expires {}", minutes_until(t.expires_at))]));
                t
            }
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("STS token exchange", vec![], p, f));
                return None;
            }
        };
        let Some(imp) = ext.config().impersonation.clone() else {
            self.push(Check::skipped(
                "service account impersonation",
                "no service_account_impersonation_url: the federated token is used directly, so the pool \
                 principal itself needs the BigQuery roles",
            ));
            return Some(federated);
        };
        match ext.impersonate(&subject, federated).await {
            Ok(t) => {
                self.push(Check::ok(
                    "service account impersonation",
                    vec![format!("access token for {}, expires {}", imp.email, minutes_until(t.expires_at))],
                ));
                Some(t)
            }
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("service account impersonation", vec![], p, f));
                None
            }
        }
    }

    /// The pod's token file: exists, readable, a JWT, not expired. Shows its claims.
    async fn subject_token(&mut self, loose: &Value) -> Option<Secret> {
        let src = &loose["credential_source"];
        let Some(file) = src["file"].as_str() else {
            self.push(Check::skipped("subject token", "the credential source is not a file; it is read during the STS check"));
            return None;
        };
        let format = match src["format"]["subject_token_field_name"].as_str() {
            Some(f) if src["format"]["type"] == "json" => Format::Json { field: f.into() },
            _ => Format::Text,
        };
        let source = CredentialSource::File { path: file.into(), format };
        let token = match auth::subject::fetch(&source, &self.http).await {
            Ok(t) => t,
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("subject token", vec![file.to_owned()], p, f));
                return None;
            }
        };
        let claims = match jwt::claims(token.expose()) {
            Ok(c) => c,
            Err(e) => {
                self.push(Check::failed(
                    "subject token",
                    vec![file.to_owned()],
                    format!("{file}: {e}"),
                    Some("credential_source.file must be the projected service-account token (a JWT)".into()),
                ));
                return None;
            }
        };
        let exp = claims.exp.map(|e| UNIX_EPOCH + Duration::from_secs(e.max(0) as u64));
        let details = vec![
            file.to_owned(),
            format!("iss {}", claims.iss.as_deref().unwrap_or("(none)")),
            format!("sub {}", claims.sub.as_deref().unwrap_or("(none)")),
            format!("aud [{}]", claims.aud.join(", ")),
            format!("expires {}", exp.map(minutes_until).unwrap_or_else(|| "never (no exp)".into())),
        ];
        if exp.is_some_and(|e| e < SystemTime::now()) {
            self.push(Check::failed(
                "subject token",
                details,
                "the token has expired: nothing refreshes this file",
                Some("the kubelet rewrites a projected token in place; point credential_source.file at the \
                      projected volume itself (not a copy) and keep expirationSeconds at 600 or more".into()),
            ));
            return None;
        }
        self.push(Check::ok("subject token", details));
        Some(token)
    }

    async fn bigquery(&mut self, cfg: &Config, g: &GoogleConfig, token: AccessToken) {
        let name = "BigQuery";
        let sink = match BigQuerySink::new(g, &cfg.destination, Arc::new(Fixed(token)), self.http.clone(), "doctor".into()) {
            Ok(s) => s,
            Err(e) => {
                self.push(Check::failed(name, vec![], format!("{e:#}"), None));
                return;
            }
        };
        let ds = format!("{}:{}", cfg.destination.project, cfg.destination.dataset);
        let result = async {
            let d = sink.rest().get_dataset(&cfg.destination.dataset).await?;
            let tables = sink.rest().list_tables(&cfg.destination.dataset).await?;
            let mut details = vec![
                format!("dataset {ds} in {}", d["location"].as_str().unwrap_or("?")),
                format!("{} tables listed", tables.len()),
            ];
            if self.options.write_probe {
                sink.write_probe().await?;
                details.push("write probe: created a table, opened and finalized a write stream on it, dropped it".into());
            }
            Ok::<_, SinkError>(details)
        }
        .await;
        match result {
            Ok(details) => self.push(Check::ok(name, details)),
            Err(e) => {
                let fix = match &e {
                    SinkError::Http { fix, .. } => fix.clone(),
                    _ => None,
                };
                self.push(Check::failed(name, vec![ds], error_text(&e), fix))
            }
        };
    }

    async fn source(&mut self, cfg: &Config) {
        let name = "source database";
        let limits = BatchLimits { rows: 1, bytes: 1024 };
        let src = match source::connect(&cfg.source, limits).await {
            Ok(s) => s,
            Err(e) => {
                let fix = source_fix(&e);
                self.push(Check::failed(name, vec![], error_text(&e), fix));
                return;
            }
        };
        let mut details = vec![format!("connected ({})", cfg.source.engine.name())];
        for t in &cfg.tables {
            match src.open(t, None).await {
                Ok(read) => {
                    let s = read.schema();
                    let key = if s.primary_key.is_empty() { "no primary key".to_string() } else { format!("key ({})", s.primary_key.join(", ")) };
                    details.push(format!("{}: {} columns, {key}", s.display_name, s.columns.len()));
                }
                Err(e) => {
                    let fix = source_fix(&e);
                    self.push(Check::failed(name, details, error_text(&e), fix));
                    return;
                }
            }
        }
        self.push(Check::ok(name, details));
    }
}

fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    crate::http::error_chain(e)
}

fn source_fix(e: &SourceError) -> Option<String> {
    Some(match e {
        SourceError::Url(_) => "set the connection URL in the variable or file that source.url_env / url_file names".into(),
        SourceError::Connect { .. } => "check host, port, user and password in the URL, that the pod's security \
            group may reach the cluster, and ca_file if TLS is required"
            .into(),
        SourceError::NotFound { .. } => "fix `tables[].source`, or grant USAGE on the schema to the user".into(),
        SourceError::NoSelect { table, user } => format!("GRANT SELECT ON {table} TO {user};"),
        SourceError::Unsupported { column, .. } => {
            format!("exclude the column (`exclude_columns = [\"{column}\"]`) or read it as text (`cast = {{ {column} = \"text\" }}`)")
        }
        _ => return None,
    })
}
