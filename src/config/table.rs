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
    /// In a sharded run, spread the `parallel_chunks` chunks over the shards, the table
    /// committed once by whichever shard finishes its chunks last (`sink::bigquery::parts`).
    pub split_across_shards: bool,
    /// Set when a sharded run chooses its tables: the chunks of a split table this shard
    /// reads. `None`: the whole table.
    pub part: Option<ShardPart>,
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
            split_across_shards: false,
            part: None,
            target_options: TargetOptions::default(),
            schema_changes: SchemaChanges::Evolve,
        }
    }
}

/// One shard's share of a table split across the shards of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPart {
    /// The run all shards belong to (the Indexed Job's name): where they meet in BigQuery.
    pub group: String,
    /// This shard's index, which names its part.
    pub shard: u32,
    /// The table's chunks in all (`parallel_chunks`), and this shard's among them.
    pub chunks: usize,
    pub mine: Vec<usize>,
    /// What every shard reads by, agreed through BigQuery before any reads; set by the
    /// pipeline before the table is opened.
    pub plan: Option<SplitPlan>,
}

/// The bounds all shards of a split table read by, fixed once by the first shard to plan
/// it. Numbers only: what comes back from BigQuery never becomes SQL text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitPlan {
    /// The integer key's range when planned: the chunks' boundaries (the first and last
    /// chunks are open-ended, so keys outside it are read too).
    pub lo: i64,
    pub hi: i64,
    /// The window's upper bound for every shard (the cursor's value as an integer: µs,
    /// days or the integer itself): the database clock when planned, or the largest integer
    /// cursor then. `None` for full refresh.
    pub until: Option<i64>,
    /// The watermark (as the state table stores it, JSON) and fence the table's state held
    /// when planned: every shard's window starts there, and the commit is fenced by it.
    pub after: Option<String>,
    pub fence: Option<String>,
    /// The run id the table's state records when the split commits: a shard that finds it
    /// there knows another shard of this run committed the table.
    pub commit_id: String,
}
