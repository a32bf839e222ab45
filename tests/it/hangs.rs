//! Endpoints that accept a connection and never answer (a paused STS, BigQuery REST or
//! Storage Write server, or a BigQuery that hangs in the final transaction): SIGTERM ends
//! the run within 10 s in every phase with nothing committed, and without a signal the run
//! ends by itself within the configured deadlines, naming what did not answer.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::bq::Bq;
use common::chain::{Chain, good_project};

/// Accepts connections and holds them open without a byte in answer.
async fn tarpit() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            held.lock().unwrap().push(sock);
        }
    });
    format!("http://{addr}")
}

/// A REST proxy to bqemulator that never answers the final transaction.
async fn hanging_commit(rest: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (http, rest) = (http.clone(), rest.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
            if String::from_utf8_lossy(&body).contains("BEGIN TRANSACTION") {
                std::future::pending::<()>().await;
            }
            let url = format!("{rest}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
            let mut r = http.request(parts.method, url).body(body.to_vec());
            if let Some(ct) = parts.headers.get("content-type") {
                r = r.header("content-type", ct);
            }
            let resp = r.send().await.unwrap();
            let status = resp.status();
            (status, resp.bytes().await.unwrap().to_vec())
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

struct Setup {
    db: common::PgDb,
    dataset: String,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let db = common::PgDb::new().await;
        db.exec(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' FROM generate_series(1, 1000) g;",
        )
        .await;
        let dataset = Bq::new().create_dataset().await;
        Setup { db, dataset, dir: tempfile::tempdir().unwrap() }
    }

    /// A config with a static access token (bqemulator takes any) and the given `[google]` lines.
    fn config(&self, google: &str) -> String {
        let token = self.dir.path().join("access-token");
        std::fs::write(&token, "test-token").unwrap();
        let text = format!(
            "[source]\nengine = \"postgres\"\nurl_env = \"TEST_SOURCE_URL\"\n\n[destination]\nproject = \"test-project\"\n\
             dataset = \"{}\"\n\n[google]\nallow_insecure_endpoints = true\n{google}\n\n[[tables]]\nsource = \"t\"\n",
            self.dataset
        );
        let text = if google.contains("credentials =") {
            text
        } else {
            text.replace("[google]\n", &format!("[google]\naccess_token_file = \"{}\"\n", token.display()))
        };
        let path = self.dir.path().join("aurora2bq.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn spawn(&self, config: &str) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora2bq"))
            .args(["run", "--config", config])
            .env("TEST_SOURCE_URL", &self.db.url)
            .env("AURORA2BQ_LOG_FORMAT", "text")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }
}

fn rest() -> String {
    common::env_var("AURORA2BQ_TEST_BQ_REST")
}
fn grpc() -> String {
    common::env_var("AURORA2BQ_TEST_BQ_GRPC")
}

/// SIGTERM after `after`; the run must end within 10 s with the stopped exit code.
async fn sigterm_ends_it(s: &Setup, config: &str, after: Duration, phase: &str) {
    let child = s.spawn(config);
    tokio::time::sleep(after).await;
    common::sigterm(child.id().unwrap());
    let signalled = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{phase}: still running 30 s after SIGTERM"))
        .unwrap();
    let all = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{phase}: took {:?} after SIGTERM\n{all}",
        signalled.elapsed()
    );
    assert_eq!(out.status.code(), Some(3), "{phase}:\n{all}");
    // Nothing was committed. (Stopped inside the final transaction, a first load's new
    // target may stay behind empty: whether BigQuery commits a transaction already sent
    // cannot be known, so it is not dropped.)
    if Bq::new().table(&s.dataset, "t").await.is_some() {
        let n = Bq::new().query(&format!("SELECT COUNT(*) FROM {}.t", s.dataset)).await;
        assert_eq!(n[0][0].as_str(), Some("0"), "{phase}: rows were committed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_in_every_phase() {
    // Setup: the STS exchange hangs.
    let s = Setup::new().await;
    let chain = Chain::start(good_project()).await;
    let sts = tarpit().await;
    chain.write_cred_config(|v| v["token_url"] = format!("{sts}/v1/token").into());
    let config = s.config(&format!(
        "credentials = \"{}\"\nbigquery_url = \"{}\"\nstorage_write_url = \"{}\"",
        chain.cred_path.display(),
        rest(),
        grpc()
    ));
    sigterm_ends_it(&s, &config, Duration::from_secs(1), "hung STS").await;

    // Setup: BigQuery REST hangs.
    let config = s.config(&format!("bigquery_url = \"{}\"\nstorage_write_url = \"{}\"", tarpit().await, grpc()));
    sigterm_ends_it(&s, &config, Duration::from_secs(1), "hung BigQuery REST").await;

    // Load: the Storage Write API hangs.
    let config = s.config(&format!("bigquery_url = \"{}\"\nstorage_write_url = \"{}\"", rest(), tarpit().await));
    sigterm_ends_it(&s, &config, Duration::from_secs(2), "hung Storage Write").await;

    // Commit: BigQuery never answers the final transaction.
    let config =
        s.config(&format!("bigquery_url = \"{}\"\nstorage_write_url = \"{}\"", hanging_commit(rest()).await, grpc()));
    sigterm_ends_it(&s, &config, Duration::from_secs(4), "hung transaction").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signal_a_hung_endpoint_ends_the_run_within_its_deadlines() {
    let s = Setup::new().await;
    let short =
        "request_timeout_seconds = 2\n\n[google.retry]\nmax_attempts = 2\ninitial_delay_ms = 100\ndeadline_seconds = 3";
    for (what, google, says) in [
        (
            "BigQuery REST",
            format!("bigquery_url = \"{}\"\nstorage_write_url = \"{}\"\n{short}", tarpit().await, grpc()),
            "BigQuery",
        ),
        (
            "Storage Write",
            format!("bigquery_url = \"{}\"\nstorage_write_url = \"{}\"\n{short}", rest(), tarpit().await),
            "request_timeout_seconds",
        ),
    ] {
        let config = s.config(&google);
        let started = Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(60), s.spawn(&config).wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{what}: still running after 60 s with 2 s timeouts"))
            .unwrap();
        let all = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_ne!(out.status.code(), Some(0), "{what}:\n{all}");
        assert!(all.contains(says), "{what}: the error does not say what hung:\n{all}");
        assert!(started.elapsed() < Duration::from_secs(30), "{what}: took {:?}", started.elapsed());
    }
}

/// A paused database (accepts, never answers) ends the run within connect_timeout_seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_source_ends_the_run_within_its_connect_timeout() {
    let s = Setup::new().await;
    let pit = tarpit().await.replace("http://", "");
    let config = s.config(&format!("bigquery_url = \"{}\"\nstorage_write_url = \"{}\"", rest(), grpc()));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("url_env = \"TEST_SOURCE_URL\"", "url_env = \"TEST_SOURCE_URL\"\nconnect_timeout_seconds = 2");
    std::fs::write(&config, text).unwrap();
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora2bq"))
            .args(["run", "--config", &config])
            .env("TEST_SOURCE_URL", format!("postgres://postgres@{pit}/db"))
            .env("AURORA2BQ_LOG_FORMAT", "text")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the run ends by itself")
    .unwrap();
    let all = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // An unreachable source may come back (a failover): the exit code says a retry may help.
    assert_eq!(out.status.code(), Some(aurora2bq::cli::exit::TRANSIENT as i32), "{all}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}: {all}", started.elapsed());
    assert!(all.contains("connect"), "says it could not connect: {all}");
}
