//! Schema changes against bqemulator: a new column is added to the target, a dropped one
//! stays (NULL from then on), INT64 widens to NUMERIC, an impossible change stops the table
//! with what changed and how to proceed, and `schema_changes = "refuse"` stops on any.

use crate::common;

use common::Landing;

async fn setup(extra: &str) -> Landing {
    let tables = format!("\n[[tables]]\nsource = \"t\"\nmode = \"merge\"\ncursor = \"updated_at\"\n{extra}");
    Landing::new(
        "CREATE TABLE t (id bigint PRIMARY KEY, v text, n int, d text, updated_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO t SELECT g, 'v' || g, g, '2024-01-0' || (g % 9 + 1), now() - interval '1 hour' FROM generate_series(1, 20) g;",
        &[],
        &tables,
    )
    .await
}

/// The BigQuery type of the target's column `name`, if it has one.
async fn column_type(s: &Landing, name: &str) -> Option<String> {
    let t = s.bq.table(&s.dataset, "t").await.unwrap();
    t["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .map(|f| f["type"].as_str().unwrap().to_owned())
}

/// The target's rows, ordered by id, as text.
async fn values(s: &Landing, sql_cols: &str) -> Vec<Vec<Option<String>>> {
    s.bq.query(&format!("SELECT {sql_cols} FROM {}.t ORDER BY id", s.dataset))
        .await
        .into_iter()
        .map(|r| r.into_iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_dropped_and_widened_columns_evolve_the_target() {
    let s = setup("").await;
    s.run().await.assert_ok();

    s.db.exec("ALTER TABLE t ADD COLUMN extra text; UPDATE t SET extra = 'x' || id, updated_at = now() WHERE id <= 5;")
        .await;
    s.run().await.assert_ok();
    assert_eq!(column_type(&s, "extra").await.as_deref(), Some("STRING"));
    let rows = values(&s, "id, extra").await;
    assert_eq!(rows[0], vec![Some("1".into()), Some("x1".into())]);
    assert_eq!(rows[10], vec![Some("11".into()), None], "rows not re-read have no value yet");

    s.db.exec("ALTER TABLE t DROP COLUMN v; UPDATE t SET updated_at = now() WHERE id = 2;").await;
    s.run().await.assert_ok();
    let rows = values(&s, "id, v").await;
    assert_eq!(rows[0], vec![Some("1".into()), Some("v1".into())], "an untouched row keeps the old value");
    assert_eq!(column_type(&s, "v").await.as_deref(), Some("STRING"), "the column stays in the target");

    s.db.exec("ALTER TABLE t ALTER COLUMN n TYPE numeric(20,0); UPDATE t SET n = 99999999999999999999, updated_at = now() WHERE id = 3;").await;
    s.run().await.assert_ok();
    assert_eq!(column_type(&s, "n").await.as_deref(), Some("NUMERIC"), "INT64 widened to NUMERIC");
    let rows = values(&s, "id, CAST(n AS STRING)").await;
    let n3 = rows[2][1].clone().unwrap();
    assert!(n3.starts_with("99999999999999999999"), "{n3}");
    assert!(rows[3][1].as_deref().unwrap().starts_with('4'), "{:?}", rows[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_change_stops_the_table_and_says_how_to_proceed() {
    let s = setup("").await;
    s.run().await.assert_ok();
    let before = values(&s, "id, d").await;
    s.db.exec("ALTER TABLE t ALTER COLUMN d TYPE date USING d::date; UPDATE t SET updated_at = now();").await;
    let run = s.run().await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stdout.contains("column d is STRING in BigQuery but the source now gives DATE"), "{}", run.stdout);
    assert!(run.stdout.contains("cast") && run.stdout.contains("drop the target table"), "{}", run.stdout);
    assert_eq!(values(&s, "id, d").await, before, "the target was left as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_mode_stops_on_a_new_column() {
    let s = setup("schema_changes = \"refuse\"\n").await;
    s.run().await.assert_ok();
    s.db.exec("ALTER TABLE t ADD COLUMN extra int; UPDATE t SET updated_at = now();").await;
    let run = s.run().await;
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stdout.contains("new column extra (INT64)") && run.stdout.contains("schema_changes = \"evolve\""),
        "{}",
        run.stdout
    );
    assert_eq!(column_type(&s, "extra").await, None);
}
