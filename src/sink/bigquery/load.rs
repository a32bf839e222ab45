//! One table's full-refresh load: staging table → PENDING stream → finalize → commit →
//! one transaction that replaces the target's rows → drop staging. A run that dies at any
//! point before the transaction commits leaves the target exactly as it was.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::RecordBatch;
use async_trait::async_trait;

use super::encode::{schema_bytes, split_encode, MAX_ROWS_BYTES};
use super::error::SinkError;
use super::schema::{self, quote};
use super::write::AppendStream;
use super::BigQuerySink;
use crate::config::TableConfig;
use crate::failpoint;
use crate::sink::{LoadStats, TableLoad};
use crate::source::TableSchema;
use crate::types::{arrow_schema, BqField};

/// How long the final transaction may take.
const SWAP_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Appends in flight per stream: enough to keep the connection busy, few enough that
/// memory stays at a few requests' worth.
const MAX_INFLIGHT: usize = 2;

pub struct BigQueryLoad {
    sink: Arc<BigQuerySink>,
    target: String,
    staging: String,
    fields: Vec<BqField>,
    stream: Option<AppendStream>,
    rows_sent: i64,
}

impl BigQueryLoad {
    pub async fn begin(
        sink: Arc<BigQuerySink>,
        table: &TableConfig,
        source: &TableSchema,
    ) -> Result<Self, SinkError> {
        let fields = source.fields();
        if let Some(bad) = fields.iter().find(|f| !schema::valid_column_name(&f.name)) {
            return Err(SinkError::Schema {
                table: source.display_name.clone(),
                detail: format!(
                    "column {:?} is not a valid BigQuery column name (letters, digits, underscores; \
                     not starting with a digit); exclude it with `exclude_columns`",
                    bad.name
                ),
            });
        }
        let target = table.target.clone();
        let short_run: String = sink.run_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        let base: String = target.chars().take(900).collect();
        let staging = format!("{base}__aurora2bq_staging_{short_run}");
        let expires = SystemTime::now() + sink.dest.staging_expiration;
        let expires_ms = expires.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let description = format!(
            "aurora2bq staging for {target}, run {}; dropped after the load, expires on its own",
            sink.run_id
        );
        let resource = schema::table_resource(
            &sink.dest.project,
            &sink.dest.dataset,
            &staging,
            &fields,
            Some(expires_ms),
            Some(&description),
        );
        sink.rest.create_table(&sink.dest.dataset, &resource).await?;
        let begun = async {
            let stream_name = sink.write.create_pending_stream(&sink.table_path(&staging)).await?;
            let schema = bytes::Bytes::from(schema_bytes(&arrow_schema(&fields)));
            Ok::<_, SinkError>(AppendStream::start(sink.write.clone(), stream_name, schema, MAX_INFLIGHT))
        }
        .await;
        let stream = match begun {
            Ok(s) => s,
            Err(e) => {
                drop_staging(&sink, &staging).await;
                return Err(e);
            }
        };
        Ok(Self { sink, target, staging, fields, stream: Some(stream), rows_sent: 0 })
    }

    /// Creates the target if it is missing and adds columns the source gained. A type
    /// change stops the table: replacing data under a different type would change values.
    async fn ensure_target(&self) -> Result<(), SinkError> {
        let s = &self.sink;
        let Some(existing) = s.rest.get_table(&s.dest.dataset, &self.target).await? else {
            let resource =
                schema::table_resource(&s.dest.project, &s.dest.dataset, &self.target, &self.fields, None, None);
            return s.rest.create_table(&s.dest.dataset, &resource).await;
        };
        let diff = schema::diff(&schema::existing_fields(&existing), &self.fields);
        if !diff.changed.is_empty() {
            let list: Vec<String> =
                diff.changed.iter().map(|(n, t, u)| format!("{n}: {t} in BigQuery, {u} from the source")).collect();
            return Err(SinkError::Schema {
                table: self.target.clone(),
                detail: format!(
                    "column types changed ({}); the target was left as it was. Drop or rename the \
                     target table to reload it with the new types, or cast the column in the source",
                    list.join("; ")
                ),
            });
        }
        if !diff.missing_in_source.is_empty() {
            tracing::warn!(table = %self.target, columns = ?diff.missing_in_source,
                "target columns no longer in the source are kept and loaded as NULL");
        }
        for f in &diff.added {
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote(&[&s.dest.project, &s.dest.dataset, &self.target]),
                quote(&[&f.name]),
                if f.repeated { format!("ARRAY<{}>", f.ty.rest_name()) } else { f.ty.rest_name().to_owned() }
            );
            s.rest.query(&format!("adding column {} to {}", f.name, self.target), &sql, SWAP_DEADLINE).await?;
        }
        Ok(())
    }

    /// One transaction: the target's rows are replaced by the staging table's, or not at all.
    async fn swap(&self) -> Result<(), SinkError> {
        let s = &self.sink;
        let target = quote(&[&s.dest.project, &s.dest.dataset, &self.target]);
        let staging = quote(&[&s.dest.project, &s.dest.dataset, &self.staging]);
        let cols: Vec<String> = self.fields.iter().map(|f| quote(&[&f.name])).collect();
        let cols = cols.join(", ");
        let sql = format!(
            "BEGIN TRANSACTION;\n\
             DELETE FROM {target} WHERE TRUE;\n\
             INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging};\n\
             COMMIT TRANSACTION;"
        );
        s.rest.query(&format!("replacing the rows of {}", self.target), &sql, SWAP_DEADLINE).await?;
        Ok(())
    }
}

#[async_trait]
impl TableLoad for BigQueryLoad {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        let stream = self.stream.as_mut().expect("write after commit");
        for (rows, bytes) in split_encode(&batch, MAX_ROWS_BYTES)? {
            stream.append(bytes::Bytes::from(bytes), rows).await?;
            self.rows_sent += rows as i64;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<LoadStats, SinkError> {
        let result = async {
            let stream = self.stream.take().expect("commit once");
            let name = stream.name.clone();
            let outcome = stream.finish().await?;
            failpoint::hit("before-finalize");
            let finalized = self.sink.write.finalize(&name).await?;
            if outcome.rows != self.rows_sent || finalized != self.rows_sent {
                return Err(SinkError::Schema {
                    table: self.target.clone(),
                    detail: format!(
                        "row count mismatch: {} sent, {} acknowledged, {} in the finalized stream; \
                         nothing was committed",
                        self.rows_sent, outcome.rows, finalized
                    ),
                });
            }
            failpoint::hit("before-staging-commit");
            self.sink.write.batch_commit(&self.sink.table_path(&self.staging), &[name]).await?;
            failpoint::hit("after-staging-commit");
            self.ensure_target().await?;
            self.swap().await?;
            failpoint::hit("after-swap");
            Ok(LoadStats { rows: self.rows_sent, bytes: outcome.bytes })
        }
        .await;
        drop_staging(&self.sink, &self.staging).await;
        result
    }

    async fn abort(mut self: Box<Self>) {
        // Dropping the stream's handle ends its task; a PENDING stream never committed is
        // discarded by BigQuery.
        self.stream.take();
        drop_staging(&self.sink, &self.staging).await;
    }
}

/// Best effort, briefly: the staging table expires on its own if this fails.
async fn drop_staging(sink: &BigQuerySink, staging: &str) {
    let r = tokio::time::timeout(Duration::from_secs(30), sink.rest.delete_table(&sink.dest.dataset, staging)).await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(table = staging, error = %e, "could not drop the staging table; it will expire"),
        Err(_) => tracing::warn!(table = staging, "dropping the staging table timed out; it will expire"),
    }
}
