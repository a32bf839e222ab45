//! One table's load: staging table → PENDING stream → finalize → commit → one transaction
//! that applies the mode's statement to the target and records the watermark → drop
//! staging. A run that dies at any point before the transaction commits leaves the target
//! and its watermark exactly as they were; the next run repeats the work.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod split;

use arrow_array::RecordBatch;
use async_trait::async_trait;

use super::encode::{MAX_ROWS_BYTES, schema_bytes, split_encode};
use super::error::SinkError;
use super::schema::{self, quote};
use super::sql::{self, Load, Merge};
use super::state::Record;
use super::write::AppendStream;
use super::{BigQuerySink, parts, target};
use crate::bq_model::{BqField, BqType, arrow_schema};
use crate::config::{LoadMode, TableConfig};
use crate::failpoint;
use crate::sink::{LoadPlan, LoadStats, TableLoad};
use crate::source::ReadStats;
use crate::source::window::Watermark;

/// How long the final transaction may take.
const TRANSACTION_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Appends in flight per stream: enough to keep the connection busy, few enough that
/// memory stays at a few requests' worth.
const MAX_INFLIGHT: usize = 2;

pub struct BigQueryLoad {
    sink: BigQuerySink,
    table: TableConfig,
    source_name: String,
    staging: String,
    fields: Vec<BqField>,
    key: Vec<String>,
    /// The cursor and soft-delete columns by their BigQuery names.
    cursor: Option<String>,
    soft_delete: Option<String>,
    previous: Option<Watermark>,
    /// Replace the target with the read instead of applying the mode (`--full-refresh`).
    reload: bool,
    fence: crate::sink::Fence,
    stream: Option<AppendStream>,
    rows_sent: i64,
    started: SystemTime,
    /// Committing a table split across shards (`split.rs`). `None`: this load's staging table.
    split: Option<split::SplitCommit>,
}

impl BigQueryLoad {
    pub async fn begin(mut sink: BigQuerySink, plan: LoadPlan<'_>) -> Result<Self, SinkError> {
        sink.rest = sink.rest.with_labels(&sink.run_id, Some(&plan.table.target));
        let (table, source) = (plan.table, plan.schema);
        let fields = source.fields();
        // The source refuses such names before reading; this keeps the sink's seam honest.
        if let Some((bad, why)) =
            fields.iter().find_map(|f| crate::bq_model::column_name_problem(&f.name).map(|w| (f, w)))
        {
            return Err(SinkError::Schema {
                table: source.display_name.clone(),
                detail: format!(
                    "column {:?} is not a valid BigQuery column name ({why}); give it another with `rename`, or \
                     exclude it with `exclude_columns`",
                    bad.name
                ),
            });
        }
        if table.mode == LoadMode::Merge && plan.key.is_empty() {
            return Err(SinkError::Schema {
                table: source.display_name.clone(),
                detail: "merge needs a key and the table has no primary key: set `key = [\"col\", ...]`".into(),
            });
        }
        let short_run: String = sink.run_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        let base: String = table.target.chars().take(900).collect();
        let staging = match &table.part {
            Some(p) => parts::part_table(&table.target, &p.group, p.shard, &sink.run_id),
            None => format!("{base}__aurora2bq_staging_{short_run}"),
        };
        let expires = SystemTime::now() + sink.dest.staging_expiration;
        let expires_ms = expires.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let description = format!(
            "aurora2bq staging for {}, run {}; dropped after the load, expires on its own",
            table.target, sink.run_id
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
        failpoint::hit("after-create-staging");
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
        Ok(Self {
            sink,
            table: table.clone(),
            source_name: source.display_name.clone(),
            staging,
            fields,
            key: plan.key,
            cursor: table.cursor.as_deref().map(|c| source.target_name(c).to_owned()),
            soft_delete: table.soft_delete_column.as_deref().map(|c| source.target_name(c).to_owned()),
            previous: plan.previous,
            reload: plan.reload,
            fence: plan.fence,
            stream: Some(stream),
            rows_sent: 0,
            started: SystemTime::now(),
            split: None,
        })
    }

    fn q(&self, table: &str) -> String {
        quote(&[&self.sink.dest.project, &self.sink.dest.dataset, table])
    }

    /// Where the rows to apply are: the staging table, or a split table's parts.
    fn rows_from(&self) -> String {
        self.split.as_ref().map_or_else(|| self.q(&self.staging), |s| s.rows_from.clone())
    }

    /// The run id the table's state records.
    fn commit_id(&self) -> &str {
        self.split.as_ref().map_or(self.sink.run_id.as_str(), |s| s.commit_id.as_str())
    }

    /// The target's columns: the source's, plus the metadata columns when asked for.
    fn target_fields(&self) -> Vec<BqField> {
        target_fields(&self.table, &self.fields)
    }

    /// The staging rows' range of the target's partition column, for pruning the MERGE.
    async fn prune(&self) -> Result<Option<(String, String, String)>, SinkError> {
        let Some(p) = &self.table.target_options.partition else { return Ok(None) };
        let col = p.column().to_owned();
        let Some(ty) = self.fields.iter().find(|f| f.name == col).map(|f| f.ty) else { return Ok(None) };
        let as_text = |e: String| {
            if ty == BqType::Timestamp {
                format!("CAST(UNIX_MICROS({e}) AS STRING)")
            } else {
                format!("CAST({e} AS STRING)")
            }
        };
        let c = quote(&[&col]);
        let sql = format!(
            "SELECT {}, {} FROM {}",
            as_text(format!("MIN({c})")),
            as_text(format!("MAX({c})")),
            self.rows_from()
        );
        let r = self.sink.rest.query("finding the staging rows' partitions", &sql, TRANSACTION_DEADLINE).await?;
        let row = r.rows.first();
        let get = |i: usize| row.and_then(|r| r.get(i)).and_then(|v| v.as_str()).and_then(|t| sql::literal(ty, t));
        Ok(match (get(0), get(1)) {
            (Some(lo), Some(hi)) => Some((col, lo, hi)),
            _ => None,
        })
    }

    /// The mode's data statement.
    async fn statement(&self) -> Result<String, SinkError> {
        let columns: Vec<String> = self.fields.iter().map(|f| f.name.clone()).collect();
        let at = self.started.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
        let load = Load {
            target: self.q(&self.table.target),
            staging: self.rows_from(),
            columns: &columns,
            metadata: self.table.target_options.metadata_columns.then_some((at, self.sink.run_id.as_str())),
        };
        let soft_delete = self.soft_delete.as_ref().map(|c| {
            let ty = self.fields.iter().find(|f| &f.name == c).map(|f| f.ty).unwrap_or(BqType::Timestamp);
            (c.clone(), ty)
        });
        if self.reload {
            return Ok(load.replace_live(soft_delete.as_ref()));
        }
        Ok(match self.table.mode {
            LoadMode::FullRefresh => load.replace(),
            LoadMode::Append if self.key.is_empty() => load.append(),
            LoadMode::Append => load.append_new(&self.key, self.prune().await?.as_ref()),
            LoadMode::Merge => {
                let m = Merge {
                    key: self.key.clone(),
                    cursor: self.cursor.clone().expect("validated: merge has a cursor"),
                    soft_delete,
                    prune: self.prune().await?,
                };
                load.merge(&m)
            }
        })
    }

    /// Ends the stream, finalizes it, checks BigQuery holds every row sent, and commits it
    /// into the staging table.
    async fn commit_staging(&self, stream: AppendStream) -> Result<u64, SinkError> {
        let name = stream.name.clone();
        let outcome = stream.finish().await?;
        failpoint::hit("before-finalize");
        let finalized = self.sink.write.finalize(&name).await?;
        if outcome.rows != self.rows_sent || finalized != self.rows_sent {
            return Err(SinkError::RowCount {
                table: self.table.target.clone(),
                sent: self.rows_sent,
                acknowledged: outcome.rows,
                finalized,
            });
        }
        failpoint::hit("before-staging-commit");
        self.sink.write.batch_commit(&self.sink.table_path(&self.staging), &[name]).await?;
        failpoint::hit("after-staging-commit");
        Ok(outcome.bytes)
    }

    async fn finish(&mut self, read: &ReadStats) -> Result<LoadStats, SinkError> {
        let stream = self.stream.take().expect("commit once");
        if self.table.part.is_some() {
            return self.finish_part(stream, read).await;
        }
        // A look-back re-reads before the stored watermark; if the rows that made it are gone
        // (deleted, or their cursor lowered) the window's largest can be smaller. The stored
        // watermark never moves back.
        let watermark = not_back(read.watermark.clone(), self.previous.clone());
        // Nothing new for an incremental table: no transaction needed.
        if self.table.mode != LoadMode::FullRefresh && !self.reload && self.rows_sent == 0 && watermark == self.previous
        {
            let bytes = self.commit_staging(stream).await?;
            return Ok(LoadStats { rows: 0, bytes, zero_dates: read.zero_dates });
        }
        // Each is a round trip to BigQuery; neither needs the other.
        let (committed, existing) = tokio::join!(
            self.commit_staging(stream),
            self.sink.rest.get_table(&self.sink.dest.dataset, &self.table.target)
        );
        let stats = LoadStats { rows: self.rows_sent, bytes: committed?, zero_dates: read.zero_dates };
        self.transact(watermark.as_ref(), self.rows_sent, existing?).await?;
        Ok(stats)
    }

    /// The transaction: the fence and row-count check, the mode's statement from the rows,
    /// and the state, together.
    async fn transact(
        &self,
        watermark: Option<&Watermark>,
        rows: i64,
        existing: Option<serde_json::Value>,
    ) -> Result<(), SinkError> {
        let ensured = target::ensure(&self.sink, &self.table, &self.target_fields(), existing).await?;
        let state = self.sink.state();
        let record = Record {
            target: &self.table.target,
            source: &self.source_name,
            mode: &self.table.mode.name(),
            watermark,
            run_id: self.commit_id(),
            rows,
        };
        // The committed staging table must hold exactly the rows sent; if it does not, the
        // transaction fails and nothing changes (defence in depth: a storage fault, or an
        // emulator under concurrent load, must never turn into a partial load).
        let check = format!(
            "IF((SELECT COUNT(*) FROM {s}) = {rows}, 0, ERROR('the staging table does not hold the {rows} rows sent; nothing was changed'))",
            s = self.rows_from(),
        );
        let guard = state.fence_sql(&self.table.target, &self.fence, self.commit_id(), &check);
        let sql = format!(
            "BEGIN TRANSACTION;\n{guard};\n{};\n{};\nCOMMIT TRANSACTION;",
            self.statement().await?,
            state.upsert_sql(&record)
        );
        failpoint::hit("before-transaction");
        // With a delay (`during-transaction@MS`) this stops the process while the
        // transaction is in flight at BigQuery.
        failpoint::hit("during-transaction");
        let done = self
            .sink
            .rest
            .query(
                &format!("loading {} (one transaction with its watermark)", self.table.target),
                &sql,
                TRANSACTION_DEADLINE,
            )
            .await;
        if let Err(e) = done {
            // A first load that fails leaves no empty target behind: the dataset is as it was.
            // Only while still empty: an overlapping run may have loaded it meanwhile.
            if ensured == target::Ensured::Created {
                let count = format!("SELECT COUNT(*) FROM {}", self.q(&self.table.target));
                let empty =
                    self.sink.rest.query("checking the new target is empty", &count, Duration::from_secs(60)).await;
                if empty.is_ok_and(|r| r.rows.first().and_then(|r| r.first()).and_then(|v| v.as_str()) == Some("0")) {
                    let _ = self.sink.rest.delete_table(&self.sink.dest.dataset, &self.table.target).await;
                }
            }
            return Err(e);
        }
        failpoint::hit("after-transaction");
        Ok(())
    }
}

/// The watermark to store: the read's, unless that is below the stored one.
fn not_back(read: Option<Watermark>, previous: Option<Watermark>) -> Option<Watermark> {
    match (read, previous) {
        (Some(r), Some(p)) if r.cursor < p.cursor => Some(p),
        (r, p) => r.or(p),
    }
}

#[async_trait]
impl TableLoad for BigQueryLoad {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        let stream = self.stream.as_mut().expect("write after commit");
        for (rows, bytes) in split_encode(&batch, MAX_ROWS_BYTES)? {
            stream.append(bytes::Bytes::from(bytes), rows).await?;
            self.rows_sent += rows as i64;
            failpoint::hit("after-append");
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, read: &ReadStats) -> Result<LoadStats, SinkError> {
        let result = self.finish(read).await;
        // A split table's part waits for the shard that commits the table, which drops it.
        if self.table.part.is_some() && result.is_ok() {
            return result;
        }
        // The table's outcome does not wait for the drop: the run does, at its end.
        let (sink, staging) = (self.sink.clone(), self.staging.clone());
        self.sink.cleanup.spawn(async move { drop_staging(&sink, &staging).await });
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

/// The target's columns: the source's, and the metadata columns when the table asks for them.
pub(super) fn target_fields(table: &TableConfig, fields: &[BqField]) -> Vec<BqField> {
    let mut f = fields.to_vec();
    if table.target_options.metadata_columns {
        f.push(BqField::scalar(sql::EXTRACTED_AT, BqType::Timestamp));
        f.push(BqField::scalar(sql::RUN_ID, BqType::String));
    }
    f
}
