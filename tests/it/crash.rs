//! The crash test: incremental merge runs while another task inserts, updates and
//! soft-deletes source rows; each run is killed with SIGKILL at a different point
//! (extraction, appends, finalize, commit, the transaction), then runs are repeated until
//! one completes, and the target must equal the source by key and content, with no
//! duplicate and no lost row, every time.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Landing;
use common::compare::{Kind, assert_same, bq_rows, source_rows};
use sqlx::{Connection, Executor};

const COLS: &[(&str, Kind)] = &[
    ("id", Kind::Int),
    ("v", Kind::Text),
    ("n", Kind::Int),
    ("updated_at", Kind::Timestamp),
    ("created_at", Kind::Date),
];

/// Kill points: a failpoint name, with the hit number or a delay after the first hit.
const POINTS: &[&str] = &[
    "after-read-batch:40",
    "after-state-read",
    "after-open",
    "after-create-staging",
    "after-read-batch:1",
    "after-batch:1",
    "after-append:1",
    "after-read-batch:3",
    "after-batch:2",
    "after-append:2",
    "after-batch:4",
    "after-append:5",
    "before-commit",
    "before-finalize",
    "before-staging-commit",
    "after-staging-commit",
    "before-transaction",
    "during-transaction@1",
    "during-transaction@25",
    "during-transaction@100",
    "after-transaction",
    "after-append:3",
];

/// Inserts, updates, soft-deletes and revives rows in short transactions until stopped;
/// holds `gate` during each transaction so the test can pause it.
async fn mutate(url: String, gate: Arc<tokio::sync::Mutex<()>>, stop: Arc<AtomicBool>) {
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut next = 100_000;
    while !stop.load(Ordering::SeqCst) {
        {
            let _g = gate.lock().await;
            let sql = format!(
                "BEGIN;
                 INSERT INTO orders (id, v, n, updated_at, created_at) SELECT g, 'new', 0, now(), date '2024-01-01' + (g % 60) FROM generate_series({next}, {}) g;
                 UPDATE orders SET v = 'upd-' || n, n = n + 1, updated_at = now() WHERE id IN (SELECT id FROM orders ORDER BY random() LIMIT 20);
                 UPDATE orders SET deleted_at = now(), updated_at = now() WHERE id IN (SELECT id FROM orders WHERE deleted_at IS NULL ORDER BY random() LIMIT 4);
                 UPDATE orders SET deleted_at = NULL, v = 'revived', updated_at = now() WHERE id IN (SELECT id FROM orders WHERE deleted_at IS NOT NULL ORDER BY random() LIMIT 1);
                 COMMIT;",
                next + 9
            );
            (&mut c).execute(sql.as_str()).await.unwrap();
            next += 10;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn run(config: &std::path::Path, url: &str, point: Option<&str>) -> (bool, Option<i32>, String) {
    let r = common::run_killed_at(config, url, &[], point).await;
    (r.killed, r.code, r.log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_never_lose_or_duplicate_a_row() {
    let Landing { db, bq, dataset, chain: _chain, config } = Landing::new(
        "CREATE TABLE orders (id bigint PRIMARY KEY, v text, n int NOT NULL, updated_at timestamptz NOT NULL,
                              deleted_at timestamptz, created_at date NOT NULL);
         INSERT INTO orders SELECT g, 'v' || g, g, timestamptz '2024-01-01Z' + g * interval '1 second', NULL, date '2024-01-01' + (g % 60)
         FROM generate_series(1, 3000) g;",
        &[],
        r#"
[run]
batch_rows = 20

[[tables]]
source = "orders"
mode = "merge"
cursor = "updated_at"
lookback = 5
soft_delete_column = "deleted_at"
partition = { column = "created_at", granularity = "DAY" }
"#,
    )
    .await;
    let gate = Arc::new(tokio::sync::Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = tokio::spawn(mutate(db.url.clone(), gate.clone(), stop.clone()));

    let mut kills = 0;
    for point in POINTS {
        let (killed, code, log) = run(&config, &db.url, Some(point)).await;
        if killed {
            kills += 1;
            // Let bqemulator finish what the dead run left in flight before the next run
            // talks to it (it can deadlock on overlapping REST and gRPC work).
            tokio::time::sleep(Duration::from_millis(500)).await;
        } else {
            assert_eq!(code, Some(0), "{point}: the run neither reached its point nor succeeded:\n{log}");
        }
        // Quiet the source, rerun until a run completes, and compare.
        let paused = gate.lock().await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (_, code, log) = run(&config, &db.url, None).await;
            if code == Some(0) {
                break;
            }
            assert!(attempts < 3, "{point}: the rerun keeps failing:\n{log}");
        }
        let source = source_rows(&mut db.connect().await, "orders WHERE deleted_at IS NULL", COLS).await;
        let target = bq_rows(
            bq.query(&format!(
                "SELECT id, v, n, UNIX_MICROS(updated_at), CAST(created_at AS STRING) FROM {dataset}.orders"
            ))
            .await,
            COLS,
        );
        assert_same(&source, &target, COLS);
        drop(paused);
    }
    stop.store(true, Ordering::SeqCst);
    mutator.await.unwrap();
    assert!(kills >= 20, "only {kills} runs were killed");
    let tables = bq.tables(&dataset).await;
    let leftovers = tables.iter().filter(|t| t.contains("staging")).count();
    assert!(leftovers <= kills, "staging tables left: {leftovers} (they expire on their own)");
}
