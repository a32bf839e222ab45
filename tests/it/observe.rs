//! Watching runs without reading logs by hand: JSON log lines that carry the run id and the
//! version, a heartbeat per running table, one summary event (with CloudWatch embedded
//! metrics), the Kubernetes termination message, the run history in `_aurora2bq_runs`,
//! `state show` / `state reset`, and progress bars only on a terminal.

use crate::common;

use std::time::Duration;

use common::Landing;
use serde_json::Value;

const GOOD_AND_BAD: &str =
    "CREATE TABLE good (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT '2024-01-01Z');
     INSERT INTO good (id, v) SELECT g, 'v' FROM generate_series(1, 100) g;
     CREATE TABLE bad (id int PRIMARY KEY, l pg_lsn); INSERT INTO bad VALUES (1, '0/0');
     CREATE TABLE slow_src (id int PRIMARY KEY);";

const TABLES: &str = r#"
[run]
table_concurrency = 3
heartbeat_seconds = 1

[[tables]]
source = "good"
mode = "merge"
cursor = "updated_at"

[[tables]]
source = "bad"
"#;

/// Every stderr line as JSON; each must parse.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_summary_termination_message_history_and_state() {
    let s = Landing::new(GOOD_AND_BAD, &[], TABLES).await;
    let term = s.chain.dir.path().join("termination-log");
    std::fs::write(&term, "").unwrap();
    let run = s
        .command(&["run"], &[("AURORA2BQ_LOG_FORMAT", "json"), ("AURORA2BQ_TERMINATION_LOG", term.to_str().unwrap())])
        .await;
    assert_eq!(run.code, Some(1), "one table fails: {}\n{}", run.stdout, run.stderr);

    // Every line carries the run id and the version; one of them is the summary.
    let lines = json_lines(&run.stderr);
    let run_id = lines[0]["run_id"].as_str().expect("a run id").to_owned();
    assert_eq!(run_id.len(), 32, "{run_id}");
    for l in &lines {
        assert_eq!(l["run_id"], run_id.as_str(), "{l}");
        assert_eq!(l["version"], env!("CARGO_PKG_VERSION"), "{l}");
    }
    let summaries: Vec<&Value> = lines.iter().filter(|l| l["event"] == "run_summary").collect();
    assert_eq!(summaries.len(), 1, "one summary event");
    let summary = summaries[0];
    let table = |name: &str| summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == name).unwrap();
    assert_eq!(table("good")["status"], "ok");
    assert_eq!(table("good")["rows"], 100);
    assert_eq!(table("good")["mode"], "merge");
    assert_eq!(table("bad")["status"], "failed");
    assert!(table("bad")["error"].as_str().unwrap().contains("pg_lsn"), "{summary}");
    assert_eq!((summary["tables_ok"].as_u64(), summary["tables_failed"].as_u64()), (Some(1), Some(1)));
    let emf = &summary["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(emf["Namespace"], "aurora2bq");
    for m in emf["Metrics"].as_array().unwrap() {
        let name = m["Name"].as_str().unwrap();
        assert!(summary[name].is_number(), "EMF metric {name} has a value: {summary}");
    }
    assert!(summary["dataset"].is_string(), "the EMF dimension has a value");

    // Every query job of the run carries its run id; each table's load its table.
    let labels = s.chain.emulator.query_labels();
    assert!(!labels.is_empty());
    assert!(labels.iter().all(|l| l["aurora2bq_run"] == run_id.as_str()), "{labels:?}");
    assert!(labels.iter().any(|l| l["aurora2bq_table"] == "good"), "the load's transaction: {labels:?}");

    // The termination message says what failed.
    let message = std::fs::read_to_string(&term).unwrap();
    assert!(message.contains("1 of 2 tables loaded") && message.contains("failed bad"), "{message}");

    // The run history: one row per table of this run.
    let history =
        s.bq.query(&format!(
            "SELECT table_name, status, rows_loaded, error, version FROM {}._aurora2bq_runs WHERE run_id = '{run_id}' \
             ORDER BY table_name",
            s.dataset
        ))
        .await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!((history[0][0].as_str(), history[0][1].as_str()), (Some("bad"), Some("failed")));
    assert!(history[0][3].as_str().unwrap().contains("pg_lsn"));
    assert_eq!(
        (history[1][0].as_str(), history[1][1].as_str(), history[1][2].as_str()),
        (Some("good"), Some("ok"), Some("100"))
    );
    assert_eq!(history[1][4].as_str(), Some(env!("CARGO_PKG_VERSION")));

    // state show, as a table and as JSON.
    let show = s.command(&["state", "show"], &[]).await;
    show.assert_ok();
    let header = show.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("TABLE") && header.contains("WATERMARK") && header.contains("LAST RUN"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.lines().any(|l| l.starts_with("good ") && l.contains("merge") && l.contains("100")),
        "{}",
        show.stdout
    );
    let json = s.command(&["state", "show", "--json"], &[]).await;
    json.assert_ok();
    let state: Value = serde_json::from_str(&json.stdout).expect("state show --json is JSON");
    let good = state.as_array().unwrap().iter().find(|t| t["table"] == "good").expect("good is listed");
    assert_eq!(good["mode"], "merge");
    assert_eq!(good["rows"], 100);
    assert_eq!(good["watermark"], "2024-01-01T00:00:00Z");
    assert_eq!(good["run_id"], run_id.as_str());
    assert_eq!(good["last_run"]["status"], "ok");

    // state reset: refuses without --yes off a terminal, then forgets in one transaction.
    let refused = s.command(&["state", "reset", "good"], &[]).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let reset = s.command(&["state", "reset", "good", "--yes"], &[]).await;
    reset.assert_ok();
    assert!(reset.stdout.contains("forgot 1 stored watermark(s) of good"), "{}", reset.stdout);
    let after: Value = serde_json::from_str(&s.command(&["state", "show", "--json"], &[]).await.stdout).unwrap();
    assert!(after.as_array().unwrap().iter().all(|t| t["table"] != "good"), "{after}");
    // The next run reads the table from the start, and the merge keeps it exact.
    s.command(&["run", "--tables", "good"], &[]).await.assert_ok();
    let count = s.bq.query(&format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM {}.good", s.dataset)).await;
    assert_eq!((count[0][0].as_str(), count[0][1].as_str()), (Some("100"), Some("100")));
}

/// A query source slow enough to be watched (about 40 s unless stopped).
const SLOW: &str = "\n[[tables]]\nquery = \"SELECT g AS id, pg_sleep(0.01)::text || repeat('x', 200) AS s FROM generate_series(1, 4000) g\"\ntarget = \"slow\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_while_running_and_a_stopped_table_in_the_history() {
    let s = Landing::new(GOOD_AND_BAD, &[], &format!("\n[run]\nbatch_rows = 10\nheartbeat_seconds = 1\n{SLOW}")).await;
    let child = s.spawn_run("json");
    // Long enough for heartbeats (every second) once rows flow.
    s.wait_for_staging("slow").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    common::sigterm(child.id().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let lines = json_lines(&stderr);
    let beats: Vec<&Value> = lines.iter().filter(|l| l["event"] == "heartbeat" && l["table"] == "slow").collect();
    assert!(beats.len() >= 2, "a heartbeat a second: {stderr}");
    let last = beats.last().unwrap();
    assert!(last["rows"].as_u64().unwrap() > 0 && last["rows_per_second"].as_f64().unwrap() > 0.0, "{last}");
    let run_id = lines[0]["run_id"].as_str().unwrap();

    // The interrupted table is in the history as stopped, with why.
    let history =
        s.bq.query(&format!(
            "SELECT status, error FROM {}._aurora2bq_runs WHERE run_id = '{run_id}' AND table_name = 'slow'",
            s.dataset
        ))
        .await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0][0].as_str(), Some("stopped"));
    assert!(history[0][1].as_str().unwrap().contains("signal"), "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_bars_on_a_terminal_only() {
    let s = Landing::new(GOOD_AND_BAD, &[], &format!("\n[run]\nbatch_rows = 10\n{SLOW}")).await;
    // The whole slow table would take 40 s; the bar shows within the first seconds.
    let config = s.config.to_str().unwrap().to_owned();
    let run = |tty: bool| {
        let inner = format!("timeout -s INT 4 {} run --config {config} --tables slow", env!("CARGO_BIN_EXE_aurora2bq"));
        let mut cmd = if tty {
            // `script` gives the command a pseudo-terminal and copies what it draws.
            let mut c = std::process::Command::new("script");
            c.args(["-q", "-e", "-c", &inner, "/dev/null"]);
            c
        } else {
            let mut c = std::process::Command::new("sh");
            c.args(["-c", &inner]);
            c
        };
        cmd.env("TEST_SOURCE_URL", &s.db.url).env_remove("AURORA2BQ_LOG_FORMAT");
        let out = cmd.output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    // A bar: the table's name, its row count and rate ("{human_pos} rows  {msg}  {per_sec}").
    let is_bar = |l: &str| l.contains("slow") && l.contains(" rows  ") && l.contains("/s");
    let on_tty = tokio::task::block_in_place(|| run(true));
    assert!(on_tty.split(['\r', '\n']).any(is_bar), "a progress bar on a terminal: {on_tty}");
    let piped = tokio::task::block_in_place(|| run(false));
    assert!(!piped.split(['\r', '\n']).any(is_bar), "no bar when stderr is not a terminal: {piped}");
    assert!(!piped.contains('\u{1b}'), "no terminal control sequences either: {piped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_a_real_pushgateway() {
    let gateway = common::env_var("AURORA2BQ_TEST_PUSHGATEWAY");
    let job = common::unique("job");
    let s = Landing::new(
        GOOD_AND_BAD,
        &[],
        &format!("\n[metrics]\npushgateway_url = \"{gateway}\"\njob = \"{job}\"\n{TABLES}"),
    )
    .await;
    let run = s.command(&["run"], &[]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let text = reqwest::get(format!("{gateway}/metrics")).await.unwrap().text().await.unwrap();
    let sample = |name: &str, table: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains(&format!("job=\"{job}\""))
                    && l.contains(&format!("dataset=\"{}\"", s.dataset))
                    && l.contains(&format!("table=\"{table}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} for {table} in the gateway:\n{text}"))
    };
    assert_eq!(sample("aurora2bq_table_rows", "good"), 100.0);
    assert_eq!(sample("aurora2bq_table_success", "good"), 1.0);
    assert_eq!(sample("aurora2bq_table_success", "bad"), 0.0);
    assert!(
        text.lines().any(|l| l.starts_with("aurora2bq_run_tables_failed{") && l.contains(&job) && l.ends_with(" 1")),
        "{text}"
    );
}
