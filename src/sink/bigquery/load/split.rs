//! A shard's part of a table split across shards: staged and marked done, and when it is
//! the last, the whole table committed from every shard's part (`parts.rs` holds the
//! coordination in BigQuery).

use super::{BigQueryLoad, not_back};
use crate::failpoint;
use crate::sink::LoadStats;
use crate::sink::bigquery::error::SinkError;
use crate::sink::bigquery::parts;
use crate::sink::bigquery::schema::quote;
use crate::sink::bigquery::write::AppendStream;
use crate::source::ReadStats;
use crate::source::window::Watermark;

/// Committing a split table: where its rows are (every shard's part) and the run id its
/// state records.
pub(super) struct SplitCommit {
    pub(super) rows_from: String,
    pub(super) commit_id: String,
}

impl BigQueryLoad {
    /// A shard's part of a split table: staged and marked done; then, if every chunk is
    /// done, the whole table committed from all the parts.
    pub(super) async fn finish_part(&mut self, stream: AppendStream, read: &ReadStats) -> Result<LoadStats, SinkError> {
        let part = self.table.part.clone().expect("a part");
        let plan = part.plan.clone().ok_or_else(|| SinkError::State {
            table: self.table.target.clone(),
            detail: "a split table was loaded without its plan".into(),
        })?;
        let bytes = self.commit_staging(stream).await?;
        let stats = LoadStats { rows: self.rows_sent, bytes, zero_dates: read.zero_dates };
        let done = parts::PartDone {
            shard: part.shard,
            chunks: part.mine.clone(),
            rows: self.rows_sent,
            watermark: read.watermark.clone(),
            table: self.staging.clone(),
        };
        parts::mark_done(&self.sink, &done).await?;
        failpoint::hit("after-part-done");
        let Some(all) = parts::complete(&self.sink, &self.table.target, &part.group, part.chunks).await? else {
            tracing::info!(table = %self.table.target, chunks = ?part.mine, "this shard's chunks are staged; the shard that finishes last commits the table");
            return Ok(stats);
        };
        let columns: Vec<String> = self.fields.iter().map(|f| quote(&[&f.name])).collect();
        let selects: Vec<String> =
            all.iter().map(|p| format!("SELECT {} FROM {}", columns.join(", "), self.q(&p.table))).collect();
        let rows: i64 = all.iter().map(|p| p.rows).sum();
        let largest = all.iter().filter_map(|p| p.watermark.clone()).max_by(watermark_order);
        let watermark = not_back(largest, self.previous.clone());
        self.split = Some(SplitCommit {
            rows_from: format!("({})", selects.join(" UNION ALL ")),
            commit_id: plan.commit_id.clone(),
        });
        let existing = self.sink.rest.get_table(&self.sink.dest.dataset, &self.table.target).await?;
        let committed = self.transact(watermark.as_ref(), rows, existing).await;
        if let Err(e) = committed {
            // Another shard that finished at the same time may have committed it first.
            let now = self.sink.state().prior(&self.table.target).await?;
            if now.fence.0.as_deref() != Some(plan.commit_id.as_str()) {
                return Err(e);
            }
            tracing::info!(table = %self.table.target, "another shard of this run committed the table");
        } else {
            tracing::info!(table = %self.table.target, rows, parts = all.len(), "committed the table from every shard's part");
        }
        parts::drop_all(&self.sink, &self.table.target, &part.group);
        Ok(stats)
    }
}

/// (cursor, key) order across parts: the cursor, then the key, integers by value (a split
/// table's key is its integer primary key unless the config names another).
fn watermark_order(a: &Watermark, b: &Watermark) -> std::cmp::Ordering {
    let key = |w: &Watermark| -> Vec<(Option<i128>, String)> {
        w.key.iter().map(|k| (k.text.parse::<i128>().ok(), k.text.clone())).collect()
    };
    a.cursor.cmp(&b.cursor).then_with(|| key(a).cmp(&key(b)))
}
