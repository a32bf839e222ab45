//! Wires each table's source to its sink through a bounded channel (back-pressure: the
//! reader waits while the writer is busy), runs tables concurrently up to the configured
//! limit, stops cleanly on a signal or a table's deadline, and reports what happened.

pub mod metrics;
pub mod progress;
mod summary;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use progress::{Progress, TableProgress};
pub use summary::{Interrupted, RunSummary, Status, TableOutcome, human_bytes, is_transient};

use crate::config::{Config, LoadMode, TableConfig};
use crate::sink::{LoadPlan, LoadStats, Prior, Sink};
use crate::source::window::Window;
use crate::source::{ReadStats, Source};

/// Batches waiting between reader and writer: one lets the reader decode the next batch
/// while the writer sends this one; more would only use memory.
const CHANNEL_DEPTH: usize = 1;

/// Copies every table in `config` (the run's selection); never fails as a whole: each table
/// has its own outcome. Targets in `reload` are loaded from scratch (`--full-refresh`).
pub async fn run_tables(
    config: &Config,
    reload: &BTreeSet<String>,
    source: Arc<dyn Source>,
    sink: Arc<dyn Sink>,
    stop: CancellationToken,
    progress: Arc<Progress>,
) -> RunSummary {
    let timeout = config.run.table_timeout;
    let done = CancellationToken::new();
    let heartbeats = tokio::spawn(progress.clone().heartbeats(done.clone()));
    let mut priors = read_priors(config, sink.as_ref(), &stop).await;
    let outcomes = futures_util::stream::iter(config.tables.iter().cloned())
        .map(|table| {
            let (source, sink, stop, progress) = (source.clone(), sink.clone(), stop.clone(), progress.clone());
            let reload = reload.contains(&table.target);
            let prior = priors.remove(&table.target);
            async move {
                let (started, wall) = (Instant::now(), std::time::SystemTime::now());
                tracing::info!(table = %table.source_name(), to = %table.target, reload, "table started");
                let shown = progress.start(&table.target);
                let start = Start { table: &table, reload, prior };
                let result = copy_table(start, source, sink, stop, timeout, &shown).await;
                progress.finish(&table.target);
                let outcome = TableOutcome::new(&table, result, wall, started.elapsed());
                outcome.log();
                outcome
            }
        })
        .buffer_unordered(config.run.table_concurrency)
        .collect::<Vec<_>>()
        .await;
    sink.settle().await;
    done.cancel();
    let _ = heartbeats.await;
    RunSummary::new(config, outcomes)
}

/// Every table's stored state in one round trip, so that hundreds of tables do not each
/// wait for their own. If that read fails, each table reads its own and reports its error.
async fn read_priors(config: &Config, sink: &dyn Sink, stop: &CancellationToken) -> HashMap<String, Prior> {
    let targets: Vec<&str> = config.tables.iter().map(|t| t.target.as_str()).collect();
    tokio::select! {
        r = sink.priors(&targets) => r.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the tables' state at once; each table reads its own");
            HashMap::new()
        }),
        _ = stop.cancelled() => HashMap::new(),
    }
}

/// The rows a run reads of an incremental table: after the stored watermark, or, for a
/// reload, every row (NULL cursors included) while still tracking the largest cursor, the
/// watermark later runs continue from. `None` for full refresh.
pub fn window_for(
    table: &TableConfig,
    watermark: Option<crate::source::window::Watermark>,
    reload: bool,
) -> Option<Window> {
    let cursor = table.cursor.as_ref().filter(|_| table.mode != LoadMode::FullRefresh)?;
    Some(Window {
        cursor: cursor.clone(),
        key: table.key.clone().unwrap_or_default(),
        after: if reload { None } else { watermark },
        lookback: table.lookback,
        null_cursors: if reload {
            crate::source::window::NullCursors::Reread
        } else {
            crate::source::window::NullCursors::for_mode(table.mode)
        },
    })
}

/// A table split across shards: its bounds now, proposed as the plan every shard reads by,
/// and the plan agreed in BigQuery (another shard's if it planned first). The table comes
/// back carrying the plan, with the state the plan was made from; `None` if another shard of
/// this run has committed the table already.
async fn agree_split(
    table: &TableConfig,
    prior: Prior,
    reload: bool,
    source: &dyn Source,
    sink: &dyn Sink,
) -> anyhow::Result<Option<(TableConfig, Prior)>> {
    let part = table.part.as_ref().expect("a split table");
    let window = window_for(table, prior.watermark.clone(), reload);
    let (lo, hi, until) = source.split_bounds(table, window.as_ref()).await?;
    let proposal = crate::config::SplitPlan {
        lo,
        hi,
        until,
        after: prior.watermark.as_ref().map(|w| w.to_json()),
        fence: prior.fence.0.clone(),
        commit_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    let plan = sink.agree_split(&table.target, &part.group, proposal).await?;
    if prior.fence.0.as_deref() == Some(plan.commit_id.as_str()) {
        tracing::info!(table = %table.target, "another shard of this run has committed the table");
        return Ok(None);
    }
    tracing::info!(table = %table.target, chunks = ?part.mine, of = part.chunks, "reading this shard's chunks of a split table");
    let after = plan.after.as_deref().map(crate::source::window::Watermark::from_json).transpose();
    let after = after.map_err(|e| anyhow::anyhow!("{}: the split plan's watermark: {e}", table.target))?;
    let prior = Prior { watermark: after, fence: crate::sink::Fence(plan.fence.clone()) };
    let mut table = table.clone();
    if let Some(p) = table.part.as_mut() {
        p.plan = Some(plan);
    }
    Ok(Some((table, prior)))
}

/// Why a table stopped before finishing.
async fn stop_reason(stop: &CancellationToken, deadline: Instant) -> anyhow::Error {
    tokio::select! {
        _ = stop.cancelled() => Interrupted("stopped by a signal before it finished; nothing of it was committed").into(),
        _ = tokio::time::sleep_until(deadline.into()) => Interrupted(
            "did not finish within run.table_timeout_minutes; nothing of it was committed"
        ).into(),
    }
}

/// What a table's copy starts from.
struct Start<'a> {
    table: &'a TableConfig,
    /// Load from scratch (`--full-refresh`).
    reload: bool,
    /// Its state as the run read it for all tables at once; `None`: read it now.
    prior: Option<Prior>,
}

async fn copy_table(
    Start { table, reload, prior }: Start<'_>,
    source: Arc<dyn Source>,
    sink: Arc<dyn Sink>,
    stop: CancellationToken,
    timeout: Duration,
    progress: &TableProgress,
) -> anyhow::Result<LoadStats> {
    let deadline = Instant::now() + timeout;
    // Every mode reads the state: its run id fences the commit against an overlapping run.
    let prior = match prior {
        Some(p) => p,
        None => tokio::select! {
            r = sink.prior(table) => r?,
            e = stop_reason(&stop, deadline) => return Err(e),
        },
    };
    let planned;
    let (table, prior) = match &table.part {
        None => (table, prior),
        Some(_) => {
            let agreed = tokio::select! {
                r = agree_split(table, prior, reload, source.as_ref(), sink.as_ref()) => r?,
                e = stop_reason(&stop, deadline) => return Err(e),
            };
            match agreed {
                Some((t, p)) => {
                    planned = t;
                    (&planned, p)
                }
                None => return Ok(LoadStats::default()),
            }
        }
    };
    let window = window_for(table, prior.watermark.clone(), reload);
    if let Some(w) = &window {
        tracing::info!(table = %table.source_name(), watermark = ?w.after, "incremental window");
        crate::failpoint::hit("after-state-read");
    }
    let read = tokio::select! {
        r = source.open(table, window.as_ref()) => r?,
        e = stop_reason(&stop, deadline) => return Err(e),
    };
    crate::failpoint::hit("after-open");
    let schema = read.schema().clone();
    progress.estimate(schema.estimate.rows);
    let plan = LoadPlan {
        table,
        schema: &schema,
        key: table
            .key
            .as_ref()
            .unwrap_or(&schema.primary_key)
            .iter()
            .map(|k| schema.target_name(k).to_owned())
            .collect(),
        previous: window.and_then(|w| w.after),
        fence: prior.fence,
        reload: reload && table.mode != LoadMode::FullRefresh,
    };
    let mut load = tokio::select! {
        r = sink.begin(plan) => r?,
        e = stop_reason(&stop, deadline) => return Err(e),
    };
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let mut reader = tokio::spawn(read.read_into(tx));
    let mut failure: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(b) => {
                    crate::failpoint::hit("after-batch");
                    let (rows, bytes) = (b.num_rows() as u64, b.get_array_memory_size() as u64);
                    if let Err(e) = load.write(b).await {
                        failure = Some(e.into());
                        break;
                    }
                    progress.add(rows, bytes);
                }
                None => break,
            },
            e = stop_reason(&stop, deadline) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    if failure.is_some() {
        reader.abort();
    }
    let read_result = (&mut reader).await;
    let (failure, stats) = match (failure, read_result) {
        (Some(f), _) => (Some(f), ReadStats::default()),
        (None, Ok(Ok(stats))) => (None, stats),
        (None, Ok(Err(e))) => (Some(e.into()), ReadStats::default()),
        (None, Err(join)) => (Some(anyhow::anyhow!("the reader task failed: {join}")), ReadStats::default()),
    };
    if let Some(e) = failure {
        load.abort().await;
        return Err(e);
    }
    crate::failpoint::hit("before-commit");
    tokio::select! {
        r = load.commit(&stats) => Ok(r?),
        _ = stop_reason(&stop, deadline) => Err(Interrupted(
            "stopped (by a signal or run.table_timeout_minutes) during the final commit; the target holds \
             either the previous rows or all new ones, never a mix"
        ).into()),
    }
}
