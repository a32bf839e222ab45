//! Everyday operation: choosing tables for a run (`--tables`, `--exclude-tables`, globs) and
//! reloading an incremental table from scratch (`--full-refresh`), atomically.

use crate::common;

use common::Landing;
use common::compare::{Kind, assert_same, bq_rows, source_rows};

const COLS: &[(&str, Kind)] = &[("id", Kind::Int), ("v", Kind::Text), ("updated_at", Kind::Timestamp)];

const DDL: &str =
    "CREATE TABLE items (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL, deleted_at timestamptz);
                   INSERT INTO items SELECT g, 'v' || g, timestamptz '2024-01-01Z' + g * interval '1 s', NULL
                   FROM generate_series(1, 300) g;
                   CREATE TABLE b_one AS SELECT 1 AS id; CREATE TABLE b_two AS SELECT 2 AS id;
                   CREATE TABLE c AS SELECT 3 AS id;";

const TABLES: &str = r#"
[[tables]]
source = "public.items"
mode = "merge"
cursor = "updated_at"
soft_delete_column = "deleted_at"

[[tables]]
source = "b_one"

[[tables]]
source = "b_two"
target = "b_second"

[[tables]]
source = "c"
"#;

async fn targets(s: &Landing) -> Vec<String> {
    let mut t: Vec<String> = s.bq.tables(&s.dataset).await.into_iter().filter(|t| !t.starts_with('_')).collect();
    t.sort();
    t
}

async fn state(s: &Landing) -> (String, String, String) {
    let r =
        s.bq.query(&format!(
            "SELECT mode, watermark, run_id FROM {}._aurora2bq_state WHERE table_name = 'items'",
            s.dataset
        ))
        .await;
    let v = |i: usize| r[0][i].as_str().unwrap_or_default().to_owned();
    (v(0), v(1), v(2))
}

async fn live_source_and_target(s: &Landing) -> (common::compare::Rows, common::compare::Rows) {
    let source = source_rows(&mut s.db.connect().await, "items WHERE deleted_at IS NULL", COLS).await;
    let target =
        bq_rows(s.bq.query(&format!("SELECT id, v, UNIX_MICROS(updated_at) FROM {}.items", s.dataset)).await, COLS);
    (source, target)
}

async fn target_is_live_source(s: &Landing) -> bool {
    let (source, target) = live_source_and_target(s).await;
    source == target
}

async fn assert_live_source(s: &Landing) {
    let (source, target) = live_source_and_target(s).await;
    assert_same(&source, &target, COLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_chosen_by_name_and_glob() {
    let s = Landing::new(DDL, &[], TABLES).await;
    s.command(&["run", "--tables", "public.items,b_o*"], &[]).await.assert_ok();
    assert_eq!(targets(&s).await, ["b_one", "items"]);
    // By target name, and everything but what is excluded.
    s.command(&["run", "--tables", "b_sec*"], &[]).await.assert_ok();
    assert_eq!(targets(&s).await, ["b_one", "b_second", "items"]);
    s.command(&["run", "--exclude-tables", "b_*,items"], &[]).await.assert_ok();
    assert_eq!(targets(&s).await, ["b_one", "b_second", "c", "items"]);
    // A name that matches nothing is an error before anything runs.
    let r = s.command(&["run", "--tables", "nope"], &[]).await;
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no table in the config matches \"nope\""), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_refresh_reloads_a_merge_table_atomically_and_keeps_its_mode() {
    let s = Landing::new(DDL, &[], TABLES).await;
    s.command(&["run", "--tables", "items"], &[]).await.assert_ok();
    assert_live_source(&s).await;
    let (mode, first_watermark, _) = state(&s).await;
    assert_eq!(mode, "merge");

    // Changes an incremental run cannot see: a hard delete, and an update that keeps its cursor.
    s.db.exec("DELETE FROM items WHERE id = 5; UPDATE items SET v = 'silent' WHERE id = 6;").await;
    s.command(&["run", "--tables", "items"], &[]).await.assert_ok();
    assert!(!target_is_live_source(&s).await, "an incremental run does not see them");

    // A reload killed before its transaction changes nothing: old rows, old watermark.
    let before = s.bq.query(&format!("SELECT COUNT(*) FROM {}.items", s.dataset)).await;
    let killed = s.command(&["run", "--full-refresh", "items"], &[("AURORA2BQ_FAILPOINT", "before-transaction")]).await;
    assert_ne!(killed.code, Some(0), "the failpoint stops the run");
    assert_eq!(s.bq.query(&format!("SELECT COUNT(*) FROM {}.items", s.dataset)).await, before);
    assert_eq!(state(&s).await.1, first_watermark, "the watermark did not move");

    // The reload: exactly the source's live rows, soft-deleted ones left out.
    s.db.exec("UPDATE items SET deleted_at = updated_at WHERE id = 7").await;
    s.command(&["run", "--full-refresh", "items"], &[]).await.assert_ok();
    let source = source_rows(&mut s.db.connect().await, "items WHERE deleted_at IS NULL", COLS).await;
    let target =
        bq_rows(s.bq.query(&format!("SELECT id, v, UNIX_MICROS(updated_at) FROM {}.items", s.dataset)).await, COLS);
    assert_same(&source, &target, COLS);
    let (mode, watermark, _) = state(&s).await;
    assert_eq!(mode, "merge", "the table keeps its mode");
    assert!(watermark.contains("\"cursor\""), "{watermark}");

    // Later runs are incremental again, from the reload's watermark.
    s.db.exec("UPDATE items SET v = 'later', updated_at = now() WHERE id = 8").await;
    s.command(&["run", "--tables", "items"], &[]).await.assert_ok();
    assert_live_source(&s).await;
}
