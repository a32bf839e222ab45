//! Many tables: what a run costs per table in calls to BigQuery, and that those calls
//! overlap up to the table concurrency. Against the latency BigQuery of testing/ (every
//! call answered after a fixed delay, no SQL checked), because bqemulator cannot take
//! concurrent loads; the data itself is checked against bqemulator everywhere else.

use std::time::Duration;

use aurora2bq_google_emulator::Endpoint;
use aurora2bq_google_emulator::storage_write::FakeStorageWrite;

use crate::common::{self, PgDb, chain};

const TABLES: usize = 24;
const CONCURRENCY: usize = 8;

#[tokio::test]
async fn tables_share_the_runs_fixed_calls_and_overlap_their_own() {
    let db = PgDb::new().await;
    let mut ddl = String::new();
    for i in 0..TABLES {
        ddl.push_str(&format!(
            "CREATE TABLE t{i:02} (id bigint PRIMARY KEY, v text); \
             INSERT INTO t{i:02} SELECT g, 'row ' || g FROM generate_series(1, 50) g;"
        ));
    }
    db.exec(&ddl).await;
    let mut chain = chain::Chain::start(chain::good_project()).await;
    let latency = Duration::from_millis(150);
    let rest = chain.emulator.start_latency_bigquery(0, latency).await.expect("latency BigQuery");
    let write = FakeStorageWrite::start_with_latency(true, 0, latency).await.expect("latency Storage Write");
    let config = common::write_config(
        chain.dir.path(),
        &chain,
        "many",
        &["t*"],
        &format!("[run]\ntable_concurrency = {CONCURRENCY}\n"),
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace(&chain.rest_gate, &format!("http://{rest}"))
        .replace(&chain.grpc_gate, &format!("http://{}", write.addr));
    std::fs::write(&config, text).unwrap();
    let stats = || async {
        let url = format!("http://{rest}/fake/stats");
        reqwest::get(&url).await.unwrap().json::<serde_json::Value>().await.unwrap()
    };
    let (args, env) = (["run", "--config", config.to_str().unwrap()], [("TEST_SOURCE_URL", db.url.as_str())]);
    let run = || common::aurora2bq(&args, &env);

    // The first run creates the targets; the second is every later night's.
    run().await.assert_ok();
    let (before, sts_before, unary_before) =
        (stats().await, chain.emulator.calls(Endpoint::Sts), write.fake.unary_calls());
    let out = run().await;
    out.assert_ok();
    assert_eq!(
        out.stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        TABLES,
        "every table loaded:\n{}",
        out.stdout
    );
    let after = stats().await;
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    let n = TABLES as u64;

    // Per table: the staging table created, the target read, the transaction, the staging
    // table dropped. Per run: the dataset, the state and history tables, one state read
    // for all tables, one history insert. No per-table state read.
    assert_eq!(delta("queries"), n + 2, "one transaction per table, one state read and one history insert");
    assert_eq!(delta("calls"), 4 * n + 5, "REST calls: {after}");
    // Per table: create the stream, finalize it, commit it.
    assert_eq!(write.fake.unary_calls() - unary_before, 3 * n, "Storage Write calls");
    // One token for all tables.
    assert_eq!(chain.emulator.calls(Endpoint::Sts) - sts_before, 1, "one STS exchange for the whole run");
    // The first wave of tables creates its staging tables together: nothing serial in between.
    assert!(
        after["max_in_flight"].as_u64().unwrap() >= CONCURRENCY as u64,
        "at most {} REST calls were ever in flight at once, with table_concurrency {CONCURRENCY}",
        after["max_in_flight"]
    );
}
