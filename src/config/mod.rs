//! The TOML configuration: what to copy, from where, to where, with which credentials.
//!
//! `load` parses the file into raw serde structs (unknown keys are errors, with line and
//! column from the TOML parser) and `validate` turns them into a [`Config`] whose values are
//! known to be usable; it does no I/O, so a bad file fails before anything is contacted.
//! Every key is documented in `docs/config.md`.

mod raw;
pub mod select;
pub mod shard;
mod table;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use table::{
    Cast, LoadMode, Partition, SchemaChanges, ShardPart, SplitPlan, TableConfig, TableSource, TargetOptions,
};
pub use validate::validate;

/// Where a configuration problem is: the file, the 1-based line, the dotted key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}, line {line}, key `{key}`: {message}")]
    Invalid { path: PathBuf, line: usize, key: String, message: String },
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse(path, &text)
}

/// Parses and validates config text; `path` only labels errors.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: raw::RawConfig = toml::from_str(text)
        // The parser quotes the offending line, which may be a connection URL with its password.
        .map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: crate::secret::redact_userinfo(e.to_string().trim_end()),
        })?;
    validate(path, text, raw)
}

#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceConfig,
    pub destination: Destination,
    pub google: GoogleConfig,
    pub run: RunConfig,
    pub metrics: MetricsConfig,
    pub tables: Vec<TableConfig>,
}

/// Where run metrics go besides the log's embedded metrics.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// A Prometheus Pushgateway; every run replaces its group there.
    pub pushgateway: Option<url::Url>,
    /// The `job` label of the pushed group.
    pub job: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[serde(alias = "postgresql")]
    Postgres,
    Mysql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    /// The engine's name as its makers write it, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL",
        }
    }
}

/// Where the connection URL (which carries the password) comes from. It is never written
/// in the config itself, so the config can live in a ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlFrom {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub engine: Engine,
    pub url: UrlFrom,
    pub application_name: String,
    /// Server-side limit on each statement; `None` leaves the server's default.
    pub statement_timeout: Option<Duration>,
    pub connect_timeout: Duration,
    /// CA bundle (e.g. the RDS global bundle) used to verify the server certificate.
    pub ca_file: Option<PathBuf>,
    /// What to do with MySQL zero dates (`0000-00-00`), which have no BigQuery value.
    pub zero_dates: ZeroDates,
    /// How the database user proves itself.
    pub auth: SourceAuth,
}

/// The database password: in the URL, or an RDS IAM token signed for each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAuth {
    Password,
    /// The URL carries no password; TLS is verified against the RDS CA bundle (or ca_file).
    RdsIam(IamConfig),
}

/// Where the AWS identity comes from: each `None` falls back to the variable IRSA sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IamConfig {
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Checked against the trust rules when the config is read (`source.aws_sts_url`).
    pub sts_url: Option<url::Url>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroDates {
    /// Stop the table with an error naming the column and row.
    Error,
    /// Load NULL, and count how many in the summary.
    Null,
}

#[derive(Debug, Clone)]
pub struct Destination {
    pub project: String,
    pub dataset: String,
    pub location: Option<String>,
    /// Staging tables expire on their own after this long, in case a run dies before
    /// dropping them.
    pub staging_expiration: Duration,
}

/// Which Google credential to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsFrom {
    /// A credential file (`external_account`, ...); `None` means
    /// `$GOOGLE_APPLICATION_CREDENTIALS`.
    File(Option<PathBuf>),
    /// A file holding a bare access token, re-read on every use (local runs).
    AccessTokenFile(PathBuf),
}

#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub credentials: CredentialsFrom,
    pub bigquery_url: url::Url,
    pub storage_write_url: url::Url,
    /// Development switch: accept non-Google or plain-HTTP endpoints. Off in production so
    /// a hostile credential config cannot send the pod's token elsewhere.
    pub allow_insecure_endpoints: bool,
    /// The only Google universe tokens may go to; a credential file naming another is refused.
    pub universe_domain: String,
    pub request_timeout: Duration,
    /// The one retry policy for STS, IAM, BigQuery REST and the Storage Write API.
    pub retry: crate::retry::Policy,
}

impl GoogleConfig {
    /// Where tokens may go: decided here, never by a credential file.
    pub fn endpoint_policy(&self) -> crate::trust::EndpointPolicy {
        crate::trust::EndpointPolicy::new(self.allow_insecure_endpoints, &self.universe_domain)
    }
}

impl Default for GoogleConfig {
    /// Google's endpoints and the default credential lookup.
    fn default() -> Self {
        Self {
            credentials: CredentialsFrom::File(None),
            bigquery_url: url::Url::parse("https://bigquery.googleapis.com").expect("static URL"),
            storage_write_url: url::Url::parse("https://bigquerystorage.googleapis.com").expect("static URL"),
            allow_insecure_endpoints: false,
            universe_domain: crate::trust::DEFAULT_UNIVERSE.into(),
            request_timeout: Duration::from_secs(60),
            retry: crate::retry::Policy::STANDARD,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    /// A batch is closed when it holds this many rows ...
    pub batch_rows: usize,
    /// ... or about this many bytes of column data, whichever comes first.
    pub batch_bytes: usize,
    /// Tables copied at the same time.
    pub table_concurrency: usize,
    /// Upper bound for one table, start to finish.
    pub table_timeout: Duration,
    /// Off a terminal, how often each running table logs its progress.
    pub heartbeat: Duration,
    /// Shards of a run in an Indexed Job (`JOB_COMPLETION_INDEX` says which); `None`: one.
    pub shards: Option<u32>,
}
