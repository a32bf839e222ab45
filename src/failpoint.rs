//! Named points where a test can make the process die on purpose, to prove that a run
//! killed there loses and duplicates nothing. Set `AURORA2BQ_FAILPOINT=<name>` (or
//! `<name>:<n>` to die at the n-th hit); unset, each point costs one atomic load.
//! The process aborts at once, like SIGKILL: no destructor, no cleanup, no flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Armed {
    name: String,
    at_hit: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("AURORA2BQ_FAILPOINT").ok()?;
            let (name, at_hit) = match v.split_once(':') {
                Some((n, k)) => (n.to_owned(), k.parse().ok()?),
                None => (v, 1),
            };
            Some(Armed { name, at_hit, hits: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Aborts the process if `name` is the armed failpoint and this is the chosen hit.
pub fn hit(name: &str) {
    if let Some(a) = armed() {
        if a.name == name && a.hits.fetch_add(1, Ordering::SeqCst) + 1 == a.at_hit {
            eprintln!("aurora2bq: failpoint {name} reached; aborting as asked by AURORA2BQ_FAILPOINT");
            std::process::abort();
        }
    }
}
