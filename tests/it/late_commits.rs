//! Late commits through the CLI with the default configuration, on both engines: a
//! transaction takes its cursor value (the database clock, or the next id), another commits
//! a later one, a run loads that one, then the first commits. The next run must bring the
//! late row, once, in append and merge; an integer (sequence) cursor needs the look-back
//! set, and then does too.

use crate::common;

use sqlx::{Connection, Executor};

use common::bq::Bq;
use common::chain::{Chain, good_project};

use common::AnyDb as Db;

/// A connection holding a transaction open.
enum Open {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
}

impl Open {
    async fn begin(db: &Db, insert: &str) -> Open {
        let mut o = match db {
            Db::Pg(d) => Open::Pg(sqlx::PgConnection::connect(&d.url).await.unwrap()),
            Db::My(d) => Open::My(sqlx::MySqlConnection::connect(&d.url).await.unwrap()),
        };
        o.exec("BEGIN").await;
        o.exec(insert).await;
        o
    }

    async fn exec(&mut self, sql: &str) {
        match self {
            Open::Pg(c) => c.execute(sql).await.map(|_| ()).unwrap(),
            Open::My(c) => c.execute(format!("SET time_zone = '+00:00'; {sql}").as_str()).await.map(|_| ()).unwrap(),
        }
    }
}

async fn ids_in_target(bq: &Bq, dataset: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = bq
        .query(&format!("SELECT id FROM {dataset}.ev"))
        .await
        .iter()
        .map(|r| r[0].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    ids
}

/// `ddl` makes table `ev` with `id`, `v` and `updated_at`; `late`/`early` insert one row
/// each; `table` is the `[[tables]]` entry.
async fn late_row_arrives(db: Db, ddl: &str, late: &str, early: &str, table: &str) {
    db.exec(ddl).await;
    let bq = Bq::new();
    let dataset = bq.create_dataset().await;
    let chain = Chain::start(good_project()).await;
    let config = common::write_config(chain.dir.path(), &chain, &dataset, &[], table);
    if matches!(db, Db::My(_)) {
        let text = std::fs::read_to_string(&config).unwrap().replace("engine = \"postgres\"", "engine = \"mysql\"");
        std::fs::write(&config, text).unwrap();
    }
    let args = ["run", "--config", config.to_str().unwrap()];
    let env = [("TEST_SOURCE_URL", db.url())];
    let run = || common::aurora2bq(&args, &env);
    run().await.assert_ok();
    assert_eq!(ids_in_target(&bq, &dataset).await, (1..=10).collect::<Vec<_>>());

    let mut open = Open::begin(&db, late).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    db.exec(early).await;
    run().await.assert_ok();
    let mid = ids_in_target(&bq, &dataset).await;
    assert_eq!(mid.len(), 11, "the early row, not the uncommitted one: {mid:?}");
    open.exec("COMMIT").await;

    run().await.assert_ok();
    run().await.assert_ok();
    let after = ids_in_target(&bq, &dataset).await;
    assert_eq!(after.len(), 12, "the late row arrives, and nothing twice: {after:?}");
}

const PG_TIME: &str = "CREATE TABLE ev (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());
                       INSERT INTO ev (id, v) SELECT g, 'a' FROM generate_series(1, 10) g;";
const MY_TIME: &str = "CREATE TABLE ev (id bigint PRIMARY KEY, v text,
                         updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
                       INSERT INTO ev (id, v) VALUES (1,'a'),(2,'a'),(3,'a'),(4,'a'),(5,'a'),(6,'a'),(7,'a'),(8,'a'),(9,'a'),(10,'a');";

fn entry(mode: &str, cursor: &str, extra: &str) -> String {
    format!("\n[[tables]]\nsource = \"ev\"\nmode = \"{mode}\"\ncursor = \"{cursor}\"\n{extra}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_clock_cursors_catch_late_commits_by_default() {
    for mode in ["append", "merge"] {
        let db = Db::Pg(common::PgDb::new().await);
        late_row_arrives(
            db,
            PG_TIME,
            "INSERT INTO ev (id, v) VALUES (100, 'late')",
            "INSERT INTO ev (id, v) VALUES (101, 'early')",
            &entry(mode, "updated_at", ""),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_clock_cursors_catch_late_commits_by_default() {
    for mode in ["append", "merge"] {
        let db = Db::My(common::MyDb::new().await);
        late_row_arrives(
            db,
            MY_TIME,
            "INSERT INTO ev (id, v) VALUES (100, 'late')",
            "INSERT INTO ev (id, v) VALUES (101, 'early')",
            &entry(mode, "updated_at", ""),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_cursors_catch_late_commits_with_a_lookback() {
    let pg = "CREATE TABLE ev (id bigserial PRIMARY KEY, v text, updated_at timestamptz DEFAULT now());
              INSERT INTO ev (v) SELECT 'a' FROM generate_series(1, 10);";
    let my = "CREATE TABLE ev (id bigint AUTO_INCREMENT PRIMARY KEY, v text, updated_at timestamp(6) NULL);
              INSERT INTO ev (v) VALUES ('a'),('a'),('a'),('a'),('a'),('a'),('a'),('a'),('a'),('a');";
    let (late, early) = ("INSERT INTO ev (v) VALUES ('late')", "INSERT INTO ev (v) VALUES ('early')");
    let table = entry("append", "id", "lookback = 100\n");
    late_row_arrives(Db::Pg(common::PgDb::new().await), pg, late, early, &table).await;
    late_row_arrives(Db::My(common::MyDb::new().await), my, late, early, &table).await;
}
