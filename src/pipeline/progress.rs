//! What a running table has done so far, shown two ways: on a terminal, a progress bar per
//! running table (rows, bytes, rate, and the catalog's estimate as the total when it has
//! one); off a terminal, a `heartbeat` log event per running table at a fixed interval, so a
//! long run in CloudWatch shows it is alive and how far it is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Progress bars on stderr (a terminal).
    Bars,
    /// Heartbeat log events this often.
    Heartbeat(Duration),
}

pub struct Progress {
    display: Display,
    bars: Option<MultiProgress>,
    running: Mutex<BTreeMap<String, Arc<TableProgress>>>,
}

pub struct TableProgress {
    rows: AtomicU64,
    bytes: AtomicU64,
    /// 0: no estimate.
    estimate: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl TableProgress {
    /// A batch went to the sink.
    pub fn add(&self, rows: u64, bytes: u64) {
        let total = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(total);
            bar.set_message(crate::pipeline::human_bytes(self.bytes.load(Ordering::Relaxed)));
        }
    }

    /// The catalog's estimate of the table's rows, once the source has described it.
    pub fn estimate(&self, rows: Option<u64>) {
        let Some(n) = rows.filter(|n| *n > 0) else { return };
        self.estimate.store(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(n);
            bar.set_style(bar_style(true));
        }
    }
}

fn bar_style(known_total: bool) -> ProgressStyle {
    let template = if known_total {
        "{prefix:>24} [{bar:30}] {human_pos}/~{human_len} rows  {msg}  {per_sec}  {elapsed}"
    } else {
        "{prefix:>24} {spinner} {human_pos} rows  {msg}  {per_sec}  {elapsed}"
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

impl Progress {
    pub fn new(display: Display) -> Arc<Self> {
        let bars =
            (display == Display::Bars).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        Arc::new(Self { display, bars, running: Mutex::new(BTreeMap::new()) })
    }

    pub fn start(&self, table: &str) -> Arc<TableProgress> {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::no_length().with_style(bar_style(false)).with_prefix(table.to_owned()));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let p = Arc::new(TableProgress {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            estimate: AtomicU64::new(0),
            started: Instant::now(),
            bar,
        });
        self.lock().insert(table.to_owned(), p.clone());
        p
    }

    pub fn finish(&self, table: &str) {
        if let Some(p) = self.lock().remove(table)
            && let Some(bar) = &p.bar
        {
            bar.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<TableProgress>>> {
        // A panic elsewhere must not stop the run's reporting: the map stays usable.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Off a terminal: logs a heartbeat per running table every interval until `done`.
    pub async fn heartbeats(self: Arc<Self>, done: CancellationToken) {
        let Display::Heartbeat(every) = self.display else { return };
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = done.cancelled() => return,
            }
            let running: Vec<(String, Arc<TableProgress>)> =
                self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (table, p) in running {
                let rows = p.rows.load(Ordering::Relaxed);
                let secs = p.started.elapsed().as_secs_f64();
                let estimate = p.estimate.load(Ordering::Relaxed);
                tracing::info!(
                    event = "heartbeat",
                    table = %table,
                    rows,
                    bytes = p.bytes.load(Ordering::Relaxed),
                    seconds = (secs * 10.0).round() / 10.0,
                    rows_per_second = if secs > 0.0 { (rows as f64 / secs).round() } else { 0.0 },
                    estimated_rows = (estimate > 0).then_some(estimate),
                    "table running"
                );
            }
        }
    }
}
