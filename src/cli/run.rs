//! `aurora2bq run`: load the config, connect to both ends, copy every table, print the
//! summary. SIGTERM/SIGINT stop the run without committing anything half-done.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::exit;
use crate::config;
use crate::pipeline;
use crate::sink::Sink;
use crate::sink::bigquery::BigQuerySink;
use crate::source::{self, BatchLimits};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: super::tables::ConfigFile,
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
    #[command(flatten)]
    shard: super::tables::ShardArg,
}

pub const EXAMPLES: &str = "Examples:
  aurora2bq run --config /etc/aurora2bq/config.toml
  aurora2bq run -c config.toml --tables 'orders,public.cust*'
  aurora2bq run -c config.toml --exclude-tables audit_log
  aurora2bq run -c config.toml --full-refresh orders     # reload one merge table from scratch
  aurora2bq run -c config.toml --shard 1/4               # the second of four shards' tables";

impl Args {
    fn selection(&self) -> config::select::Selection {
        let names = super::tables::names;
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

/// The run history and the metrics push are best effort, after the loads: each may hold up
/// the end of a run at most this long (after a SIGTERM too, still inside the pod's grace).
const HISTORY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A run whose tables have all ended, and where to report it.
struct Finished {
    summary: pipeline::RunSummary,
    sink: BigQuerySink,
    metrics: config::MetricsConfig,
    dataset: String,
}

pub async fn run(args: Args, run_id: String) -> u8 {
    let stop = CancellationToken::new();
    spawn_signal_handler(stop.clone());
    // The pipeline reacts to `stop` itself; this bounds every phase it does not watch (a hung
    // STS exchange at set-up, a hung BigQuery call): nothing is committed by dropping it.
    let grace = async {
        stop.cancelled().await;
        tokio::time::sleep(STOP_GRACE).await;
    };
    let outcome = tokio::select! {
        r = run_inner(&args, &run_id, stop.clone()) => r,
        () = grace => Err(anyhow::anyhow!("stopped by a signal; nothing of this run was committed after it")),
    };
    let outcome = match outcome {
        Ok(finished) => {
            report(&finished, &run_id).await;
            Ok(finished.summary)
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(summary) => {
            print!("{}", summary.render());
            // On a terminal the lines above are the summary; collectors get one JSON event.
            if super::logging::is_json() {
                summary.emit_event(&run_id);
            }
            super::termination::write(&summary.termination_message(&run_id));
            if stop.is_cancelled() {
                exit::STOPPED
            } else if summary.only_transient_failures() {
                exit::TRANSIENT
            } else if summary.failed() > 0 {
                exit::TABLE_FAILED
            } else {
                exit::OK
            }
        }
        Err(e) => {
            super::report("the run could not start", &e);
            super::termination::write(&format!("aurora2bq {} run {run_id} could not start: {e:#}", crate::VERSION));
            if stop.is_cancelled() {
                exit::STOPPED
            } else if pipeline::is_transient(&e) {
                exit::TRANSIENT
            } else {
                exit::SETUP_FAILED
            }
        }
    }
}

async fn run_inner(args: &Args, run_id: &str, stop: CancellationToken) -> anyhow::Result<Finished> {
    let selection = args.selection();
    let mut config = super::tables::load(&args.file.config, &selection)?;
    let shard = args.shard.resolve(&config)?;
    if config.google.allow_insecure_endpoints {
        tracing::warn!(
            "google.allow_insecure_endpoints is on: plain-HTTP loopback endpoints are accepted. This is \
             for local emulators only; remove it in production"
        );
    }
    // Bars only where a person watches: stderr a terminal and logs not JSON.
    let display = if std::io::stderr().is_terminal() && !super::logging::is_json() {
        pipeline::progress::Display::Bars
    } else {
        pipeline::progress::Display::Heartbeat(config.run.heartbeat)
    };
    let progress = pipeline::Progress::new(display);
    let sink = bigquery(&config, run_id)?;
    sink.prepare().await.context("checking the destination dataset")?;
    let limits = BatchLimits { rows: config.run.batch_rows, bytes: config.run.batch_bytes };
    let source = source::connect(&config.source, limits).await.context("connecting to the source")?;
    let selected =
        super::tables::choose(&*source, &config, &selection, shard, args.shard.shard_group.as_deref()).await?;
    config.tables = selected.tables;
    tracing::info!(tables = config.tables.len(), version = crate::VERSION, "run started");
    let summary =
        pipeline::run_tables(&config, &selected.reload, Arc::from(source), Arc::new(sink.clone()), stop, progress)
            .await;
    Ok(Finished { summary, sink, metrics: config.metrics.clone(), dataset: config.destination.dataset.clone() })
}

/// The run history and the metrics push: after the loads, never in their way; a failure
/// here is a warning, not a failed run.
async fn report(f: &Finished, run_id: &str) {
    let records: Vec<_> = f.summary.tables.iter().map(|t| t.record(run_id)).collect();
    match tokio::time::timeout(HISTORY_TIMEOUT, f.sink.record_run(&records)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the run history (_aurora2bq_runs) was not written; the loads stand"),
        Err(_) => tracing::warn!("the run history (_aurora2bq_runs) was not written in time; the loads stand"),
    }
    if let Some(gateway) = &f.metrics.pushgateway {
        let text = pipeline::metrics::prometheus_text(&f.summary);
        let http = crate::http::client(HISTORY_TIMEOUT);
        let push = pipeline::metrics::push(&http, gateway, &f.metrics.job, &f.dataset, text);
        match tokio::time::timeout(HISTORY_TIMEOUT, push).await {
            Ok(Ok(())) => tracing::info!(gateway = %gateway, "metrics pushed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics were not pushed; the loads stand"),
            Err(_) => tracing::warn!(gateway = %gateway, "metrics were not pushed in time; the loads stand"),
        }
    }
}

/// The BigQuery side of a config, with its credentials.
pub(super) fn bigquery(config: &config::Config, run_id: &str) -> anyhow::Result<BigQuerySink> {
    let http = crate::http::client(config.google.request_timeout);
    let tokens = crate::auth::from_config(&config.google, http.clone()).context("setting up Google credentials")?;
    BigQuerySink::new(&config.google, &config.destination, tokens, http, run_id.to_owned())
        .context("setting up BigQuery")
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
