//! MySQL tables read in key-range chunks over several connections: every row once, and all
//! chunks in one snapshot while the table changes. Money moves between accounts in other
//! chunks the whole time; a read whose chunks saw different moments would not add up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aurora2bq::config::{Engine, TableConfig, ZeroDates};
use aurora2bq::source::BatchLimits;
use sqlx::{Connection, Executor};

use crate::common::MyDb;
use crate::common::arrow_text::{read, source_config};

const ACCOUNTS: i64 = 20_000;
const TOTAL: i64 = ACCOUNTS * 100;

/// Moves amounts between accounts far apart (so in different chunks) in one transaction each,
/// and adds empty accounts, as fast as it can until stopped.
async fn transfer(url: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let mut next = ACCOUNTS + 1;
    while !stop.load(Ordering::SeqCst) {
        let from = fastrand::i64(1..=ACCOUNTS / 2);
        let to = from + ACCOUNTS / 2;
        let (a, b) = if fastrand::bool() { (from, to) } else { (to, from) };
        let sql = format!(
            "START TRANSACTION; UPDATE accounts SET balance = balance - 7 WHERE id = {a};
             UPDATE accounts SET balance = balance + 7 WHERE id = {b}; INSERT INTO accounts VALUES ({next}, 0); COMMIT;"
        );
        (&mut c).execute(sql.as_str()).await.unwrap();
        next += 1;
        done.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_chunks_read_one_snapshot_while_the_table_changes() {
    let db = MyDb::new().await;
    db.exec(&format!(
        "SET SESSION max_recursive_iterations = 100000;
         CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL);
         INSERT INTO accounts WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {ACCOUNTS})
         SELECT n, 100 FROM g;"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    let mut table = TableConfig::simple(None, "accounts");
    table.parallel_chunks = 4;
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let mover = tokio::spawn(transfer(db.url.clone(), stop.clone(), done.clone()));
    // At least six reads, and on until the transfers during them are enough to matter: on a
    // busy machine the mover can be slow, and a test that saw no writes would prove nothing.
    for round in 0..60 {
        if round >= 6 && done.load(Ordering::SeqCst) > 100 {
            break;
        }
        let before = done.load(Ordering::SeqCst);
        let r = read(&cfg, &table, None, BatchLimits { rows: 500, bytes: 1 << 20 }).await.expect("read");
        let ids: Vec<i64> = r.column("id").into_iter().map(|v| v.unwrap().parse().unwrap()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "round {round}: a row was read twice");
        assert!(ids.len() as i64 >= ACCOUNTS && unique[..ACCOUNTS as usize] == (1..=ACCOUNTS).collect::<Vec<_>>()[..]);
        let sum: i64 = r.column("balance").into_iter().map(|v| v.unwrap().parse::<i64>().unwrap()).sum();
        assert_eq!(
            sum,
            TOTAL,
            "round {round}: the chunks saw different moments ({} transfers during the read)",
            done.load(Ordering::SeqCst) - before
        );
        assert_eq!(r.stats.rows as usize, ids.len());
    }
    stop.store(true, Ordering::SeqCst);
    mover.await.unwrap();
    assert!(done.load(Ordering::SeqCst) > 100, "the table hardly changed during the reads");
}
