//! The run's outcome per table: a line for people, a log event for machines, and the exit
//! code (0 only if every table succeeded).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Config, TableConfig};
use crate::sink::{LoadStats, RunRecord};

/// A table stopped from outside (a signal, or its timeout) before it finished.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }
}

/// Whether a failure may pass on a retry: the errors of each layer say so themselves.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(e) = c.downcast_ref::<crate::sink::SinkError>() {
            e.is_transient()
        } else if let Some(e) = c.downcast_ref::<crate::auth::AuthError>() {
            e.is_transient()
        } else if let Some(e) = c.downcast_ref::<crate::source::SourceError>() {
            e.is_transient()
        } else {
            false
        }
    })
}

pub struct TableOutcome {
    pub source: String,
    pub target: String,
    pub mode: String,
    pub status: Status,
    /// A failure that a retry may fix.
    pub transient: bool,
    pub result: Result<LoadStats, String>,
    pub started: SystemTime,
    pub elapsed: Duration,
}

impl TableOutcome {
    pub fn new(table: &TableConfig, result: anyhow::Result<LoadStats>, started: SystemTime, elapsed: Duration) -> Self {
        let status = match &result {
            Ok(_) => Status::Ok,
            Err(e) if e.downcast_ref::<Interrupted>().is_some() => Status::Stopped,
            Err(_) => Status::Failed,
        };
        let transient = result.as_ref().err().is_some_and(is_transient);
        Self {
            source: table.source_name(),
            target: table.target.clone(),
            mode: table.mode.name(),
            status,
            transient,
            // `{:#}` prints the whole cause chain on one line.
            result: result.map_err(|e| format!("{e:#}")),
            started,
            elapsed,
        }
    }

    /// The row of the run history.
    pub fn record(&self, run_id: &str) -> RunRecord {
        let us = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
        let stats = self.result.as_ref().ok();
        RunRecord {
            run_id: run_id.to_owned(),
            version: crate::VERSION.to_owned(),
            target: self.target.clone(),
            source: self.source.clone(),
            mode: self.mode.clone(),
            status: self.status.name().to_owned(),
            rows: stats.map_or(0, |s| s.rows),
            bytes: stats.map_or(0, |s| s.bytes),
            seconds: self.elapsed.as_secs_f64(),
            error: self.result.as_ref().err().cloned(),
            started_us: us(self.started),
            finished_us: us(self.started + self.elapsed),
        }
    }

    pub fn log(&self) {
        match &self.result {
            Ok(s) => tracing::info!(
                table = %self.source, to = %self.target, rows = s.rows, bytes = s.bytes,
                seconds = self.elapsed.as_secs_f64(), "table loaded"
            ),
            Err(e) => tracing::error!(
                table = %self.source, to = %self.target, error = %e,
                seconds = self.elapsed.as_secs_f64(), "table failed"
            ),
        }
    }
}

pub struct RunSummary {
    pub dataset: String,
    pub tables: Vec<TableOutcome>,
}

impl RunSummary {
    pub fn new(config: &Config, tables: Vec<TableOutcome>) -> Self {
        Self { dataset: format!("{}.{}", config.destination.project, config.destination.dataset), tables }
    }

    pub fn failed(&self) -> usize {
        self.tables.iter().filter(|t| t.result.is_err()).count()
    }

    /// Whether every failure may pass on a retry (and there was one).
    pub fn only_transient_failures(&self) -> bool {
        let mut failed = self.tables.iter().filter(|t| t.result.is_err()).peekable();
        failed.peek().is_some() && failed.all(|t| t.transient)
    }

    /// The run's one summary event for machines: each table's status, rows, bytes, seconds
    /// and error, and the run's totals as CloudWatch embedded metrics (EMF), so EKS
    /// Fargate's log path turns the last line of a run into metrics with no agent.
    pub fn event(&self, run_id: &str) -> serde_json::Value {
        let tables: Vec<serde_json::Value> = self
            .tables
            .iter()
            .map(|t| {
                let stats = t.result.as_ref().ok();
                serde_json::json!({
                    "table": t.target,
                    "source": t.source,
                    "mode": t.mode,
                    "status": t.status,
                    "rows": stats.map_or(0, |s| s.rows),
                    "bytes": stats.map_or(0, |s| s.bytes),
                    "seconds": (t.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
                    "error": t.result.as_ref().err(),
                })
            })
            .collect();
        let rows: i64 = self.tables.iter().filter_map(|t| t.result.as_ref().ok()).map(|s| s.rows).sum();
        let bytes: u64 = self.tables.iter().filter_map(|t| t.result.as_ref().ok()).map(|s| s.bytes).sum();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let metric = |name: &str, unit: &str| serde_json::json!({ "Name": name, "Unit": unit });
        serde_json::json!({
            "event": "run_summary",
            "run_id": run_id,
            "dataset": self.dataset,
            "tables": tables,
            "tables_ok": self.tables.len() - self.failed(),
            "tables_failed": self.failed(),
            "rows": rows,
            "bytes": bytes,
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": "aurora2bq",
                    "Dimensions": [["dataset"]],
                    "Metrics": [
                        metric("tables_ok", "Count"),
                        metric("tables_failed", "Count"),
                        metric("rows", "Count"),
                        metric("bytes", "Bytes"),
                    ],
                }],
            },
        })
    }

    /// Logs [`Self::event`] as one line (in JSON logging, its fields at the top level).
    pub fn emit_event(&self, run_id: &str) {
        tracing::info!(json = %self.event(run_id), "run summary");
    }

    /// A few lines for Kubernetes' termination message: the counts, then each failure.
    pub fn termination_message(&self, run_id: &str) -> String {
        let mut out = format!(
            "aurora2bq {} run {run_id}: {} of {} tables loaded",
            crate::VERSION,
            self.tables.len() - self.failed(),
            self.tables.len()
        );
        for t in self.tables.iter().filter(|t| t.result.is_err()) {
            let e = t.result.as_ref().err().map(|e| e.lines().next().unwrap_or_default()).unwrap_or_default();
            out.push_str(&format!("\n{} {}: {e}", t.status.name(), t.target));
        }
        out
    }

    /// One line per table, failures last.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut sorted: Vec<&TableOutcome> = self.tables.iter().collect();
        sorted.sort_by_key(|t| (t.result.is_err(), t.source.clone()));
        for t in sorted {
            let secs = t.elapsed.as_secs_f64();
            match &t.result {
                Ok(s) => out.push_str(&format!(
                    "ok      {} -> {}.{}: {} rows, {}, {secs:.1} s{}\n",
                    t.source,
                    self.dataset,
                    t.target,
                    s.rows,
                    human_bytes(s.bytes),
                    if s.zero_dates > 0 {
                        format!(", {} zero dates loaded as NULL", s.zero_dates)
                    } else {
                        String::new()
                    }
                )),
                Err(e) => {
                    out.push_str(&format!("FAILED  {} -> {}.{}: {e} ({secs:.1} s)\n", t.source, self.dataset, t.target))
                }
            }
        }
        let failed = self.failed();
        out.push_str(&format!(
            "{} of {} tables loaded{}\n",
            self.tables.len() - failed,
            self.tables.len(),
            if failed > 0 { format!(", {failed} failed") } else { String::new() }
        ));
        out
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(12_400_000), "12.4 MB");
    }
}
