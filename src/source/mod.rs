//! Sources: read one table inside one consistent read-only snapshot and stream it as
//! bounded Arrow RecordBatches into a channel (whose bound gives back-pressure).
//!
//! One module per engine; both map their column types onto [`crate::bq_model::BqType`] and
//! refuse, with table, column and the config key to use, what they cannot carry exactly.

pub mod batch;
mod decimal_text;
pub(crate) mod iam;
pub mod mysql;
pub mod names;
mod plan;
pub mod postgres;
pub mod window;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::bq_model::BqField;
use crate::config::{Engine, SourceConfig, TableConfig};
use crate::describe::Diagnosis;

/// A source failure: the problem, and apart from it the fix ([`Diagnosis`]).
#[derive(Debug)]
pub enum SourceError {
    Url(String),
    /// A link of the AWS chain for RDS IAM authentication.
    Aws(crate::aws::AwsError),
    Connect {
        engine: Engine,
        target: String,
        source: sqlx::Error,
    },
    Query {
        table: String,
        what: &'static str,
        source: sqlx::Error,
    },
    /// The table is not there, or the user cannot see it.
    NotFound {
        table: String,
        engine: Engine,
    },
    NoSelect {
        table: String,
        user: String,
    },
    Unsupported {
        table: String,
        column: String,
        ty: String,
    },
    /// A value that cannot be carried exactly; `detail` names the way around it.
    Value {
        table: String,
        column: String,
        key: String,
        detail: String,
    },
    /// The database's answer broke the wire protocol as we read it.
    Protocol {
        table: String,
        detail: String,
    },
    Cancelled {
        table: String,
    },
    /// The table's configuration does not fit the source table.
    Config {
        table: String,
        detail: String,
    },
    /// The data cannot be loaded exactly once as configured; nothing was read.
    Refused {
        table: String,
        problem: String,
        fix: String,
    },
}

impl Diagnosis for SourceError {
    fn problem(&self) -> String {
        use SourceError::*;
        let chain = crate::describe::error_chain;
        match self {
            Url(detail) => format!("cannot read the source connection URL: {detail}"),
            Aws(e) => e.problem(),
            Connect { engine, target, source } => {
                format!("cannot connect to {} at {target}: {}", engine.display_name(), chain(source))
            }
            Query { table, what, source } => format!("{table}: {what}: {}", chain(source)),
            NotFound { table, .. } => format!("{table}: table not found or not visible to this user"),
            NoSelect { table, user } => format!("{table}: the user {user:?} has no SELECT privilege"),
            Unsupported { table, column, ty } => format!("{table}.{column}: type {ty} is not supported"),
            Value { table, column, key, detail } => format!("{table}.{column}, row with key {key}: {detail}"),
            Protocol { table, detail } | Config { table, detail } => format!("{table}: {detail}"),
            Cancelled { table } => format!("{table}: the run stopped while rows were being read"),
            Refused { table, problem, .. } => format!("{table}: {problem}"),
        }
    }

    fn fix(&self) -> Option<String> {
        use SourceError::*;
        Some(match self {
            Url(_) => "set the connection URL in the variable or file that source.url_env / url_file names".into(),
            Connect { source, .. } => tls_fix(&crate::describe::error_chain(source))
                .unwrap_or(
                    "check host, port, user and password in the URL, that the pod's security group may reach the \
                 cluster, and source.ca_file if TLS is required",
                )
                .into(),
            NotFound { table, engine: Engine::Postgres } => format!(
                "check `tables[].source` ({table}), and that the user can see the schema: GRANT USAGE ON SCHEMA \
                 <schema> TO <user>;"
            ),
            NotFound { table, engine: Engine::Mysql } => format!(
                "check `tables[].source` ({table}, as database.table); MySQL lists only tables the user holds a \
                 privilege on: GRANT SELECT ON <database>.<table> TO '<user>'@'<host>';"
            ),
            NoSelect { table, user } => format!("GRANT SELECT ON {table} TO {user};"),
            Unsupported { column, .. } => format!(
                "exclude the column (`exclude_columns = [\"{column}\"]` under this table) or read it as text \
                 (`cast = {{ {column} = \"text\" }}`)"
            ),
            Refused { fix, .. } => fix.clone(),
            Aws(e) => return e.fix(),
            Query { .. } | Value { .. } | Protocol { .. } | Cancelled { .. } | Config { .. } => return None,
        })
    }
}

impl SourceError {
    /// A pattern entry reached an engine: [`expand_patterns`] replaces each with its tables
    /// before any is opened, so this is a defect of the caller, said plainly.
    pub(crate) fn unexpanded(table: &TableConfig) -> SourceError {
        SourceError::Config {
            table: table.source_name(),
            detail: "a pattern entry is expanded into its tables before any is read".into(),
        }
    }

    /// Whether a retry may succeed: the database was unreachable or the connection broke
    /// (a failover, a restart), not a fact about the table or the config.
    pub fn is_transient(&self) -> bool {
        let io = |e: &sqlx::Error| {
            matches!(
                e,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed
            )
        };
        match self {
            SourceError::Connect { source, .. } => {
                io(source) && tls_fix(&crate::describe::error_chain(source)).is_none()
            }
            SourceError::Query { source, .. } => io(source),
            SourceError::Aws(e) => e.transient,
            _ => false,
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::describe::render(self, f)
    }
}

// The causes are part of `problem`, so a chain printer does not repeat them after the fix.
impl std::error::Error for SourceError {}

/// The most one row may take in the source's own encoding: a Storage Write request carries
/// at most 10 MB, and a row cannot be split across requests.
pub const MAX_ROW_BYTES: usize = 9 * 1024 * 1024;

/// A value error's detail, with the way around it when the decoder named none: every
/// refusal says what to configure.
pub(crate) fn value_detail(detail: &str, column: &str) -> String {
    let detail = detail.replace("COLUMN", column);
    if detail.contains("cast = ") || detail.contains("zero_dates") || detail.contains("exclude_columns") {
        return detail;
    }
    format!(
        "{detail}; to load it as its text, set `cast = {{ {column} = \"text\" }}` under this table, or leave the \
         column out with `exclude_columns = [\"{column}\"]`"
    )
}

/// The refusal for a row too large for one Storage Write request, naming its largest cell.
pub(crate) fn row_too_large(table: &str, column: &str, key: String, bytes: usize) -> SourceError {
    SourceError::Value {
        table: table.to_owned(),
        column: column.to_owned(),
        key,
        detail: format!(
            "the row takes {bytes} bytes, most of it in this column, more than the {MAX_ROW_BYTES} bytes one \
             Storage Write request can carry (BigQuery's limit is 10 MB per request); leave the column out with \
             `exclude_columns = [\"{column}\"]`, or read a prefix of it through a query source"
        ),
    }
}

/// The fix for the TLS failures rustls reports tersely (by variant name or a short phrase).
fn tls_fix(cause: &str) -> Option<&'static str> {
    let cause = cause.to_lowercase().replace(' ', "");
    Some(if cause.contains("unknownissuer") || cause.contains("badsignature") {
        "the server's certificate is not signed by a CA in source.ca_file; for Aurora use the RDS bundle, \
         https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    } else if cause.contains("notvalidforname") {
        "the URL's host is not a name on the server's certificate; connect by the cluster endpoint's DNS name, \
         not an IP address or a CNAME of your own"
    } else if cause.contains("invalidpeercertificate") && cause.contains("expired") {
        "the server's certificate has expired, or this machine's clock is wrong"
    } else if cause.contains("doesnotsupporttls") {
        "source.ca_file requires TLS but the server offers none: enable TLS on the server, or remove ca_file"
    } else {
        return None;
    })
}

/// One source column and its BigQuery counterpart.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The declared type as the database prints it, for messages and `plan`.
    pub source_type: String,
    pub field: BqField,
}

/// What a table looks like, read from the catalog inside the read snapshot.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// The quoted, fully qualified source name used in messages.
    pub display_name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// What the catalog says of the table's size.
    pub estimate: Estimate,
}

/// A table's size from catalog statistics, not a count: `None` for queries, and rows for
/// tables never analyzed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub rows: Option<u64>,
    /// On disk, indexes included.
    pub bytes: Option<u64>,
}

impl TableSchema {
    pub fn fields(&self) -> Vec<BqField> {
        self.columns.iter().map(|c| c.field.clone()).collect()
    }

    /// The BigQuery name of source column `source` (they differ where `rename` says so).
    pub fn target_name<'a>(&'a self, source: &'a str) -> &'a str {
        self.columns.iter().find(|c| c.name == source).map_or(source, |c| c.field.name.as_str())
    }
}

#[derive(Debug, Default, Clone)]
pub struct ReadStats {
    pub rows: u64,
    /// Bytes of column data as the database sent them.
    pub source_bytes: u64,
    /// The largest (cursor, key) read, for incremental windows; `None` if no row was read.
    pub watermark: Option<window::Watermark>,
    /// Zero dates loaded as NULL (MySQL, `zero_dates = "null"`).
    pub zero_dates: u64,
}

impl ReadStats {
    pub fn add(&mut self, other: &ReadStats) {
        self.rows += other.rows;
        self.source_bytes += other.source_bytes;
        self.zero_dates += other.zero_dates;
    }
}

/// Limits for the batches a source produces.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub rows: usize,
    pub bytes: usize,
}

/// A database to copy from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Opens a read-only snapshot and reads the table's schema inside it. With a window,
    /// only the rows in it are read, and the stats carry the new watermark.
    async fn open(
        &self,
        table: &TableConfig,
        window: Option<&window::Window>,
    ) -> Result<Box<dyn TableRead>, SourceError>;

    /// The tables and views of `schema` (MySQL: database; `None`: the connection's default),
    /// by name, for pattern entries.
    async fn list_tables(&self, schema: Option<&str>) -> Result<Vec<String>, SourceError>;

    /// The bounds a table split across shards would be read by, now: its integer key's range
    /// and the window's upper bound ([`crate::config::SplitPlan`] without the state).
    async fn split_bounds(
        &self,
        table: &TableConfig,
        window: Option<&window::Window>,
    ) -> Result<(i64, i64, Option<i64>), SourceError>;
}

/// One table inside its snapshot: its schema, then its rows.
#[async_trait]
pub trait TableRead: Send {
    fn schema(&self) -> &TableSchema;

    /// The window's checks in the read's snapshot (e.g. NULL cursors under append), before
    /// any row: `read_into` runs them first, and `plan` runs them alone.
    async fn check(&mut self) -> Result<(), SourceError>;

    /// Streams every row into `out` in batches, then ends the snapshot.
    async fn read_into(self: Box<Self>, out: mpsc::Sender<RecordBatch>) -> Result<ReadStats, SourceError>;
}

/// The tables with each pattern entry replaced by the source tables it matches now, and
/// notes on what the patterns left out (see [`crate::config::select::expand`]).
pub async fn expand_patterns(
    source: &dyn Source,
    tables: &[TableConfig],
) -> Result<(Vec<TableConfig>, Vec<String>), SourceError> {
    let mut listed = std::collections::BTreeMap::new();
    for schema in crate::config::select::pattern_schemas(tables) {
        let names = source.list_tables(schema.as_deref()).await?;
        listed.insert(schema, names);
    }
    Ok(crate::config::select::expand(tables, &listed))
}

/// Connects to the configured engine.
pub async fn connect(config: &SourceConfig, limits: BatchLimits) -> Result<Box<dyn Source>, SourceError> {
    let url = read_url(&config.url)?;
    let iam = match &config.auth {
        crate::config::SourceAuth::Password => None,
        crate::config::SourceAuth::RdsIam(iam) => Some(iam::DbIam::new(config, iam, &url)?),
    };
    match config.engine {
        crate::config::Engine::Postgres => Ok(Box::new(postgres::PgSource::connect(config, &url, iam, limits).await?)),
        crate::config::Engine::Mysql => Ok(Box::new(mysql::MySqlSource::connect(config, &url, iam, limits).await?)),
    }
}

/// The connection URL from its environment variable or file; never logged.
pub fn read_url(from: &crate::config::UrlFrom) -> Result<crate::secret::Secret, SourceError> {
    use crate::config::UrlFrom;
    let value = match from {
        UrlFrom::Env(name) => std::env::var(name).map_err(|_| {
            SourceError::Url(format!(
                "environment variable {name} (source.url_env) is not set; set it to the \
                 connection URL, e.g. postgres://user:password@host:5432/db"
            ))
        })?,
        UrlFrom::File(path) => std::fs::read_to_string(path)
            .map_err(|e| SourceError::Url(format!("{} (source.url_file): {e}", path.display())))?,
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(SourceError::Url("the connection URL is empty".into()));
    }
    Ok(crate::secret::Secret::new(value))
}

/// `user@host:port/db` of a URL, without the password, for messages.
pub fn describe_url(url: &crate::secret::Secret) -> String {
    match url::Url::parse(url.expose()) {
        Ok(u) => format!(
            "{}@{}:{}{}",
            u.username(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| p.to_string()).unwrap_or_else(|| "default".into()),
            u.path()
        ),
        Err(_) => "(unparsable URL)".into(),
    }
}
