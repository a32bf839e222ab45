//! `_aurora2bq_runs`: one row per table per run, failed and interrupted ones included,
//! appended after the run. It is history, not state: writing it is best effort, and a
//! failure to write it is logged and never fails or hides a load.

use std::time::Duration;

use serde_json::Value;

use super::rest::RestClient;
use super::schema::{self, quote};
use super::sql::string_literal;
use crate::bq_model::{BqField, BqType};
use crate::sink::{RunRecord, SinkError};

pub const RUNS_TABLE: &str = "_aurora2bq_runs";

fn fields() -> Vec<BqField> {
    let f = BqField::scalar;
    vec![
        f("run_id", BqType::String),
        f("version", BqType::String),
        f("table_name", BqType::String),
        f("source", BqType::String),
        f("mode", BqType::String),
        f("status", BqType::String),
        f("rows_loaded", BqType::Int64),
        f("bytes_sent", BqType::Int64),
        f("seconds", BqType::Float64),
        f("error", BqType::String),
        f("started_at", BqType::Timestamp),
        f("finished_at", BqType::Timestamp),
    ]
}

pub struct RunsTable<'a> {
    pub rest: &'a RestClient,
    pub project: &'a str,
    pub dataset: &'a str,
}

/// A table's last run, as `state show` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastRun {
    pub run_id: String,
    pub status: String,
    pub error: Option<String>,
}

impl RunsTable<'_> {
    fn table(&self) -> String {
        quote(&[self.project, self.dataset, RUNS_TABLE])
    }

    pub(super) async fn ensure(&self) -> Result<(), SinkError> {
        let resource = schema::table_resource(
            self.project,
            self.dataset,
            RUNS_TABLE,
            &fields(),
            None,
            Some("aurora2bq: one row per table per run, failed and interrupted runs included"),
        );
        self.rest.ensure_table(self.dataset, &resource).await
    }

    /// Appends the run's rows in one statement; creates the table first unless `exists`.
    pub async fn append(&self, records: &[RunRecord], exists: bool) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        if !exists {
            self.ensure().await?;
        }
        let lit = |s: &str| string_literal(s);
        let rows: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, TIMESTAMP_MICROS({}), TIMESTAMP_MICROS({}))",
                    lit(&r.run_id),
                    lit(&r.version),
                    lit(&r.target),
                    lit(&r.source),
                    lit(&r.mode),
                    lit(&r.status),
                    r.rows,
                    r.bytes,
                    if r.seconds.is_finite() { r.seconds } else { 0.0 },
                    r.error.as_deref().map_or("NULL".into(), lit),
                    r.started_us,
                    r.finished_us,
                )
            })
            .collect();
        let cols = fields().iter().map(|f| f.name.clone()).collect::<Vec<_>>().join(", ");
        let sql = format!("INSERT INTO {} ({cols}) VALUES {}", self.table(), rows.join(",\n"));
        self.rest.query("recording the run in _aurora2bq_runs", &sql, Duration::from_secs(60)).await.map(|_| ())
    }

    /// Each table's most recent run, by target.
    pub async fn last(&self) -> Result<Vec<(String, LastRun)>, SinkError> {
        if self.rest.get_table(self.dataset, RUNS_TABLE).await?.is_none() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT r.table_name, r.run_id, r.status, r.error FROM {t} r JOIN (SELECT table_name, \
             MAX(finished_at) AS f FROM {t} GROUP BY table_name) m ON r.table_name = m.table_name AND \
             r.finished_at = m.f",
            t = self.table()
        );
        let result = self.rest.query("reading the last runs", &sql, Duration::from_secs(120)).await?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        Ok(result
            .rows
            .iter()
            .filter_map(|r| {
                Some((
                    text(r.first())?,
                    LastRun {
                        run_id: text(r.get(1)).unwrap_or_default(),
                        status: text(r.get(2)).unwrap_or_default(),
                        error: text(r.get(3)),
                    },
                ))
            })
            .collect())
    }
}
