//! Incremental loads end to end (PostgreSQL → bqemulator through the whole chain): merge
//! with soft deletes and newest-cursor-wins, append, the state table, and the options a
//! target is created with.

use crate::common;

use common::Landing;
use common::compare::{Kind, assert_same, bq_rows, source_rows};

const COLS: &[(&str, Kind)] =
    &[("id", Kind::Int), ("v", Kind::Text), ("n", Kind::Int), ("updated_at", Kind::Timestamp)];

/// The target holds exactly the source's rows that are not soft-deleted.
async fn assert_target_is_live_source(s: &Landing) {
    let source = source_rows(&mut s.db.connect().await, "items WHERE deleted_at IS NULL", COLS).await;
    let target =
        bq_rows(s.bq.query(&format!("SELECT id, v, n, UNIX_MICROS(updated_at) FROM {}.items", s.dataset)).await, COLS);
    assert_same(&source, &target, COLS);
}

const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY, v text, n int, created_at date NOT NULL DEFAULT date '2024-01-15',
                         updated_at timestamptz NOT NULL, deleted_at timestamptz);
                     INSERT INTO items SELECT g, 'v' || g, g, date '2024-01-01' + (g % 28), timestamptz '2024-01-01Z' + g * interval '1 s', NULL
                     FROM generate_series(1, 1000) g;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_applies_updates_inserts_and_soft_deletes_and_records_the_watermark() {
    let s = Landing::new(
        ITEMS,
        &[],
        r#"
[[tables]]
source = "items"
mode = "merge"
cursor = "updated_at"
lookback = 60
soft_delete_column = "deleted_at"
partition = { column = "created_at", granularity = "DAY" }
cluster_by = ["id"]
description = "items from Aurora"
labels = { team = "data" }
metadata_columns = true
"#,
    )
    .await;
    s.run().await.assert_ok();
    assert_target_is_live_source(&s).await;

    // The target was created with the requested options and metadata columns.
    let t = s.bq.table(&s.dataset, "items").await.unwrap();
    assert_eq!(t["timePartitioning"]["field"], "created_at", "{t}");
    assert_eq!(t["clustering"]["fields"][0], "id", "{t}");
    assert_eq!(t["labels"]["team"], "data", "{t}");
    assert_eq!(t["description"], "items from Aurora", "{t}");
    let runs =
        s.bq.query(&format!(
            "SELECT COUNT(DISTINCT _aurora2bq_run_id), COUNTIF(_aurora2bq_extracted_at IS NULL) FROM {}.items",
            s.dataset
        ))
        .await;
    assert_eq!((runs[0][0].as_str(), runs[0][1].as_str()), (Some("1"), Some("0")));

    // Updates, inserts, soft deletes, and an update that brings a row back.
    s.db.exec(
        "UPDATE items SET v = 'updated', n = n + 1000, updated_at = now() WHERE id % 10 = 0;
         UPDATE items SET deleted_at = now(), updated_at = now() WHERE id % 7 = 0;
         INSERT INTO items SELECT g, 'new', g, date '2024-02-01', now(), NULL FROM generate_series(1001, 1100) g;",
    )
    .await;
    let run = s.run().await;
    run.assert_ok();
    assert_target_is_live_source(&s).await;
    s.db.exec("UPDATE items SET deleted_at = NULL, v = 'restored', updated_at = now() WHERE id = 14").await;
    s.run().await.assert_ok();
    assert_target_is_live_source(&s).await;

    // The state table holds the watermark, typed and as lossless JSON.
    let st =
        s.bq.query(&format!(
            "SELECT mode, watermark, UNIX_MICROS(cursor_timestamp) FROM {}._aurora2bq_state WHERE table_name = 'items'",
            s.dataset
        ))
        .await;
    assert_eq!(st[0][0].as_str(), Some("merge"));
    let wm: serde_json::Value = serde_json::from_str(st[0][1].as_str().unwrap()).unwrap();
    assert_eq!(wm["cursor"]["timestamp"].to_string(), st[0][2].as_str().unwrap());
    assert_eq!(wm["key"][0]["text"], "14");

    // Nothing changed: the look-back re-reads the last minute's rows, and the merge makes
    // that harmless: nothing is duplicated.
    s.run().await.assert_ok();
    assert_target_is_live_source(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_inserts_each_new_row_once() {
    let s = Landing::new(
        "CREATE TABLE events (id bigint PRIMARY KEY, kind text, happened_at timestamptz NOT NULL);
         INSERT INTO events SELECT g, 'k' || (g % 3), timestamptz '2024-01-01Z' FROM generate_series(1, 500) g;",
        &[],
        "\n[[tables]]\nsource = \"events\"\nmode = \"append\"\ncursor = \"id\"\n",
    )
    .await;
    let cols: &[(&str, Kind)] = &[("id", Kind::Int), ("kind", Kind::Text), ("happened_at", Kind::Timestamp)];
    for round in 0..3 {
        s.run().await.assert_ok();
        let source = source_rows(&mut s.db.connect().await, "events", cols).await;
        let target = bq_rows(
            s.bq.query(&format!("SELECT id, kind, UNIX_MICROS(happened_at) FROM {}.events", s.dataset)).await,
            cols,
        );
        assert_same(&source, &target, cols);
        s.db.exec(&format!(
            "INSERT INTO events SELECT g, 'late', now() FROM generate_series({}, {}) g;",
            501 + round * 100,
            600 + round * 100
        ))
        .await;
    }
}

/// Changing `key` in the config between runs: the stored watermark names the old key, so
/// the next run resumes at its cursor inclusively instead of comparing the new key with the
/// old one's value, and nothing is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_changed_in_the_config_resumes_safely() {
    let s = Landing::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, v text, n int, code text NOT NULL UNIQUE,
                             updated_at timestamptz NOT NULL, deleted_at timestamptz);
         INSERT INTO items SELECT g, 'v', g, 'c' || g, timestamptz '2024-01-01Z', NULL FROM generate_series(1, 50) g;",
        &[],
        "\n[[tables]]\nsource = \"items\"\nmode = \"merge\"\ncursor = \"updated_at\"\nkey = [\"code\"]\nlookback = 0\n",
    )
    .await;
    s.run().await.assert_ok();
    let text = std::fs::read_to_string(&s.config).unwrap().replace("key = [\"code\"]\n", "");
    std::fs::write(&s.config, text).unwrap();
    s.db.exec("INSERT INTO items SELECT g, 'new', g, 'c' || g, timestamptz '2024-01-01Z', NULL FROM generate_series(51, 60) g;
               UPDATE items SET v = 'changed', updated_at = now() WHERE id = 7;")
        .await;
    s.run().await.assert_ok();
    assert_target_is_live_source(&s).await;
}
