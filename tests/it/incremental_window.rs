//! Incremental windows on both engines: ties on the cursor are neither lost nor repeated,
//! a late commit is caught by the look-back (and lost without it: the trap), rows changed
//! during a read are picked up by the next, and the database clock bounds the window.

use crate::common;

use std::time::Duration;

use aurora2bq::config::{Engine, LoadMode, TableConfig, ZeroDates};
use aurora2bq::source::window::{Watermark, Window};
use aurora2bq::source::{self, BatchLimits};
use common::arrow_text::{read, source_config};
use sqlx::{Connection, Executor};

const LIMITS: BatchLimits = BatchLimits { rows: 1000, bytes: 1 << 20 };

fn table() -> TableConfig {
    let mut t = TableConfig::simple(None, "ev");
    t.mode = LoadMode::Merge;
    t.cursor = Some("updated_at".into());
    t
}

fn window(after: Option<Watermark>, lookback: i64) -> Window {
    Window {
        cursor: "updated_at".into(),
        key: vec!["id".into()],
        after,
        lookback: Some(lookback),
        null_cursors: aurora2bq::source::window::NullCursors::Reread,
    }
}

async fn ids(cfg: &aurora2bq::config::SourceConfig, w: &Window) -> (Vec<i64>, Option<Watermark>) {
    let r = read(cfg, &table(), Some(w), LIMITS).await.expect("window read");
    let mut ids: Vec<i64> = r.column("id").into_iter().map(|v| v.unwrap().parse().unwrap()).collect();
    ids.sort();
    (ids, r.stats.watermark.or(w.after.clone()))
}

/// SQL that differs between the engines.
struct Dialect {
    engine: Engine,
    ddl: &'static str,
    now: &'static str,
    future: &'static str,
}

const PG: Dialect = Dialect {
    engine: Engine::Postgres,
    ddl: "CREATE TABLE ev (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, v text);
          INSERT INTO ev SELECT g, CASE WHEN g <= 10 THEN timestamptz '2024-01-01 00:00:00+00' ELSE timestamptz '2024-01-02 00:00:00.000001+00' END, 'a'
          FROM generate_series(1, 20) g;",
    now: "now()",
    future: "now() + interval '1 hour'",
};

const MY: Dialect = Dialect {
    engine: Engine::Mysql,
    ddl: "CREATE TABLE ev (id bigint PRIMARY KEY, updated_at timestamp(6) NOT NULL, v text);
          INSERT INTO ev SELECT seq, IF(seq <= 10, '2024-01-01 00:00:00', '2024-01-02 00:00:00.000001'), 'a' FROM seq_1_to_20;",
    now: "NOW(6)",
    future: "NOW(6) + INTERVAL 1 HOUR",
};

/// A connection for writes, outside aurora2bq.
enum Conn {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
}

impl Conn {
    async fn open(d: &Dialect, url: &str) -> Conn {
        match d.engine {
            Engine::Postgres => Conn::Pg(sqlx::PgConnection::connect(url).await.unwrap()),
            Engine::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
                (&mut c).execute("SET time_zone = '+00:00'").await.unwrap();
                Conn::My(c)
            }
        }
    }

    async fn exec(&mut self, sql: &str) {
        let sql: &str = sql;
        match self {
            Conn::Pg(c) => c.execute(sql).await.map(|_| ()),
            Conn::My(c) => c.execute(sql).await.map(|_| ()),
        }
        .unwrap();
    }
}

async fn scenario(d: &Dialect, url: &str) {
    let mut admin = Conn::open(d, url).await;
    admin.exec(d.ddl).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(d.engine, url, dir.path(), ZeroDates::Error);

    // The first load takes everything and remembers the largest (cursor, key).
    let (all, w) = ids(&cfg, &window(None, 0)).await;
    assert_eq!(all, (1..=20).collect::<Vec<_>>());
    let w = w.expect("a watermark");
    assert_eq!(w.key[0].text, "20");

    // A run that stopped inside a tie at (2024-01-01, 5) resumes at 6: ties neither lost nor repeated.
    let mut mid = w.clone();
    mid.cursor = match &w.cursor {
        aurora2bq::source::window::CursorValue::Timestamp(_) => {
            aurora2bq::source::window::CursorValue::Timestamp(1_704_067_200_000_000)
        }
        other => panic!("{other:?}"),
    };
    mid.key[0].text = "5".into();
    let (resumed, _) = ids(&cfg, &window(Some(mid), 0)).await;
    assert_eq!(resumed, (6..=20).collect::<Vec<_>>());

    // A new row tied with the watermark's cursor but with a larger key is read exactly once.
    admin.exec("INSERT INTO ev VALUES (21, '2024-01-02 00:00:00.000001', 'tie')").await;
    let (next, w) = ids(&cfg, &window(Some(w), 0)).await;
    assert_eq!(next, vec![21]);
    let w = w.unwrap();
    let (again, _) = ids(&cfg, &window(Some(w.clone()), 0)).await;
    assert!(again.is_empty(), "nothing is read twice: {again:?}");

    // Late commit: A takes its cursor value, B commits a later one, a read sees only B,
    // then A commits with a cursor older than the new watermark.
    let mut a = Conn::open(d, url).await;
    a.exec(&format!("BEGIN; INSERT INTO ev VALUES (100, {}, 'late')", d.now)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    admin.exec(&format!("INSERT INTO ev VALUES (101, {}, 'early')", d.now)).await;
    let (seen, w2) = ids(&cfg, &window(Some(w.clone()), 0)).await;
    assert_eq!(seen, vec![101]);
    a.exec("COMMIT").await;
    let w2 = w2.unwrap();
    let (without, _) = ids(&cfg, &window(Some(w2.clone()), 0)).await;
    assert!(!without.contains(&100), "without a look-back the late row is lost (the trap this guards against)");
    let (with, _) = ids(&cfg, &window(Some(w2.clone()), 5)).await;
    assert!(with.contains(&100), "the look-back re-reads it: {with:?}");

    // A row whose cursor is ahead of the database clock waits for the clock.
    admin.exec(&format!("INSERT INTO ev VALUES (200, {}, 'future')", d.future)).await;
    let (now, w3) = ids(&cfg, &window(Some(w2.clone()), 0)).await;
    assert!(!now.contains(&200), "{now:?}");
    assert_eq!(w3.unwrap(), w2, "the watermark does not pass the clock");

    // A change committed while a read is open is not in that read, and is in the next.
    let src = source::connect(&cfg, LIMITS).await.unwrap();
    let open = src.open(&table(), Some(&window(Some(w2.clone()), 0))).await.unwrap();
    admin.exec(&format!("UPDATE ev SET v = 'changed', updated_at = {} WHERE id = 5", d.now)).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(open.read_into(tx));
    let mut during = 0;
    while let Some(b) = rx.recv().await {
        during += b.num_rows();
    }
    let stats = task.await.unwrap().unwrap();
    assert_eq!(during, 0, "the snapshot does not see the change");
    let after = stats.watermark.unwrap_or(w2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (next, _) = ids(&cfg, &window(Some(after), 0)).await;
    assert_eq!(next, vec![5], "the next read picks the change up");
}

#[tokio::test]
async fn postgres_windows() {
    let db = common::PgDb::new().await;
    scenario(&PG, &db.url).await;
}

#[tokio::test]
async fn mysql_windows() {
    let db = common::MyDb::new().await;
    scenario(&MY, &db.url).await;
}
