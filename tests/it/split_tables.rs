//! Tables split across the shards of a run (`split_across_shards`): every shard reads its
//! key-range chunks of each table and stages them in a part of its own; the shard that
//! finishes last commits the table from every part in one transaction. Under concurrent
//! writes, a shard SIGKILLed at each point of that path leaves the target unchanged, its
//! rerun (Kubernetes retrying the index, same Job: same group) completes the table, and a
//! later run finds every table equal to the source with nothing lost or doubled, in every
//! mode. The shards run one after another (bqemulator cannot take concurrent loads); which
//! one finishes last is what matters, and the test chooses it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::common::compare::{Kind, assert_same, bq_rows, source_rows};
use crate::common::{self, Landing};

const SHARDS: u32 = 3;
const CHUNKS: usize = 4;
const TABLES: &[(&str, &str)] = &[("sf", "full_refresh"), ("sa", "append"), ("sm", "merge")];
const COLS: &[(&str, Kind)] = &[("id", Kind::Int), ("v", Kind::Text), ("updated_at", Kind::Timestamp)];

async fn target_rows(l: &Landing, table: &str) -> Option<common::compare::Rows> {
    l.bq.table(&l.dataset, table).await?;
    let sql = format!("SELECT id, v, UNIX_MICROS(updated_at) FROM {}.{table}", l.dataset);
    Some(bq_rows(l.bq.query(&sql).await, COLS))
}

async fn targets(l: &Landing) -> Vec<Option<common::compare::Rows>> {
    let mut all = Vec::new();
    for (t, _) in TABLES {
        all.push(target_rows(l, t).await);
    }
    all
}

/// Shard `i` of the run `group`, killed at `point` if given; a shard not killed succeeds.
async fn shard(l: &Landing, group: &str, i: u32, point: Option<&str>) -> common::KilledRun {
    let arg = format!("{i}/{SHARDS}");
    let r = common::run_killed_at(&l.config, &l.db.url, &["--shard", &arg, "--shard-group", group], point).await;
    if point.is_none() {
        assert_eq!(r.code, Some(0), "shard {arg} of {group} failed:\n{}\n{}", r.stdout, r.log);
    }
    r
}

/// Quiets the source, runs every shard of a new run, and compares every table.
async fn assert_all_equal_after_a_quiet_run(l: &Landing, gate: &tokio::sync::Mutex<()>, group: &str, why: &str) {
    let _paused = gate.lock().await;
    for i in 0..SHARDS {
        shard(l, group, i, None).await;
    }
    for (t, _) in TABLES {
        let source = source_rows(&mut l.db.connect().await, t, COLS).await;
        let target = target_rows(l, t).await.unwrap_or_else(|| panic!("{why}: {t} was never loaded"));
        assert_same(&source, &target, COLS);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_tables_commit_once_from_every_shard_and_survive_kills() {
    let mut ddl = String::new();
    let mut entries = String::new();
    for (t, mode) in TABLES {
        ddl.push_str(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
             INSERT INTO {t} SELECT g, 'v' || g, timestamptz '2024-01-01Z' + g * interval '1 second' FROM generate_series(1, 600) g;"
        ));
        entries.push_str(&format!(
            "\n[[tables]]\nsource = \"public.{t}\"\nmode = \"{mode}\"\nparallel_chunks = {CHUNKS}\nsplit_across_shards = true\n"
        ));
        if *mode != "full_refresh" {
            entries.push_str("cursor = \"updated_at\"\nlookback = 5\n");
        }
    }
    let l = Landing::new(&ddl, &[], &format!("\n[run]\ntable_concurrency = 1\n{entries}")).await;
    let runs = AtomicU32::new(0);
    let group = || format!("job{}", runs.fetch_add(1, Ordering::SeqCst));

    // Without a group, a split table cannot be coordinated: refused with how to give one.
    let r = l.command(&["run", "--shard", "0/3"], &[]).await;
    assert_eq!(r.code, Some(2), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--shard-group"), "{}", r.stderr);

    // A run's shards before the last commit nothing; the last commits every table.
    let g = group();
    for i in 0..SHARDS - 1 {
        shard(&l, &g, i, None).await;
        assert!(targets(&l).await.iter().all(Option::is_none), "a table was committed before its last part");
    }
    let last = shard(&l, &g, SHARDS - 1, None).await;
    assert!(last.log.is_empty() || !last.log.contains("ERROR"), "{}", last.log);
    for (t, _) in TABLES {
        let source = source_rows(&mut l.db.connect().await, t, COLS).await;
        assert_same(&source, &target_rows(&l, t).await.expect("committed"), COLS);
    }

    let gate = Arc::new(tokio::sync::Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = tokio::spawn(common::mutate(l.db.url.clone(), TABLES, true, gate.clone(), stop.clone()));
    // The shard that would finish last dies on its way to the commit.
    for point in
        ["after-create-staging", "before-staging-commit", "after-part-done", "before-transaction", "after-transaction"]
    {
        let g = group();
        let victim = SHARDS - 1;
        for i in 0..victim {
            shard(&l, &g, i, None).await;
        }
        let before = targets(&l).await;
        let killed = shard(&l, &g, victim, Some(point)).await;
        assert!(killed.killed, "{point}: shard {victim} never reached it:\n{}", killed.log);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if point != "after-transaction" {
            assert_eq!(targets(&l).await, before, "{point}: a table changed before its commit");
        }
        // Kubernetes retries the index, in the same Job.
        shard(&l, &g, victim, None).await;
        assert_all_equal_after_a_quiet_run(&l, &gate, &group(), point).await;
    }
    // A shard that dies after its part is done, before the others finish: the last of them
    // commits its part with theirs. One dying before its part is done: nobody commits until
    // its rerun, which is then the last.
    for point in ["after-part-done", "before-staging-commit"] {
        let g = group();
        let before = targets(&l).await;
        let killed = shard(&l, &g, 0, Some(point)).await;
        assert!(killed.killed, "{point}: shard 0 never reached it:\n{}", killed.log);
        for i in 1..SHARDS {
            shard(&l, &g, i, None).await;
        }
        let after = targets(&l).await;
        if point == "before-staging-commit" {
            assert_eq!(after, before, "{point}: committed without the dead shard's chunks");
            shard(&l, &g, 0, None).await;
        }
        assert_all_equal_after_a_quiet_run(&l, &gate, &group(), point).await;
    }
    stop.store(true, Ordering::SeqCst);
    mutator.await.unwrap();
}

/// MySQL reads its share of a split table the same way: each shard its chunks, up to the
/// plan's bound, in every mode; the last shard commits. After the source changes (new keys
/// beyond both ends of the planned range, updates), the next run's windows lose and double
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_tables_split_across_shards_equal_the_source() {
    let my = common::MyDb::new().await;
    let mut entries = String::new();
    for (t, mode) in TABLES {
        my.exec(&format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v VARCHAR(40), updated_at DATETIME(6) NOT NULL);
             INSERT INTO {t} WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 600)
             SELECT n, CONCAT('v', n), TIMESTAMP('2024-01-01') + INTERVAL n SECOND FROM g;"
        ))
        .await;
        entries.push_str(&format!(
            "\n[[tables]]\nsource = \"{t}\"\nmode = \"{mode}\"\nparallel_chunks = {CHUNKS}\nsplit_across_shards = true\n"
        ));
        if *mode != "full_refresh" {
            entries.push_str("cursor = \"updated_at\"\nlookback = 5\n");
        }
    }
    let bq = common::bq::Bq::new();
    let dataset = bq.create_dataset().await;
    let chain = common::chain::Chain::start(common::chain::good_project()).await;
    let config = common::write_config(chain.dir.path(), &chain, &dataset, &[], &entries);
    let text = std::fs::read_to_string(&config).unwrap().replace("engine = \"postgres\"", "engine = \"mysql\"");
    std::fs::write(&config, text).unwrap();
    let rows = |table: &'static str| {
        let url = my.url.clone();
        async move {
            let mut c = <sqlx::MySqlConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let sql = format!("SELECT id, v, CAST(updated_at AS CHAR) FROM {table} ORDER BY id");
            let all: Vec<(i64, String, String)> = sqlx::query_as(&sql).fetch_all(&mut c).await.unwrap();
            all.into_iter().map(|(id, v, at)| format!("{id}|{v}|{at}")).collect::<Vec<_>>()
        }
    };
    let landed = |table: &'static str| {
        let (bq, dataset) = (&bq, &dataset);
        async move {
            let sql = format!(
                "SELECT CAST(id AS STRING), v, FORMAT_DATETIME('%Y-%m-%d %H:%M:%E6S', updated_at) FROM {dataset}.{table} ORDER BY id"
            );
            bq.query(&sql)
                .await
                .iter()
                .map(|r| {
                    let s = |i: usize| r[i].as_str().unwrap_or("NULL").to_owned();
                    format!("{}|{}|{}", s(0), s(1), s(2))
                })
                .collect::<Vec<_>>()
        }
    };
    for (round, change) in [
        (0, ""),
        (
            1,
            "INSERT INTO sf VALUES (5000, 'new', NOW(6)), (-5, 'low', NOW(6));
             INSERT INTO sa VALUES (5000, 'new', NOW(6)), (-5, 'low', NOW(6));
             INSERT INTO sm VALUES (5000, 'new', NOW(6)), (-5, 'low', NOW(6));
             UPDATE sf SET v = 'upd', updated_at = NOW(6) WHERE id % 7 = 0;
             UPDATE sm SET v = 'upd', updated_at = NOW(6) WHERE id % 7 = 0;",
        ),
    ] {
        if !change.is_empty() {
            my.exec(change).await;
        }
        let group = format!("my{round}");
        for i in 0..SHARDS {
            let arg = format!("{i}/{SHARDS}");
            let r = common::run_killed_at(&config, &my.url, &["--shard", &arg, "--shard-group", &group], None).await;
            assert_eq!(r.code, Some(0), "shard {arg}:\n{}\n{}", r.stdout, r.log);
            if i + 1 < SHARDS {
                assert!(bq.table(&dataset, "sf").await.is_none() || round > 0, "committed before the last part");
            }
        }
        for (t, _) in TABLES {
            assert_eq!(landed(t).await, rows(t).await, "round {round}: {t} differs from the source");
        }
    }
}
