//! Sinks: where batches go. The [`Sink`] trait is the seam the pipeline uses; BigQuery is
//! the one real implementation.

pub mod bigquery;

use std::collections::HashMap;

use arrow_array::RecordBatch;
use async_trait::async_trait;

pub use bigquery::error::SinkError;

use crate::config::{SplitPlan, TableConfig};
use crate::source::window::Watermark;
use crate::source::{ReadStats, TableSchema};

/// What one table's load wrote.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    pub rows: i64,
    /// Bytes sent to BigQuery (Arrow IPC).
    pub bytes: u64,
    /// Zero dates loaded as NULL.
    pub zero_dates: u64,
}

/// What a load needs to know besides the rows.
pub struct LoadPlan<'a> {
    pub table: &'a TableConfig,
    pub schema: &'a TableSchema,
    /// Key columns for merge (the config's, else the primary key).
    pub key: Vec<String>,
    /// The watermark the window started after.
    pub previous: Option<Watermark>,
    /// The run that last committed this table, as read before the load began: the load
    /// commits only if it still is (another run of the same config must not interleave).
    pub fence: Fence,
    /// Replace the target's rows with everything read (`--full-refresh` of an incremental
    /// table), and record the read's watermark: the table keeps its mode for later runs.
    pub reload: bool,
}

/// What a table's state said when a run read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prior {
    pub watermark: Option<Watermark>,
    pub fence: Fence,
}

/// The id of the run that last committed a table (`None`: never loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence(pub Option<String>);

/// One table's outcome in one run, for the run history.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub version: String,
    pub target: String,
    pub source: String,
    pub mode: String,
    /// `ok`, `failed` or `stopped` (a signal or the table's timeout).
    pub status: String,
    pub rows: i64,
    pub bytes: u64,
    pub seconds: f64,
    pub error: Option<String>,
    pub started_us: i64,
    pub finished_us: i64,
}

/// A destination for tables.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The stored state of a table: its watermark and which run last committed it.
    async fn prior(&self, table: &TableConfig) -> Result<Prior, SinkError>;

    /// The stored state of many tables at once, by target, every one of `targets` included
    /// (never loaded: the default), in as few round trips as the sink can.
    async fn priors(&self, targets: &[&str]) -> Result<HashMap<String, Prior>, SinkError>;

    /// The plan every shard of `group` reads a split table by: `proposal` if this shard is
    /// the first to plan it, else the one another shard stored.
    async fn agree_split(&self, target: &str, group: &str, proposal: SplitPlan) -> Result<SplitPlan, SinkError>;

    /// Prepares to receive one table's rows (e.g. a staging table and a write stream).
    async fn begin(&self, plan: LoadPlan<'_>) -> Result<Box<dyn TableLoad>, SinkError>;

    /// Appends the run's outcomes to the run history. Best effort: the caller logs a failure
    /// and goes on.
    async fn record_run(&self, records: &[RunRecord]) -> Result<(), SinkError>;

    /// Waits, for a bounded time, for the clean-up that finished loads left running in the
    /// background (e.g. dropping staging tables). Call once, when no table is loading.
    async fn settle(&self);
}

/// One table's load: rows in, then all of them become visible at once, or none do.
#[async_trait]
pub trait TableLoad: Send {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError>;

    /// Makes every row written visible in the target, and records the read's watermark,
    /// atomically.
    async fn commit(self: Box<Self>, read: &ReadStats) -> Result<LoadStats, SinkError>;

    /// Gives up: nothing written becomes visible; temporary objects are removed.
    async fn abort(self: Box<Self>);
}
