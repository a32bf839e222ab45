//! Per-table state in the destination dataset: the watermark (typed, lossless) and the last
//! run. It is updated in the same BigQuery transaction as the data, so data and watermark
//! move together or not at all.

use std::collections::HashMap;

use serde_json::Value;

use super::rest::RestClient;
use super::schema::{self, quote};
use super::sql::string_literal;
use crate::bq_model::{BqField, BqType};
use crate::sink::{Fence, Prior, SinkError};
use crate::source::window::{CursorValue, Watermark};

pub const STATE_TABLE: &str = "_aurora2bq_state";

/// The state table's columns: the JSON watermark is authoritative; the typed cursor
/// columns are for people querying the table.
pub fn fields() -> Vec<BqField> {
    vec![
        BqField::scalar("table_name", BqType::String),
        BqField::scalar("source", BqType::String),
        BqField::scalar("mode", BqType::String),
        BqField::scalar("watermark", BqType::String),
        BqField::scalar("cursor_int", BqType::Int64),
        BqField::scalar("cursor_timestamp", BqType::Timestamp),
        BqField::scalar("cursor_datetime", BqType::Datetime),
        BqField::scalar("cursor_date", BqType::Date),
        BqField::scalar("run_id", BqType::String),
        BqField::scalar("rows_loaded", BqType::Int64),
        BqField::scalar("loaded_at", BqType::Timestamp),
    ]
}

pub struct StateStore<'a> {
    pub rest: &'a RestClient,
    pub project: &'a str,
    pub dataset: &'a str,
}

/// A table's stored state, as `state show` lists it.
#[derive(Debug, Clone)]
pub struct StateRow {
    pub table: String,
    pub source: String,
    pub mode: String,
    pub watermark: Option<Watermark>,
    pub run_id: String,
    pub rows: i64,
    /// µs since the epoch.
    pub loaded_at: Option<i64>,
}

/// What one load records.
pub struct Record<'a> {
    pub target: &'a str,
    pub source: &'a str,
    pub mode: &'a str,
    pub watermark: Option<&'a Watermark>,
    pub run_id: &'a str,
    pub rows: i64,
}

impl StateStore<'_> {
    fn table(&self) -> String {
        quote(&[self.project, self.dataset, STATE_TABLE])
    }

    /// Creates the state table if it is missing.
    pub async fn ensure(&self) -> Result<(), SinkError> {
        let resource = schema::table_resource(
            self.project,
            self.dataset,
            STATE_TABLE,
            &fields(),
            None,
            Some("aurora2bq: watermark and last run per table; updated with the data, in one transaction"),
        );
        self.rest.ensure_table(self.dataset, &resource).await
    }

    /// The stored watermark of `target`, if any, and the run that wrote it.
    pub async fn prior(&self, target: &str) -> Result<Prior, SinkError> {
        let what = format!("reading the watermark of {target}");
        let mut found = self.read_priors(&what, &[target]).await?;
        Ok(found.remove(target).unwrap_or_default())
    }

    /// The state of every table in `targets`, in one query per thousand names: a run of
    /// hundreds of tables reads them all in one round trip instead of one each. A table never
    /// loaded gets the default (no watermark, no fence).
    pub async fn priors(&self, targets: &[&str]) -> Result<HashMap<String, Prior>, SinkError> {
        let mut all = HashMap::new();
        for part in targets.chunks(1000) {
            all.extend(self.read_priors("reading the tables' watermarks", part).await?);
        }
        Ok(all)
    }

    async fn read_priors(&self, what: &str, targets: &[&str]) -> Result<HashMap<String, Prior>, SinkError> {
        let names: Vec<String> = targets.iter().map(|t| string_literal(t)).collect();
        let sql = format!(
            "SELECT table_name, watermark, run_id FROM {} WHERE table_name IN ({})",
            self.table(),
            names.join(", ")
        );
        let result = self.rest.query(what, &sql, std::time::Duration::from_secs(300)).await?;
        let mut found: HashMap<String, Prior> = targets.iter().map(|t| (t.to_string(), Prior::default())).collect();
        for row in &result.rows {
            let Some(target) = row.first().and_then(Value::as_str) else { continue };
            let fence = Fence(row.get(2).and_then(Value::as_str).map(str::to_owned));
            let watermark = match row.get(1) {
                Some(Value::String(json)) => Some(Watermark::from_json(json).map_err(|e| SinkError::State {
                    table: target.into(),
                    detail: format!("its watermark in {STATE_TABLE}: {e}"),
                })?),
                _ => None,
            };
            found.insert(target.to_owned(), Prior { watermark, fence });
        }
        Ok(found)
    }

    /// Every table's state, by table name.
    pub async fn list(&self) -> Result<Vec<StateRow>, SinkError> {
        if self.rest.get_table(self.dataset, STATE_TABLE).await?.is_none() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT table_name, source, mode, watermark, run_id, rows_loaded, UNIX_MICROS(loaded_at) FROM {} \
             ORDER BY table_name",
            self.table()
        );
        let result = self.rest.query("reading the state table", &sql, std::time::Duration::from_secs(120)).await?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let int = |v: Option<&Value>| text(v).and_then(|s| s.parse::<i64>().ok());
        result
            .rows
            .iter()
            .map(|r| {
                let table = text(r.first()).unwrap_or_default();
                let watermark = match text(r.get(3)) {
                    Some(json) => Some(Watermark::from_json(&json).map_err(|e| SinkError::State {
                        table: table.clone(),
                        detail: format!("its watermark in {STATE_TABLE}: {e}"),
                    })?),
                    None => None,
                };
                Ok(StateRow {
                    source: text(r.get(1)).unwrap_or_default(),
                    mode: text(r.get(2)).unwrap_or_default(),
                    watermark,
                    run_id: text(r.get(4)).unwrap_or_default(),
                    rows: int(r.get(5)).unwrap_or(0),
                    loaded_at: int(r.get(6)),
                    table,
                })
            })
            .collect()
    }

    /// Forgets the watermarks of `targets` in one DML statement (atomic: all or none), so
    /// their next run reads them from the start. Returns how many were stored, when BigQuery
    /// says.
    pub async fn reset(&self, targets: &[String]) -> Result<Option<i64>, SinkError> {
        let names: Vec<String> = targets.iter().map(|t| string_literal(t)).collect();
        let sql = format!("DELETE FROM {} WHERE table_name IN ({})", self.table(), names.join(", "));
        let r = self.rest.query("forgetting watermarks", &sql, std::time::Duration::from_secs(120)).await?;
        Ok(r.affected_rows)
    }

    /// A statement for the data's transaction that fails unless `fence` still names the run
    /// that last committed `target`, and otherwise gives `then` (an expression that may
    /// raise its own ERROR): one statement for both checks, since every statement of a
    /// transaction is a job of its own in BigQuery. Two runs of one config (a manual Job
    /// beside the CronJob, a retried pod not yet dead) both read the same state; only the
    /// first to commit may, or the second would apply its window on top of the first's and
    /// double rows, move the watermark back or bring deleted rows back.
    pub fn fence_sql(&self, target: &str, fence: &Fence, run_id: &str, then: &str) -> String {
        let expected = string_literal(fence.0.as_deref().unwrap_or(""));
        format!(
            "SELECT IF(IFNULL((SELECT MAX(run_id) FROM {t} WHERE table_name = {tn}), '') = {expected}, {then}, \
             ERROR('another aurora2bq run committed {target} while this run ({run}) was loading it; nothing of \
             this run was committed and the next run continues from the watermark the other run stored. Two \
             runs of one config overlapped: keep the CronJob at concurrencyPolicy Forbid and start no manual \
             Job while it runs'))",
            t = self.table(),
            tn = string_literal(target),
            target = target.replace(['\'', '\\'], ""),
            run = run_id.replace(['\'', '\\'], ""),
        )
    }

    /// The statement that records a load; run it inside the data's transaction.
    pub fn upsert_sql(&self, r: &Record) -> String {
        let null = || "NULL".to_string();
        let (mut ci, mut cts, mut cdt, mut cd) = (null(), null(), null(), null());
        let wm = match r.watermark {
            Some(w) => {
                match &w.cursor {
                    CursorValue::Int(n) => ci = n.to_string(),
                    CursorValue::Timestamp(us) => cts = format!("TIMESTAMP_MICROS({us})"),
                    CursorValue::Datetime(us) => cdt = format!("DATETIME(TIMESTAMP_MICROS({us}))"),
                    CursorValue::Date(d) => cd = format!("DATE_FROM_UNIX_DATE({d})"),
                }
                string_literal(&w.to_json())
            }
            None => null(),
        };
        let cols = "table_name, source, mode, watermark, cursor_int, cursor_timestamp, cursor_datetime, cursor_date, run_id, rows_loaded, loaded_at";
        format!(
            "MERGE {t} T USING (SELECT {tn} AS table_name, {src} AS source, {mode} AS mode, {wm} AS watermark, \
             CAST({ci} AS INT64) AS cursor_int, CAST({cts} AS TIMESTAMP) AS cursor_timestamp, \
             CAST({cdt} AS DATETIME) AS cursor_datetime, CAST({cd} AS DATE) AS cursor_date, {run} AS run_id, \
             {rows} AS rows_loaded, CURRENT_TIMESTAMP() AS loaded_at) S ON T.table_name = S.table_name \
             WHEN MATCHED THEN UPDATE SET source = S.source, mode = S.mode, watermark = S.watermark, \
             cursor_int = S.cursor_int, cursor_timestamp = S.cursor_timestamp, cursor_datetime = S.cursor_datetime, \
             cursor_date = S.cursor_date, run_id = S.run_id, rows_loaded = S.rows_loaded, loaded_at = S.loaded_at \
             WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({vals})",
            t = self.table(),
            tn = string_literal(r.target),
            src = string_literal(r.source),
            mode = string_literal(r.mode),
            run = string_literal(r.run_id),
            rows = r.rows,
            vals = cols.split(", ").map(|c| format!("S.{c}")).collect::<Vec<_>>().join(", "),
        )
    }
}
