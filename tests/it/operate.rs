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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_mapping_evolution_window_and_refusals_and_writes_nothing() {
    let ddl = "CREATE TABLE items (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
               INSERT INTO items SELECT g, 'v', timestamptz '2024-01-01Z' + g * interval '1 s' FROM generate_series(1, 50) g;
               CREATE TABLE ev (id int PRIMARY KEY, a text); INSERT INTO ev VALUES (1, 'x');
               CREATE TABLE bad (id int PRIMARY KEY, l pg_lsn);
               ANALYZE items;";
    let tables = r#"
[[tables]]
source = "items"
mode = "merge"
cursor = "updated_at"
lookback = 60

[[tables]]
source = "ev"

[[tables]]
source = "bad"
"#;
    let s = Landing::new(ddl, &[], tables).await;
    // Before the first run: every target would be created, and the plan creates nothing.
    let first = s.command(&["plan", "--tables", "items,ev", "--json"], &[]).await;
    first.assert_ok();
    let first: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert!(first.as_array().unwrap().iter().all(|t| t["target"]["action"] == "create"), "{first}");
    assert!(s.bq.tables(&s.dataset).await.is_empty(), "a plan writes nothing, not even the state table");
    s.command(&["run", "--tables", "items,ev"], &[]).await.assert_ok();
    s.db.exec("ALTER TABLE ev ADD COLUMN b bigint").await;
    let before_tables = targets(&s).await;
    let before_state = state(&s).await;

    let plan = s.command(&["plan", "--json"], &[]).await;
    assert_eq!(plan.code, Some(1), "a table would fail: {}\n{}", plan.stdout, plan.stderr);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan --json is JSON");
    let table = |name: &str| plan.as_array().unwrap().iter().find(|t| t["table"] == name).unwrap().clone();

    let items = table("items");
    assert!(items["problem"].is_null(), "{items}");
    assert_eq!(items["mode"], "merge");
    assert_eq!(items["target"]["action"], "unchanged");
    assert_eq!(items["window"]["cursor"], "updated_at");
    assert_eq!(items["window"]["after"], "2024-01-01T00:00:50Z", "{items}");
    assert_eq!(items["window"]["lookback"], 60);
    assert_eq!(items["estimate"]["rows"], 50, "ANALYZE's count: {items}");
    let cols: Vec<(String, String)> = items["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["source_type"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(cols[0], ("id".to_string(), "bigint".to_string()), "{items}");
    assert_eq!(items["columns"][2]["bigquery_type"], "TIMESTAMP");

    let ev = table("ev");
    assert_eq!(ev["target"]["action"], "evolve", "{ev}");
    assert_eq!(ev["target"]["add"][0][0], "b", "{ev}");
    assert!(ev["problem"].is_null());

    let bad = table("bad");
    assert!(bad["problem"].as_str().unwrap().contains("pg_lsn"), "{bad}");
    assert!(bad["fix"].as_str().unwrap().contains("exclude_columns"), "{bad}");

    // Nothing was written: the same tables, the same state, ev without its new column.
    assert_eq!(targets(&s).await, before_tables);
    assert_eq!(state(&s).await, before_state);
    let ev_cols = s.bq.table(&s.dataset, "ev").await.unwrap()["schema"]["fields"].to_string();
    assert!(!ev_cols.contains("\"b\""), "{ev_cols}");

    // The text form says the same for people.
    let text = s.command(&["plan", "--tables", "ev,bad"], &[]).await;
    assert_eq!(text.code, Some(1));
    assert!(text.stdout.contains("target: add column b"), "{}", text.stdout);
    assert!(text.stdout.contains("WOULD FAIL") && text.stdout.contains("fix: exclude the column"), "{}", text.stdout);
    assert!(text.stdout.contains("1 of 2 tables would load"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_entry_loads_each_matching_table_and_picks_up_new_ones() {
    let ddl = "CREATE SCHEMA app;
               CREATE TABLE app.t1 (id int PRIMARY KEY); INSERT INTO app.t1 VALUES (1);
               CREATE TABLE app.t2 (id int PRIMARY KEY); INSERT INTO app.t2 VALUES (1), (2);
               CREATE TABLE app.t_audit (id int PRIMARY KEY);
               CREATE TABLE app.other (id int PRIMARY KEY);";
    let tables = r#"
[[tables]]
source = "app.t*"
exclude = ["t_audit*"]

[[tables]]
source = "app.t2"
target = "t2_custom"
"#;
    let s = Landing::new(ddl, &[], tables).await;
    s.command(&["run"], &[]).await.assert_ok();
    assert_eq!(targets(&s).await, ["t1", "t2_custom"], "the explicit entry wins; excluded and unmatched are left");
    let count = s.bq.query(&format!("SELECT COUNT(*) FROM {}.t2_custom", s.dataset)).await;
    assert_eq!(count[0][0].as_str(), Some("2"));

    // A table created later is loaded by the next run, and can be chosen by its own name.
    s.db.exec("CREATE TABLE app.t3 (id int PRIMARY KEY); INSERT INTO app.t3 VALUES (7);").await;
    s.command(&["run", "--tables", "t3"], &[]).await.assert_ok();
    assert_eq!(targets(&s).await, ["t1", "t2_custom", "t3"]);
    let row = s.bq.query(&format!("SELECT id FROM {}.t3", s.dataset)).await;
    assert_eq!(row[0][0].as_str(), Some("7"));

    // A pattern's table is known to `state` by its stored name.
    let reset = s.command(&["state", "reset", "t3", "--yes"], &[]).await;
    reset.assert_ok();
    assert!(reset.stdout.contains("forgot 1 stored watermark(s) of t3"), "{}", reset.stdout);
    let unknown = s.command(&["state", "reset", "t9", "--yes"], &[]).await;
    assert_eq!(unknown.code, Some(2), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("no table in the config matches \"t9\""), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql_a_pattern_expands_in_the_urls_database_and_plan_sees_its_tables() {
    let db = common::MyDb::new().await;
    db.exec(
        "CREATE TABLE t1 (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t1 VALUES (1, 'a');
         CREATE TABLE t2 (id INT PRIMARY KEY); INSERT INTO t2 VALUES (1), (2);
         CREATE TABLE t_skip (id INT PRIMARY KEY);
         CREATE TABLE other (id INT PRIMARY KEY);",
    )
    .await;
    let bq = common::bq::Bq::new();
    let dataset = bq.create_dataset().await;
    let chain = common::chain::Chain::start(common::chain::good_project()).await;
    let config = common::write_config(chain.dir.path(), &chain, &dataset, &[], "");
    let text = std::fs::read_to_string(&config).unwrap().replace("engine = \"postgres\"", "engine = \"mysql\"")
        + "\n[[tables]]\nsource = \"t*\"\nexclude = [\"t_skip\"]\n";
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let env = [("TEST_SOURCE_URL", db.url.as_str())];

    let plan = common::aurora2bq(&["plan", "--config", config, "--json"], &env).await;
    plan.assert_ok();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let planned: Vec<&str> = plan.as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap()).collect();
    assert_eq!(planned, ["t1", "t2"], "{plan}");
    assert_eq!(plan[0]["columns"][1]["source_type"], "varchar(10)", "{plan}");

    common::aurora2bq(&["run", "--config", config], &env).await.assert_ok();
    let mut tables: Vec<String> = bq.tables(&dataset).await.into_iter().filter(|t| !t.starts_with('_')).collect();
    tables.sort();
    assert_eq!(tables, ["t1", "t2"]);
    let n = bq.query(&format!("SELECT COUNT(*) FROM {dataset}.t2")).await;
    assert_eq!(n[0][0].as_str(), Some("2"));
}
