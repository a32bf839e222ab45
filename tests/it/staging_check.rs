//! The transaction's own check of the staging table: rows that the Storage Write API
//! acknowledged but did not keep (a storage fault) must fail the load and change nothing,
//! in every mode, rather than commit a partial table under a new watermark. The check
//! shares one statement with the overlap fence (tests/it/overlap.rs tests that half).

use aurora2bq_google_emulator::storage_write::FakeStorageWrite;

use crate::common::Landing;
use crate::common::compare::{Kind, assert_same, bq_rows, source_rows};

const COLS: &[(&str, Kind)] = &[("id", Kind::Int), ("v", Kind::Text), ("updated_at", Kind::Timestamp)];

async fn lost_rows_commit_nothing(mode: &str) {
    let table = format!(
        "[[tables]]\nsource = \"items\"\nmode = \"{mode}\"\n{}",
        if mode == "full_refresh" { "" } else { "cursor = \"updated_at\"\n" }
    );
    let l = Landing::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
         INSERT INTO items SELECT g, 'v' || g, timestamptz '2024-01-01Z' + g * interval '1 s'
         FROM generate_series(1, 300) g;",
        &[],
        &table,
    )
    .await;
    l.run().await.assert_ok();
    let loaded = source_rows(&mut l.db.connect().await, "items", COLS).await;
    let state_sql = format!("SELECT watermark, run_id FROM {}._aurora2bq_state", l.dataset);
    let state = || l.bq.query(&state_sql);
    let state_before = state().await;

    l.db.exec("INSERT INTO items SELECT g, 'new', now() FROM generate_series(301, 350) g").await;
    // The next run's rows go to a Storage Write API that acknowledges every append and
    // keeps nothing; the staging table and the transaction are bqemulator's.
    let discard = FakeStorageWrite::start(true, 0).await.expect("discarding Storage Write");
    let text = std::fs::read_to_string(&l.config).unwrap();
    std::fs::write(&l.config, text.replace(&l.chain.grpc_gate, &format!("http://{}", discard.addr))).unwrap();
    let run = l.run().await;
    assert_eq!(run.code, Some(1), "{mode}: the load must fail:\n{}\n{}", run.stdout, run.stderr);
    // The incremental modes' five-minute look-back re-reads the first 300 rows (their cursors
    // span 300 s), so every mode sends all 350.
    let said = "does not hold the 350 rows sent; nothing was changed";
    assert!(run.stdout.contains(said) || run.stderr.contains(said), "{mode}:\n{}\n{}", run.stdout, run.stderr);

    let target =
        bq_rows(l.bq.query(&format!("SELECT id, v, UNIX_MICROS(updated_at) FROM {}.items", l.dataset)).await, COLS);
    assert_same(&loaded, &target, COLS);
    assert_eq!(state().await, state_before, "{mode}: the watermark and the fence did not move");
}

#[tokio::test]
async fn lost_rows_commit_nothing_full_refresh() {
    lost_rows_commit_nothing("full_refresh").await;
}

#[tokio::test]
async fn lost_rows_commit_nothing_append() {
    lost_rows_commit_nothing("append").await;
}

#[tokio::test]
async fn lost_rows_commit_nothing_merge() {
    lost_rows_commit_nothing("merge").await;
}
