//! Named points where a test can stop the process on purpose, to prove that a run killed
//! there loses and duplicates nothing. `AURORA2BQ_FAILPOINT` names one point:
//! `name` (first hit), `name:N` (N-th hit) or `name@MS` (MS milliseconds after the first
//! hit, from another thread, so the process dies while the work at that point is in
//! flight). At the point the process aborts at once (no destructor, no cleanup, no flush),
//! or, with `AURORA2BQ_FAILPOINT_ACTION=pause`, prints a marker and freezes so the test can
//! send it SIGKILL, or with `AURORA2BQ_FAILPOINT_ACTION=wait:PATH` prints the marker and
//! holds that thread until PATH exists, then goes on (a run frozen while another runs, then
//! resumed). Unset, each point costs one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Armed {
    name: String,
    at_hit: u64,
    delay: Option<Duration>,
    pause: bool,
    resume_when: Option<std::path::PathBuf>,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("AURORA2BQ_FAILPOINT").ok()?;
            let (v, delay) = match v.split_once('@') {
                Some((n, ms)) => (n.to_owned(), Some(Duration::from_millis(ms.parse().ok()?))),
                None => (v, None),
            };
            let (name, at_hit) = match v.split_once(':') {
                Some((n, k)) => (n.to_owned(), k.parse().ok()?),
                None => (v, 1),
            };
            let action = std::env::var("AURORA2BQ_FAILPOINT_ACTION").unwrap_or_default();
            let pause = action == "pause";
            let resume_when = action.strip_prefix("wait:").map(std::path::PathBuf::from);
            Some(Armed { name, at_hit, delay, pause, resume_when, hits: AtomicU64::new(0) })
        })
        .as_ref()
}

fn fire(a: &Armed) {
    eprintln!("aurora2bq: failpoint {} reached", a.name);
    if let Some(path) = &a.resume_when {
        while !path.exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    if a.pause {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    std::process::abort();
}

/// Stops the process if `name` is the armed failpoint and this is the chosen hit.
pub fn hit(name: &str) {
    let Some(a) = armed() else { return };
    if a.name != name || a.hits.fetch_add(1, Ordering::SeqCst) + 1 != a.at_hit {
        return;
    }
    match a.delay {
        None => fire(a),
        Some(d) => {
            std::thread::spawn(move || {
                std::thread::sleep(d);
                fire(a);
            });
        }
    }
}
