//! How a run behaves as a whole: tables in parallel where one failing does not stop the
//! others, and SIGTERM ending the run within a bounded time with nothing half-committed.

use crate::common;

use std::time::{Duration, Instant};

use common::Landing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_table_does_not_stop_the_others() {
    let l = Landing::new(
        "CREATE TABLE good (id int PRIMARY KEY, v text); INSERT INTO good SELECT g, 'v' FROM generate_series(1, 100) g;
         CREATE TABLE bad (id int PRIMARY KEY, l pg_lsn); INSERT INTO bad VALUES (1, '0/0');",
        &["bad", "good"],
        "\n[run]\ntable_concurrency = 2\n",
    )
    .await;
    let (bq, dataset) = (&l.bq, &l.dataset);
    let run = l.run().await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ok      good ->") && run.stdout.contains("100 rows"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAILED  bad ->") && run.stdout.contains("type pg_lsn is not supported"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 of 2 tables loaded, 1 failed"), "{}", run.stdout);
    let count = bq.query(&format!("SELECT COUNT(*) FROM {dataset}.good")).await;
    assert_eq!(count[0][0].as_str(), Some("100"));
    assert!(bq.table(dataset, "bad").await.is_none(), "the failed table left nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_run_quickly_and_commits_nothing() {
    // A query source that takes about 40 s to produce its rows.
    let l = Landing::new(
        "CREATE TABLE slow_src (id int PRIMARY KEY);",
        &[],
        "\n[run]\nbatch_rows = 10\n\n[[tables]]\nquery = \"SELECT g AS id, pg_sleep(0.01)::text AS s FROM generate_series(1, 4000) g\"\ntarget = \"slow\"\n",
    )
    .await;
    let child = l.spawn_run("text");
    // Wait until rows are flowing (the staging table exists), then ask it to stop.
    l.wait_for_staging("slow").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().unwrap() as i32;
    common::sigterm(pid as u32);
    let signalled = Instant::now();
    let out =
        tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await.expect("exits in time").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(signalled.elapsed() < Duration::from_secs(15), "took {:?}", signalled.elapsed());
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("stopped by a signal"), "{stdout}");
    let tables = l.bq.tables(&l.dataset).await;
    assert!(!tables.iter().any(|t| t == "slow"), "no target was created: {tables:?}");
    assert!(!tables.iter().any(|t| t.contains("staging")), "the staging table was dropped: {tables:?}");
}

/// A config naming a column the table does not have fails before anything is staged or
/// created, and leaves the dataset as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_the_config_are_checked_before_any_work() {
    for (extra, says) in [
        ("mode = \"merge\"\ncursor = \"ts\"\nsoft_delete_column = \"gone\"\n", "soft_delete_column \"gone\""),
        ("cluster_by = [\"nope\"]\n", "cluster_by names column \"nope\""),
        ("partition = { column = \"missing\", granularity = \"DAY\" }\n", "partition names column \"missing\""),
    ] {
        let l = Landing::new(
            "CREATE TABLE t (id int PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now()); INSERT INTO t (id) VALUES (1);",
            &[],
            &format!("\n[[tables]]\nsource = \"t\"\n{extra}"),
        )
        .await;
        let run = l.run().await;
        assert_eq!(run.code, Some(1), "{}", run.stdout);
        assert!(run.stdout.contains(says), "{says}: {}", run.stdout);
        assert!(
            l.bq.tables(&l.dataset).await.iter().all(|t| t.starts_with("_aurora2bq")),
            "nothing made for the table"
        );
    }
}
