//! Run metrics for Prometheus: the run's outcome per table in the text exposition format,
//! pushed to a Pushgateway when one is configured. A run replaces its group (`PUT`), so
//! the gateway holds the last run of each dataset. Best effort, like the run history: a
//! failed push is a warning and never fails a run.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use super::RunSummary;

/// The run's metrics in Prometheus' text format.
pub fn prometheus_text(summary: &RunSummary) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per_table = |f: &dyn Fn(&super::TableOutcome) -> f64| {
        summary
            .tables
            .iter()
            .map(|t| (format!("{{table=\"{}\",status=\"{}\"}}", escape(&t.target), t.status.name()), f(t)))
            .collect::<Vec<_>>()
    };
    family(
        "aurora2bq_table_rows",
        "Rows loaded by the last run.",
        per_table(&|t| t.result.as_ref().map_or(0.0, |s| s.rows as f64)),
    );
    family(
        "aurora2bq_table_bytes",
        "Bytes sent to BigQuery by the last run.",
        per_table(&|t| t.result.as_ref().map_or(0.0, |s| s.bytes as f64)),
    );
    family(
        "aurora2bq_table_seconds",
        "Seconds the table took in the last run.",
        per_table(&|t| t.elapsed.as_secs_f64()),
    );
    family(
        "aurora2bq_table_success",
        "1 if the table loaded in the last run.",
        per_table(&|t| f64::from(u8::from(t.result.is_ok()))),
    );
    family(
        "aurora2bq_run_tables_failed",
        "Tables that failed in the last run.",
        vec![(String::new(), summary.failed() as f64)],
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    family("aurora2bq_run_last_timestamp_seconds", "When the last run ended.", vec![(String::new(), now.floor())]);
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Replaces the group `job/JOB/dataset/DATASET` at the gateway with `text`.
pub async fn push(
    http: &reqwest::Client,
    gateway: &url::Url,
    job: &str,
    dataset: &str,
    text: String,
) -> Result<(), String> {
    let mut url = gateway.clone();
    url.path_segments_mut()
        .map_err(|()| format!("{gateway} cannot take a path"))?
        .pop_if_empty()
        .extend(["metrics", "job", job, "dataset", dataset]);
    let resp = http
        .put(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(text)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::describe::error_chain(&e)))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(format!("{url}: HTTP {status}: {}", crate::http::snippet(&body)))
    }
}
