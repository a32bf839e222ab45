//! Sinks: where batches go. The [`Sink`] trait is the seam the pipeline uses; BigQuery is
//! the one real implementation.

pub mod bigquery;

use arrow_array::RecordBatch;
use async_trait::async_trait;

pub use bigquery::error::SinkError;

use crate::config::TableConfig;
use crate::source::TableSchema;

/// What one table's load wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadStats {
    pub rows: i64,
    /// Bytes sent to BigQuery (Arrow IPC).
    pub bytes: u64,
}

/// A destination for tables.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Prepares to receive one table's rows (e.g. a staging table and a write stream).
    async fn begin(
        &self,
        table: &TableConfig,
        schema: &TableSchema,
    ) -> Result<Box<dyn TableLoad>, SinkError>;
}

/// One table's load: rows in, then all of them become visible at once, or none do.
#[async_trait]
pub trait TableLoad: Send {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError>;

    /// Makes every row written visible in the target atomically.
    async fn commit(self: Box<Self>) -> Result<LoadStats, SinkError>;

    /// Gives up: nothing written becomes visible; temporary objects are removed.
    async fn abort(self: Box<Self>);
}
