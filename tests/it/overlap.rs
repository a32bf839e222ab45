//! Two runs of one config at once (a manual Job beside the CronJob, a retried pod not yet
//! dead): run A is frozen just before its transaction, run B loads and commits, then A is
//! resumed. In every mode A must refuse to commit and say why, the target must equal the
//! source with nothing lost or doubled, and the watermark must never move back.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::Landing;
use common::compare::{Kind, assert_same, bq_rows, source_rows};
use tokio::io::{AsyncBufReadExt, BufReader};

const COLS: &[(&str, Kind)] =
    &[("id", Kind::Int), ("v", Kind::Text), ("n", Kind::Int), ("updated_at", Kind::Timestamp)];

const ITEMS: &str = "CREATE TABLE items (id bigserial PRIMARY KEY, v text, n int,
                         updated_at timestamptz NOT NULL, deleted_at timestamptz);
                     INSERT INTO items (v, n, updated_at) SELECT 'v' || g, g, timestamptz '2024-01-01Z' + g * interval '1 s'
                     FROM generate_series(1, 500) g;";

/// The changes between the first run and A, and between A and B: inserts, updates and soft
/// deletes (the append case only inserts, as append tables do).
fn changes(mode: &str, step: u32) -> String {
    let insert =
        format!("INSERT INTO items (v, n, updated_at) SELECT 'step{step}', g, now() FROM generate_series(1, 50) g;");
    if mode == "append" {
        return insert;
    }
    format!(
        "{insert} UPDATE items SET v = 'u{step}', n = n + 1, updated_at = now() WHERE id % {m} = 0;
         UPDATE items SET deleted_at = now(), updated_at = now() WHERE id % {d} = 1;",
        m = 5 + step,
        d = 9 + step
    )
}

async fn assert_target_is_source(s: &Landing, mode: &str) {
    let filter = if mode == "merge" { "items WHERE deleted_at IS NULL" } else { "items" };
    let source = source_rows(&mut s.db.connect().await, filter, COLS).await;
    let target =
        bq_rows(s.bq.query(&format!("SELECT id, v, n, UNIX_MICROS(updated_at) FROM {}.items", s.dataset)).await, COLS);
    assert_same(&source, &target, COLS);
}

async fn state(s: &Landing) -> (Option<String>, Option<String>) {
    let r =
        s.bq.query(&format!("SELECT watermark, run_id FROM {}._aurora2bq_state WHERE table_name = 'items'", s.dataset))
            .await;
    let get = |i: usize| r.first().and_then(|row| row[i].as_str()).map(str::to_owned);
    (get(0), get(1))
}

async fn overlapping_runs_commit_once(mode: &str, table: &str) {
    let s = Landing::new(ITEMS, &[], table).await;
    s.run().await.assert_ok();
    s.db.exec(&changes(mode, 1)).await;

    // Run A: reads, stages and commits its stream, then waits before its transaction.
    let resume = s.chain.dir.path().join("resume-a");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora2bq"));
    cmd.args(["run", "--config", s.config.to_str().unwrap()])
        .env("AURORA2BQ_LOG_FORMAT", "text")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("TEST_SOURCE_URL", &s.db.url)
        .env("AURORA2BQ_FAILPOINT", "before-transaction")
        .env("AURORA2BQ_FAILPOINT_ACTION", format!("wait:{}", resume.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut a = cmd.spawn().expect("start run A");
    let mut lines = BufReader::new(a.stderr.take().unwrap()).lines();
    let mut a_err = String::new();
    tokio::time::timeout(Duration::from_secs(180), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            a_err.push_str(&l);
            a_err.push('\n');
            if l.contains("failpoint before-transaction reached") {
                return;
            }
        }
        panic!("{mode}: run A ended before its transaction:\n{a_err}");
    })
    .await
    .expect("run A reached its transaction");

    // Run B, of the same config, does its whole load meanwhile, with more changes.
    s.db.exec(&changes(mode, 2)).await;
    s.run().await.assert_ok();
    assert_target_is_source(&s, mode).await;
    let after_b = state(&s).await;
    assert!(after_b.1.is_some(), "{mode}: B recorded its run");

    // A resumes: it must refuse, and change nothing.
    std::fs::write(&resume, "").unwrap();
    let out = tokio::time::timeout(Duration::from_secs(180), a.wait_with_output())
        .await
        .expect("run A ended")
        .expect("run A's output");
    while let Ok(Some(l)) = lines.next_line().await {
        a_err.push_str(&l);
        a_err.push('\n');
    }
    let a_out = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{mode}: run A committed over run B:\n{a_out}\n{a_err}");
    assert!(
        format!("{a_out}{a_err}").contains("another aurora2bq run committed items"),
        "{mode}: A does not say what happened:\n{a_out}\n{a_err}"
    );
    assert_target_is_source(&s, mode).await;
    assert_eq!(state(&s).await, after_b, "{mode}: the state moved after B");

    // And the next run goes on from B's watermark.
    s.db.exec(&changes(mode, 3)).await;
    s.run().await.assert_ok();
    assert_target_is_source(&s, mode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_full_refresh_runs() {
    overlapping_runs_commit_once("full_refresh", "\n[[tables]]\nsource = \"items\"\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_append_runs() {
    overlapping_runs_commit_once("append", "\n[[tables]]\nsource = \"items\"\nmode = \"append\"\ncursor = \"id\"\n")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_merge_runs() {
    overlapping_runs_commit_once(
        "merge",
        "\n[[tables]]\nsource = \"items\"\nmode = \"merge\"\ncursor = \"updated_at\"\nlookback = 60\n\
         soft_delete_column = \"deleted_at\"\n",
    )
    .await;
}
