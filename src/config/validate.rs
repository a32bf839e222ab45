//! Pure validation from the raw file to [`Config`]: every bad value is reported with the
//! line it is on and the key that holds it.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawConfig, RawDestination, RawGoogle, RawMetrics, RawRetry, RawRun, RawSource};
use super::*;

pub(super) struct Ctx<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    pub fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.line(span),
            key: key.to_owned(),
            // Messages quote values; a URL pasted in by mistake must not print its password.
            message: crate::secret::redact_userinfo(&message.into()),
        }
    }

    /// A positive number within `range`, else an error naming the key.
    /// One of the enumerations the config offers, parsed by the enum's own serde spelling;
    /// anything else names the key, its line and the choices.
    pub fn choice<T: serde::de::DeserializeOwned>(&self, v: &Spanned<String>, key: &str) -> Result<T, ConfigError> {
        use serde::de::IntoDeserializer;
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            v.get_ref().as_str().into_deserializer();
        T::deserialize(de).map_err(|e| self.err(v.span(), key, format!("{:?}: {e}", v.get_ref())))
    }

    pub fn bounded(
        &self,
        v: &Option<Spanned<u64>>,
        key: &str,
        default: u64,
        range: Range<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        if !range.contains(&n) {
            return Err(self.err(
                v.span(),
                key,
                format!("{n} is out of range: use {} to {}", range.start, range.end - 1),
            ));
        }
        Ok(n)
    }
}

pub fn validate(path: &Path, text: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let cx = Ctx { path, text };
    let google = google(&cx, raw.google)?;
    let source = source(&cx, raw.source, google.allow_insecure_endpoints)?;
    let destination = destination(&cx, raw.destination)?;
    let run = run(&cx, raw.run)?;
    let metrics = metrics(&cx, raw.metrics)?;
    let tables = tables::tables(&cx, source.engine, raw.tables)?;
    Ok(Config { source, destination, google, run, metrics, tables })
}

fn source(cx: &Ctx, raw: Spanned<RawSource>, allow_insecure: bool) -> Result<SourceConfig, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let engine = cx.choice(&raw.engine, "source.engine")?;
    let auth = source_auth::auth(cx, &raw, allow_insecure)?;
    let url = match (raw.url_env, raw.url_file) {
        (Some(env), None) => {
            let name = env.get_ref();
            let ok = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(cx.err(
                    env.span(),
                    "source.url_env",
                    format!("{name:?} is not an environment variable name"),
                ));
            }
            UrlFrom::Env(name.clone())
        }
        (None, Some(file)) => UrlFrom::File(non_empty_path(cx, &file, "source.url_file")?),
        (Some(env), Some(_)) => {
            return Err(cx.err(env.span(), "source.url_env", "set either url_env or url_file, not both"));
        }
        (None, None) => {
            return Err(cx.err(
                span,
                "source",
                "no connection URL: set url_env (an environment variable holding the URL) or \
                 url_file (a file holding it); the URL itself never goes in this file",
            ));
        }
    };
    let application_name =
        raw.application_name.as_ref().map(|s| s.get_ref().clone()).unwrap_or_else(|| "aurora2bq".into());
    let statement_timeout =
        cx.bounded(&raw.statement_timeout_seconds, "source.statement_timeout_seconds", 0, 0..86_401)?;
    let connect_timeout = cx.bounded(&raw.connect_timeout_seconds, "source.connect_timeout_seconds", 30, 1..601)?;
    let ca_file = raw.ca_file.as_ref().map(|f| non_empty_path(cx, f, "source.ca_file")).transpose()?;
    let zero_dates = match &raw.zero_dates {
        Some(z) => cx.choice(z, "source.zero_dates")?,
        None => ZeroDates::Error,
    };
    Ok(SourceConfig {
        engine,
        url,
        application_name,
        statement_timeout: (statement_timeout > 0).then(|| Duration::from_secs(statement_timeout)),
        connect_timeout: Duration::from_secs(connect_timeout),
        ca_file,
        zero_dates,
        auth,
    })
}

fn destination(cx: &Ctx, raw: Spanned<RawDestination>) -> Result<Destination, ConfigError> {
    let raw = raw.into_inner();
    let project = raw.project.get_ref();
    let project_ok = !project.is_empty()
        && project.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
    if !project_ok {
        return Err(cx.err(
            raw.project.span(),
            "destination.project",
            format!("{project:?} is not a Google Cloud project ID (lowercase letters, digits, hyphens)"),
        ));
    }
    let dataset = raw.dataset.get_ref();
    if !is_bq_name(dataset) {
        return Err(cx.err(
            raw.dataset.span(),
            "destination.dataset",
            format!("{dataset:?} is not a BigQuery dataset ID (letters, digits, underscores)"),
        ));
    }
    let hours = cx.bounded(&raw.staging_expiration_hours, "destination.staging_expiration_hours", 24, 1..721)?;
    Ok(Destination {
        project: project.clone(),
        dataset: dataset.clone(),
        location: raw.location.map(|l| l.into_inner()),
        staging_expiration: Duration::from_secs(hours * 3600),
    })
}

fn google(cx: &Ctx, raw: RawGoogle) -> Result<GoogleConfig, ConfigError> {
    let credentials = match (raw.credentials, raw.access_token_file) {
        (Some(c), None) => CredentialsFrom::File(Some(non_empty_path(cx, &c, "google.credentials")?)),
        (None, Some(t)) => CredentialsFrom::AccessTokenFile(non_empty_path(cx, &t, "google.access_token_file")?),
        (None, None) => CredentialsFrom::File(None),
        (Some(c), Some(_)) => {
            return Err(cx.err(
                c.span(),
                "google.credentials",
                "set either credentials or access_token_file, not both",
            ));
        }
    };
    let url = |v: Option<Spanned<String>>, key: &str, default: &str| match v {
        None => Ok(url::Url::parse(default).expect("default URL parses")),
        Some(v) => url::Url::parse(v.get_ref())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| cx.err(v.span(), key, format!("{:?} is not an http(s) URL", v.get_ref()))),
    };
    let allow_insecure = raw.allow_insecure_endpoints.unwrap_or(false);
    let universe_domain = match &raw.universe_domain {
        None => crate::trust::DEFAULT_UNIVERSE.to_owned(),
        Some(v) if is_domain(v.get_ref()) => v.get_ref().to_ascii_lowercase(),
        Some(v) => {
            return Err(cx.err(v.span(), "google.universe_domain", "is not a domain name such as googleapis.com"));
        }
    };
    // These endpoints receive the access token: the same rule as a credential file's, checked
    // here so that `doctor` and `run` refuse them before anything is contacted.
    let policy = crate::trust::EndpointPolicy::new(allow_insecure, &universe_domain);
    let endpoint = |v: Option<Spanned<String>>, key: &str, default: &str, service| {
        let span = v.as_ref().map(|v| v.span()).unwrap_or(0..0);
        let u = url(v, key, default)?;
        crate::trust::check(&policy, service, key, u.as_str()).map_err(|m| cx.err(span, key, m))?;
        Ok::<_, ConfigError>(u)
    };
    use crate::trust::Service;
    Ok(GoogleConfig {
        credentials,
        bigquery_url: endpoint(
            raw.bigquery_url,
            "google.bigquery_url",
            &format!("https://bigquery.{universe_domain}"),
            Service::BigQuery,
        )?,
        storage_write_url: endpoint(
            raw.storage_write_url,
            "google.storage_write_url",
            &format!("https://bigquerystorage.{universe_domain}"),
            Service::BigQueryStorage,
        )?,
        allow_insecure_endpoints: allow_insecure,
        universe_domain,
        request_timeout: Duration::from_secs(cx.bounded(
            &raw.request_timeout_seconds,
            "google.request_timeout_seconds",
            60,
            1..3601,
        )?),
        retry: retry(cx, raw.retry.unwrap_or_default())?,
    })
}

/// Bounded on every side: a CronJob must end however Google answers.
fn retry(cx: &Ctx, raw: RawRetry) -> Result<crate::retry::Policy, ConfigError> {
    let std = crate::retry::Policy::STANDARD;
    let initial_ms = std.initial_delay.as_millis() as u64;
    let policy = crate::retry::Policy {
        max_attempts: cx.bounded(&raw.max_attempts, "google.retry.max_attempts", std.max_attempts.into(), 1..21)?
            as u32,
        initial_delay: Duration::from_millis(cx.bounded(
            &raw.initial_delay_ms,
            "google.retry.initial_delay_ms",
            initial_ms,
            10..60_001,
        )?),
        max_delay: Duration::from_secs(cx.bounded(
            &raw.max_delay_seconds,
            "google.retry.max_delay_seconds",
            std.max_delay.as_secs(),
            1..601,
        )?),
        deadline: Duration::from_secs(cx.bounded(
            &raw.deadline_seconds,
            "google.retry.deadline_seconds",
            std.deadline.as_secs(),
            1..3601,
        )?),
    };
    if let Some(v) = &raw.max_delay_seconds
        && policy.max_delay < policy.initial_delay
    {
        return Err(cx.err(v.span(), "google.retry.max_delay_seconds", "is shorter than initial_delay_ms"));
    }
    Ok(policy)
}

fn run(cx: &Ctx, raw: RawRun) -> Result<RunConfig, ConfigError> {
    Ok(RunConfig {
        batch_rows: cx.bounded(&raw.batch_rows, "run.batch_rows", 100_000, 1..10_000_001)? as usize,
        // Stays well under the Storage Write API's 10 MB request limit after encoding.
        batch_bytes: cx.bounded(&raw.batch_bytes, "run.batch_bytes", 4 << 20, 1024..(9 << 20) + 1)? as usize,
        table_concurrency: cx.bounded(&raw.table_concurrency, "run.table_concurrency", 2, 1..65)? as usize,
        table_timeout: Duration::from_secs(
            60 * cx.bounded(&raw.table_timeout_minutes, "run.table_timeout_minutes", 120, 1..1441)?,
        ),
        heartbeat: Duration::from_secs(cx.bounded(&raw.heartbeat_seconds, "run.heartbeat_seconds", 30, 1..3601)?),
        shards: match &raw.shards {
            None => None,
            Some(_) => Some(cx.bounded(&raw.shards, "run.shards", 1, 1..1001)? as u32),
        },
    })
}

fn metrics(cx: &Ctx, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
    let pushgateway = match &raw.pushgateway_url {
        None => None,
        Some(u) => match url::Url::parse(u.get_ref()) {
            // Only counts and table names go there, no secret: plain HTTP inside a cluster is fine.
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            _ => {
                return Err(cx.err(
                    u.span(),
                    "metrics.pushgateway_url",
                    format!(
                        "{:?} is not an http(s) URL: give the Pushgateway's, e.g. http://pushgateway:9091",
                        u.get_ref()
                    ),
                ));
            }
        },
    };
    let job = match &raw.job {
        Some(j) if !j.get_ref().is_empty() && !j.get_ref().contains('/') => j.get_ref().clone(),
        Some(j) => return Err(cx.err(j.span(), "metrics.job", "must be non-empty and hold no '/'")),
        None => "aurora2bq".into(),
    };
    Ok(MetricsConfig { pushgateway, job })
}

pub(super) fn non_empty_path(cx: &Ctx, v: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
    if v.get_ref().trim().is_empty() {
        return Err(cx.err(v.span(), key, "is empty: give a file path"));
    }
    Ok(PathBuf::from(v.get_ref()))
}

/// Two or more DNS labels of letters, digits and hyphens.
fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && s.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Dataset and table IDs we create: ASCII letters, digits and underscores, at most 1024.
pub(super) fn is_bq_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

mod source_auth;
mod tables;
#[cfg(test)]
mod tests;
