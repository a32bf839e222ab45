//! One `[[tables]]` entry: what to read, where it goes, and how it is loaded.

use std::collections::BTreeMap;

/// What a table's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// A table or view; `schema` (MySQL: database) `None` means the connection's default.
    Table { schema: Option<String>, name: String },
    /// A SELECT statement; its columns and types come from the result's metadata.
    Query(String),
    /// Every table of `schema` whose name matches `pattern` (`*`, `?`) and none of `exclude`,
    /// each loaded into a target of its own name with this entry's options. Expanded against
    /// the source's catalog at the start of each run, so new tables are picked up.
    Pattern { schema: Option<String>, pattern: String, exclude: Vec<String> },
}

/// How rows reach the target.
/// Spelled in the config as serde writes the variant (`full_refresh`, `append`, `merge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// Every row, every run; the target is replaced atomically.
    FullRefresh,
    /// Rows past the watermark are inserted (tables without a usable key).
    Append,
    /// Rows past the watermark are merged by key: the newest cursor wins.
    Merge,
}

impl LoadMode {
    /// The mode as the config spells it (serde's spelling, so it is written once).
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// A per-column override of the type mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cast {
    /// Read the column as the database's text form; STRING in BigQuery.
    #[serde(alias = "string")]
    Text,
    /// Force NUMERIC (a value that does not fit is an error).
    Numeric,
    /// Force BIGNUMERIC.
    BigNumeric,
}

/// How the target table is partitioned when aurora2bq creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    /// By a DATE, DATETIME or TIMESTAMP column, at HOUR, DAY, MONTH or YEAR granularity.
    Time { column: String, granularity: String },
    /// By an integer column in [start, end) with buckets of `interval`.
    Range { column: String, start: i64, end: i64, interval: i64 },
}

impl Partition {
    pub fn column(&self) -> &str {
        match self {
            Partition::Time { column, .. } | Partition::Range { column, .. } => column,
        }
    }
}

/// What to do when the source's columns no longer match the target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaChanges {
    /// Add new columns, keep dropped ones (NULL from now on), apply allowed widenings.
    Evolve,
    /// Stop the table on any difference.
    Refuse,
}

/// Options applied when aurora2bq creates the target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetOptions {
    pub partition: Option<Partition>,
    pub cluster_by: Vec<String>,
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Add `_aurora2bq_extracted_at` (TIMESTAMP) and `_aurora2bq_run_id` (STRING).
    pub metadata_columns: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub source: TableSource,
    pub target: String,
    pub mode: LoadMode,
    /// The column that orders changes (incremental modes).
    pub cursor: Option<String>,
    /// How far before the watermark each incremental run re-reads: seconds for time
    /// cursors, days for dates, values for integers. Catches transactions that committed late.
    pub lookback: Option<i64>,
    /// Key columns; default: the primary key.
    pub key: Option<Vec<String>>,
    /// A column whose non-NULL (or true) value marks a deleted row (merge mode).
    pub soft_delete_column: Option<String>,
    /// Merge only: the user declares that keys never differ only in case, accents or
    /// trailing spaces, so BigQuery's byte-wise key comparison may stand in for a
    /// case-insensitive source collation.
    pub keys_as_bytes: bool,
    /// Source column name → BigQuery column name.
    pub rename: BTreeMap<String, String>,
    /// Only these columns, if given.
    pub columns: Option<Vec<String>>,
    pub exclude_columns: Vec<String>,
    pub casts: BTreeMap<String, Cast>,
    /// Key-range chunks read over this many connections, sharing one snapshot.
    pub parallel_chunks: usize,
    pub target_options: TargetOptions,
    pub schema_changes: SchemaChanges,
}

impl TableConfig {
    /// The source as written in the config, for messages.
    pub fn source_name(&self) -> String {
        match &self.source {
            TableSource::Table { schema: Some(s), name } => format!("{s}.{name}"),
            TableSource::Table { schema: None, name } => name.clone(),
            TableSource::Query(_) => format!("query for {}", self.target),
            TableSource::Pattern { schema: Some(s), pattern, .. } => format!("{s}.{pattern}"),
            TableSource::Pattern { schema: None, pattern, .. } => pattern.clone(),
        }
    }

    /// Whether `column` is read at all.
    pub fn includes(&self, column: &str) -> bool {
        let listed = self.columns.as_ref().is_none_or(|cols| cols.iter().any(|c| c == column));
        listed && !self.exclude_columns.iter().any(|c| c == column)
    }

    /// A table named only by its source, for tests and tools.
    pub fn simple(schema: Option<&str>, name: &str) -> Self {
        TableConfig {
            source: TableSource::Table { schema: schema.map(str::to_owned), name: name.to_owned() },
            target: name.to_owned(),
            mode: LoadMode::FullRefresh,
            cursor: None,
            lookback: None,
            key: None,
            soft_delete_column: None,
            keys_as_bytes: false,
            rename: BTreeMap::new(),
            columns: None,
            exclude_columns: Vec::new(),
            casts: BTreeMap::new(),
            parallel_chunks: 1,
            target_options: TargetOptions::default(),
            schema_changes: SchemaChanges::Evolve,
        }
    }
}
