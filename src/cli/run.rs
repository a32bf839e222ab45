//! `aurora2bq run`: load the config, connect to both ends, copy every table, print the
//! summary. SIGTERM/SIGINT stop the run without committing anything half-done.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::exit;
use crate::config;
use crate::pipeline;
use crate::sink::bigquery::BigQuerySink;
use crate::source::{self, BatchLimits};

#[derive(clap::Args)]
pub struct Args {
    /// The TOML config file.
    #[arg(long, short, env = "AURORA2BQ_CONFIG")]
    config: PathBuf,
    /// Only these tables: comma-separated names (target, source or source table name), with
    /// * and ? as wildcards.
    #[arg(long, value_delimiter = ',', value_name = "TABLES")]
    tables: Vec<String>,
    /// Leave these tables out (same names and wildcards as --tables).
    #[arg(long, value_delimiter = ',', value_name = "TABLES")]
    exclude_tables: Vec<String>,
    /// Reload these tables from scratch, atomically, keeping their mode for later runs; with
    /// no names, every table this run covers.
    #[arg(long, value_delimiter = ',', value_name = "TABLES", num_args = 0..=1, default_missing_value = "")]
    full_refresh: Option<Vec<String>>,
}

pub const EXAMPLES: &str = "Examples:
  aurora2bq run --config /etc/aurora2bq/config.toml
  aurora2bq run -c config.toml --tables 'orders,public.cust*'
  aurora2bq run -c config.toml --exclude-tables audit_log
  aurora2bq run -c config.toml --full-refresh orders     # reload one merge table from scratch";

impl Args {
    fn selection(&self) -> config::select::Selection {
        let names = |v: &[String]| v.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>();
        config::select::Selection {
            tables: names(&self.tables),
            exclude: names(&self.exclude_tables),
            full_refresh: self.full_refresh.as_deref().map(names),
        }
    }
}

/// How long a stopped run may take to abandon its streams before it is dropped: well inside
/// the 30–60 s a pod gets between SIGTERM and SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(args: Args) -> u8 {
    let stop = CancellationToken::new();
    spawn_signal_handler(stop.clone());
    // The pipeline reacts to `stop` itself; this bounds every phase it does not watch (a hung
    // STS exchange at set-up, a hung BigQuery call): nothing is committed by dropping it.
    let grace = async {
        stop.cancelled().await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    let outcome = tokio::select! {
        r = run_inner(&args, stop.clone()) => r,
        () = grace => Err(anyhow::anyhow!("stopped by a signal; nothing of this run was committed after it")),
    };
    match outcome {
        Ok(summary) => {
            print!("{}", summary.render());
            if stop.is_cancelled() {
                exit::STOPPED
            } else if summary.failed() > 0 {
                exit::TABLE_FAILED
            } else {
                exit::OK
            }
        }
        Err(e) => {
            super::report("the run could not start", &e);
            if stop.is_cancelled() { exit::STOPPED } else { exit::SETUP_FAILED }
        }
    }
}

async fn run_inner(args: &Args, stop: CancellationToken) -> anyhow::Result<pipeline::RunSummary> {
    let mut config = config::load(&args.config)?;
    let selected = args.selection().apply(&config.tables).map_err(anyhow::Error::msg)?;
    config.tables = selected.tables;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::info!(run_id = %run_id, tables = config.tables.len(), "run started");
    if config.google.allow_insecure_endpoints {
        tracing::warn!(
            "google.allow_insecure_endpoints is on: plain-HTTP loopback endpoints are accepted. This is \
             for local emulators only; remove it in production"
        );
    }
    let http = crate::http::client(config.google.request_timeout);
    let tokens = crate::auth::from_config(&config.google, http.clone()).context("setting up Google credentials")?;
    let sink =
        BigQuerySink::new(&config.google, &config.destination, tokens, http, run_id).context("setting up BigQuery")?;
    sink.prepare().await.context("checking the destination dataset")?;
    let limits = BatchLimits { rows: config.run.batch_rows, bytes: config.run.batch_bytes };
    let source = source::connect(&config.source, limits).await.context("connecting to the source")?;
    let summary = pipeline::run_tables(&config, &selected.reload, Arc::from(source), Arc::new(sink), stop).await;
    Ok(summary)
}

/// The first SIGTERM or SIGINT cancels the run; a second one exits at once.
fn spawn_signal_handler(stop: CancellationToken) {
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        for n in 0.. {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            if n == 0 {
                tracing::warn!("signal received: stopping; uncommitted work is abandoned");
                stop.cancel();
            } else {
                eprintln!("aurora2bq: second signal; exiting now");
                std::process::exit(exit::STOPPED as i32);
            }
        }
    });
}
