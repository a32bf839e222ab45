//! The run's outcome per table: a line for people, a log event for machines, and the exit
//! code (0 only if every table succeeded).

use std::time::Duration;

use crate::config::{Config, TableConfig};
use crate::sink::LoadStats;

pub struct TableOutcome {
    pub source: String,
    pub target: String,
    pub result: Result<LoadStats, String>,
    pub elapsed: Duration,
}

impl TableOutcome {
    pub fn new(table: &TableConfig, result: anyhow::Result<LoadStats>, elapsed: Duration) -> Self {
        Self {
            source: table.source_name(),
            target: table.target.clone(),
            // `{:#}` prints the whole cause chain on one line.
            result: result.map_err(|e| format!("{e:#}")),
            elapsed,
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
