//! The checks themselves. Each one uses the same code a run uses (the token sources, the
//! BigQuery client, the source), so a green doctor means the run's links work.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::Options;
use super::report::{Check, Report, Status};
use crate::auth::{AccessToken, AuthError, TokenSource};
use crate::config::{Config, GoogleConfig};
use crate::describe::Diagnosis;
use crate::sink::SinkError;
use crate::sink::bigquery::BigQuerySink;
use crate::source::{self, BatchLimits};

pub struct Doctor {
    pub(super) options: Options,
    pub(super) checks: Vec<Check>,
    pub(super) http: reqwest::Client,
}

/// Hands out one token already obtained, so later checks reuse the chain's result.
struct Fixed(AccessToken);

#[async_trait]
impl TokenSource for Fixed {
    async fn token(&self) -> Result<AccessToken, AuthError> {
        Ok(self.0.clone())
    }
}

/// A link's failure for its check: the link is the check's name, so the problem is the
/// error's own words after it.
pub(super) fn auth_failure(e: &AuthError) -> (String, Option<String>) {
    let problem = match e {
        AuthError::Broken { problem, .. } => problem.clone(),
        AuthError::Transient { .. } => e.problem(),
    };
    (problem, e.fix())
}

/// A JWT's `exp`/`iat` (seconds since the epoch) as a time; before the epoch is the epoch.
pub(super) fn unix_time(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

pub(super) fn minutes_until(t: SystemTime) -> String {
    match t.duration_since(SystemTime::now()) {
        Ok(d) => format!("in {} min", d.as_secs() / 60),
        Err(e) => format!("{} min ago", e.duration().as_secs() / 60),
    }
}

impl Doctor {
    pub fn new(options: Options) -> Self {
        Self { options, checks: Vec::new(), http: crate::http::client(Duration::from_secs(30)) }
    }

    pub(super) fn broken(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Failed)
    }

    /// Records a check, or "not run" if an earlier link already failed.
    pub(super) fn push(&mut self, c: Check) -> bool {
        let ok = c.status != Status::Failed;
        if self.broken() {
            self.checks.push(Check {
                status: Status::NotRun,
                details: vec!["not checked: an earlier link is broken".into()],
                problem: None,
                fix: None,
                ..c
            });
        } else {
            self.checks.push(c);
        }
        ok
    }

    pub async fn run(mut self) -> Report {
        let config = self.config();
        let google = config.as_ref().map(|c| c.google.clone()).unwrap_or_default();
        let token = if self.broken() { None } else { self.credentials(&google).await };
        self.pad_chain();
        match (&config, token) {
            (Some(cfg), Some(token)) => {
                self.bigquery(cfg, &google, token).await;
                self.aws(cfg).await;
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

    /// Every link of the chain gets its row, run or not, so a link keeps its number whatever
    /// broke before it (the pod path unless a local credential was recognised).
    fn pad_chain(&mut self) {
        let has = |d: &Self, n: &str| d.checks.iter().any(|c| c.name == n);
        let links: &[&'static str] = if has(self, "access token file") {
            &["access token file"]
        } else if has(self, "OAuth token") {
            &["credential config", "OAuth token"]
        } else {
            &["credential config", "subject token", "STS token exchange", "service account impersonation"]
        };
        for name in links {
            if !has(self, name) {
                self.push(Check::skipped(name, "not checked"));
            }
        }
    }

    fn config(&mut self) -> Option<Config> {
        let path = self.options.config.clone()?;
        match crate::config::load(&path) {
            Ok(c) => {
                let n = c.tables.len();
                let mut details = vec![format!("{}: {n} tables", path.display())];
                if c.google.allow_insecure_endpoints {
                    details.push(
                        "WARNING: google.allow_insecure_endpoints is on (loopback emulators only); remove it in \
                         production"
                            .into(),
                    );
                }
                if c.google.universe_domain != crate::trust::DEFAULT_UNIVERSE {
                    details.push(format!("Google universe {}", c.google.universe_domain));
                }
                self.push(Check::ok("aurora2bq config", details));
                Some(c)
            }
            Err(e) => {
                self.push(Check::failed(
                    "aurora2bq config",
                    vec![],
                    e.to_string(),
                    Some("fix the file; docs/config.md lists every key".into()),
                ));
                None
            }
        }
    }

    async fn bigquery(&mut self, cfg: &Config, g: &GoogleConfig, token: AccessToken) {
        let name = "BigQuery";
        let sink =
            match BigQuerySink::new(g, &cfg.destination, Arc::new(Fixed(token)), self.http.clone(), "doctor".into()) {
                Ok(s) => s,
                Err(e) => {
                    self.push(Check::failed(name, vec![], format!("{e:#}"), None));
                    return;
                }
            };
        let ds = format!("{}:{}", cfg.destination.project, cfg.destination.dataset);
        let member = crate::auth::member::of(&g.credentials);
        let result = async {
            let d = sink.rest().get_dataset(&cfg.destination.dataset).await?;
            let actual = d["location"].as_str().unwrap_or("?").to_owned();
            // Query jobs run where destination.location says; a dataset elsewhere is not found
            // there, so every run would fail after reading the source.
            if let Some(want) = &cfg.destination.location
                && !want.eq_ignore_ascii_case(&actual)
            {
                return Err(SinkError::Http {
                    what: format!("dataset {ds}"),
                    status: 404,
                    message: format!(
                        "the dataset is in {actual}, but destination.location is {want}: query jobs run in {want} and \
                         will not find it"
                    ),
                    fix: Some(format!("set destination.location = \"{actual}\" (a dataset cannot move)")),
                    transient: false,
                });
            }
            let tables = sink.rest().list_tables(&cfg.destination.dataset).await?;
            let mut details = vec![
                format!("dataset {ds} in {actual}"),
                format!("{} tables listed", tables.len()),
                format!("runs as {}", member.as_deref().unwrap_or("(an access token of unknown identity)")),
            ];
            // Every run's final step is a query job: this needs roles/bigquery.jobUser, which
            // reading the dataset does not show.
            sink.rest()
                .query("running a query job (as each load's final step does)", "SELECT 1", Duration::from_secs(60))
                .await?;
            details.push(format!(
                "query jobs run{}",
                cfg.destination.location.as_deref().map(|l| format!(" in {l}")).unwrap_or_default()
            ));
            if self.options.write_probe {
                sink.write_probe().await?;
                details
                    .push("write probe: created a table, opened and finalized a write stream on it, dropped it".into());
            }
            Ok::<_, SinkError>(details)
        }
        .await;
        match result {
            Ok(details) => self.push(Check::ok(name, details)),
            Err(e) => self.push(Check::failed(name, vec![ds], e.problem(), e.fix())),
        };
    }

    async fn source(&mut self, cfg: &Config) {
        let name = "source database";
        let limits = BatchLimits { rows: 1, bytes: 1024 };
        let src = match source::connect(&cfg.source, limits).await {
            Ok(s) => s,
            Err(e) => {
                self.push(Check::failed(name, vec![], e.problem(), e.fix()));
                return;
            }
        };
        let how = match &cfg.source.auth {
            crate::config::SourceAuth::Password => "password in the URL",
            crate::config::SourceAuth::RdsIam(_) => "an RDS IAM token, TLS verified",
        };
        let mut details = vec![format!("connected ({}, {how})", cfg.source.engine.name())];
        let tables = match source::expand_patterns(&*src, &cfg.tables).await {
            Ok((tables, notes)) => {
                details.extend(notes.into_iter().map(|n| format!("note: {n}")));
                tables
            }
            Err(e) => {
                self.push(Check::failed(name, details, e.problem(), e.fix()));
                return;
            }
        };
        for t in &tables {
            match src.open(t, None).await {
                Ok(read) => {
                    let s = read.schema();
                    let key = if s.primary_key.is_empty() {
                        "no primary key".to_string()
                    } else {
                        format!("key ({})", s.primary_key.join(", "))
                    };
                    details.push(format!("{}: {} columns, {key}", s.display_name, s.columns.len()));
                }
                Err(e) => {
                    self.push(Check::failed(name, details, e.problem(), e.fix()));
                    return;
                }
            }
        }
        self.push(Check::ok(name, details));
    }
}
