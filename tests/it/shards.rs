//! A run split across shard processes (`run --shard INDEX/COUNT`, as an Indexed Job's pods
//! run it): every table is taken by exactly one shard, a shard killed with SIGKILL at any
//! point of its load leaves nothing of it visible, and rerunning it (as Kubernetes retries a
//! failed index) completes the run with nothing lost or doubled, in every mode, while the
//! source keeps changing. bqemulator cannot take concurrent loads (see .config/nextest.toml),
//! so the shards run one after another here; each table's commit is its own transaction,
//! whichever process runs it, so their order does not change what is tested.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aurora2bq::config::shard::shard_of;

use crate::common::compare::{Kind, assert_same, bq_rows, source_rows};
use crate::common::{self, Landing};

const SHARDS: u32 = 3;
const TABLES: &[(&str, &str)] = &[
    ("f0", "full_refresh"),
    ("f1", "full_refresh"),
    ("a0", "append"),
    ("a1", "append"),
    ("m0", "merge"),
    ("m1", "merge"),
];
const COLS: &[(&str, Kind)] = &[("id", Kind::Int), ("v", Kind::Text), ("updated_at", Kind::Timestamp)];

/// Where the killed shard dies: before anything exists, with rows staged, committed to
/// staging, just before and just after the table's transaction.
const POINTS: &[&str] = &[
    "after-create-staging",
    "before-staging-commit",
    "after-staging-commit",
    "before-transaction",
    "after-transaction",
];

fn owner(table: &str) -> u32 {
    shard_of(table, SHARDS)
}

async fn target_rows(l: &Landing, table: &str) -> common::compare::Rows {
    let sql = format!("SELECT id, v, UNIX_MICROS(updated_at) FROM {}.{table}", l.dataset);
    bq_rows(l.bq.query(&sql).await, COLS)
}

/// Runs shard `i`; checks it reported exactly its own tables.
async fn shard(l: &Landing, i: u32, point: Option<&str>) -> common::KilledRun {
    let arg = format!("{i}/{SHARDS}");
    let r = common::run_killed_at(&l.config, &l.db.url, &["--shard", &arg], point).await;
    if !r.killed {
        assert_eq!(r.code, Some(0), "shard {arg} failed:\n{}\n{}", r.stdout, r.log);
        let reported: BTreeSet<&str> =
            TABLES.iter().map(|(t, _)| *t).filter(|t| r.stdout.contains(&format!("public.{t} -> "))).collect();
        let owned: BTreeSet<&str> = TABLES.iter().map(|(t, _)| *t).filter(|t| owner(t) == i).collect();
        assert_eq!(reported, owned, "shard {arg} loaded other tables than its own:\n{}", r.stdout);
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_killed_and_rerun_lose_and_double_nothing() {
    let mut ddl = String::new();
    let mut entries = String::new();
    for (t, mode) in TABLES {
        ddl.push_str(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
             INSERT INTO {t} SELECT g, 'v' || g, timestamptz '2024-01-01Z' + g * interval '1 second' FROM generate_series(1, 300) g;"
        ));
        entries.push_str(&format!("\n[[tables]]\nsource = \"public.{t}\"\nmode = \"{mode}\"\n"));
        if *mode != "full_refresh" {
            entries.push_str("cursor = \"updated_at\"\nlookback = 5\n");
        }
    }
    let l = Landing::new(&ddl, &[], &format!("\n[run]\ntable_concurrency = 1\n{entries}")).await;
    let per_shard: Vec<usize> = (0..SHARDS).map(|i| TABLES.iter().filter(|(t, _)| owner(t) == i).count()).collect();
    let victim = (0..SHARDS).max_by_key(|i| per_shard[*i as usize]).unwrap();
    assert!(per_shard[victim as usize] >= 2, "the hash gives the killed shard tables: {per_shard:?}");

    let gate = Arc::new(tokio::sync::Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = tokio::spawn(common::mutate(l.db.url.clone(), TABLES, false, gate.clone(), stop.clone()));
    for i in 0..SHARDS {
        shard(&l, i, None).await;
    }
    for point in POINTS {
        let victims: Vec<&str> = TABLES.iter().map(|(t, _)| *t).filter(|t| owner(t) == victim).collect();
        let mut before = Vec::new();
        for t in &victims {
            before.push(target_rows(&l, t).await);
        }
        for i in (0..SHARDS).filter(|i| *i != victim) {
            shard(&l, i, None).await;
        }
        let killed = shard(&l, victim, Some(point)).await;
        assert!(killed.killed, "{point}: shard {victim} never reached it:\n{}", killed.log);
        // Let bqemulator finish what the dead process left in flight.
        tokio::time::sleep(Duration::from_millis(500)).await;
        if *point != "after-transaction" {
            // The first of its tables died mid-load (the others had not started): none changed.
            for (t, rows) in victims.iter().zip(&before) {
                assert_eq!(&target_rows(&l, t).await, rows, "{point}: the killed shard changed {t}");
            }
        }
        // Kubernetes retries the failed index.
        shard(&l, victim, None).await;
        // Quiet the source, complete a run of every shard, compare every table.
        let paused = gate.lock().await;
        for i in 0..SHARDS {
            shard(&l, i, None).await;
        }
        for (t, _) in TABLES {
            let source = source_rows(&mut l.db.connect().await, t, COLS).await;
            assert_same(&source, &target_rows(&l, t).await, COLS);
        }
        drop(paused);
    }
    stop.store(true, Ordering::SeqCst);
    mutator.await.unwrap();
}

/// A shard whose hash holds no table succeeds with nothing to do; a shard count without an
/// index is refused with how to say which shard a process is.
#[tokio::test]
async fn an_empty_shard_succeeds_and_a_count_without_an_index_is_refused() {
    let l =
        Landing::new("CREATE TABLE only_one (id int PRIMARY KEY); INSERT INTO only_one VALUES (1);", &["only_one"], "")
            .await;
    let empty = (0..SHARDS).find(|i| *i != owner("only_one")).unwrap();
    let arg = format!("{empty}/{SHARDS}");
    let run = l.command(&["run", "--shard", &arg], &[]).await;
    run.assert_ok();
    assert!(l.bq.table(&l.dataset, "only_one").await.is_none(), "an empty shard loaded a table");
    let run = l.command(&["run"], &[("AURORA2BQ_SHARDS", "3")]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--shard INDEX/3") && run.stderr.contains("JOB_COMPLETION_INDEX"), "{}", run.stderr);
    // As an Indexed Job's pod: JOB_COMPLETION_INDEX and the count.
    let index = owner("only_one").to_string();
    let run = l.command(&["run"], &[("AURORA2BQ_SHARDS", "3"), ("JOB_COMPLETION_INDEX", &index)]).await;
    run.assert_ok();
    assert!(l.bq.table(&l.dataset, "only_one").await.is_some());
}
