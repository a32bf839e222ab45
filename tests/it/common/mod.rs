//! Fixtures for integration tests: a fresh PostgreSQL database and BigQuery dataset per
//! test (random names, so tests run in parallel), the local Google emulator with gates in
//! front of bqemulator, and a way to run the real `aurora2bq` binary against them.
//!
//! The services come from `scripts/test`, which exports where they are.

pub mod arrow_text;
pub mod bq;
pub mod chain;
pub mod compare;
pub mod iam;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

/// A retry policy with the production shape and test-sized waits: bounded tests of retries
/// finish in milliseconds.
pub const FAST_RETRY: aurora2bq::retry::Policy = aurora2bq::retry::Policy {
    initial_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(50),
    max_attempts: 4,
    deadline: Duration::from_secs(30),
};

/// A token source that always hands out the same token, for servers that only check that
/// one is sent.
pub struct FixedToken;

#[async_trait::async_trait]
impl aurora2bq::auth::TokenSource for FixedToken {
    async fn token(&self) -> Result<aurora2bq::auth::AccessToken, aurora2bq::auth::AuthError> {
        Ok(aurora2bq::auth::AccessToken {
            token: aurora2bq::secret::Secret::new("test-token"),
            expires_at: std::time::SystemTime::now() + Duration::from_secs(3600),
        })
    }
}

pub fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through scripts/test, which starts the services they need")
    })
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A database of its own, dropped when the test ends.
pub struct PgDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl PgDb {
    pub async fn new() -> PgDb {
        let admin_url = env_var("AURORA2BQ_TEST_PG_URL");
        let name = unique("a2b_test");
        let mut admin = PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
        let mut url = url::Url::parse(&admin_url).expect("PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        PgDb { name, url: url.to_string(), admin_url }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to the test database")
    }

    /// Runs a multi-statement SQL script.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.connect().await;
        (&mut c).execute(sql).await.expect("SQL script");
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ = c.execute(&*format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}

/// A database of its own on either engine.
pub enum AnyDb {
    Pg(PgDb),
    My(MyDb),
}

impl AnyDb {
    pub fn url(&self) -> &str {
        match self {
            AnyDb::Pg(d) => &d.url,
            AnyDb::My(d) => &d.url,
        }
    }

    pub async fn exec(&self, sql: &str) {
        match self {
            AnyDb::Pg(d) => d.exec(sql).await,
            AnyDb::My(d) => d.exec(sql).await,
        }
    }
}

/// A MySQL database of its own, dropped when the test ends.
pub struct MyDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl MyDb {
    pub async fn new() -> MyDb {
        use sqlx::Connection;
        let admin_url = env_var("AURORA2BQ_TEST_MYSQL_URL");
        let name = unique("a2b_test");
        let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.expect("connect to MySQL");
        (&mut admin)
            .execute(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4").as_str())
            .await
            .expect("create database");
        let mut url = url::Url::parse(&admin_url).expect("MySQL URL");
        url.set_path(&format!("/{name}"));
        MyDb { name, url: url.to_string(), admin_url }
    }

    /// A new user of this database holding INSERT, but not SELECT, on `table`: its name and
    /// a URL that logs in as it. The caller drops it (`DROP USER 'NAME'@'%'`).
    pub async fn user_without_select(&self, table: &str) -> (String, String) {
        let user = unique("u");
        self.exec(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT INSERT ON {}.{table} TO '{user}'@'%';",
            self.name
        ))
        .await;
        let url = self.url.replacen("root@", &format!("{user}:pw@"), 1);
        (user, url)
    }

    /// Runs a multi-statement script in UTC with a permissive SQL mode (zero dates allowed).
    pub async fn exec(&self, sql: &str) {
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect(&self.url).await.expect("connect to the test database");
        let script = format!("SET time_zone = '+00:00'; SET SESSION sql_mode = ''; {sql}");
        (&mut c).execute(script.as_str()).await.expect("SQL script");
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                    let _ = (&mut c).execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await;
                }
            });
        })
        .join();
    }
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "aurora2bq failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `aurora2bq ARGS` with the given environment, killed if it takes over 10 minutes.
pub async fn aurora2bq(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora2bq"));
    cmd.args(args).kill_on_drop(true).env("AURORA2BQ_LOG_FORMAT", "text").env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .expect("aurora2bq finished within 10 minutes")
        .expect("aurora2bq started");
    out.into()
}

/// What a test of `aurora2bq run` from PostgreSQL stands on: a database of its own with
/// `ddl` run in it, a dataset, the emulated credential chain, and a config naming them.
pub struct Landing {
    pub db: PgDb,
    pub bq: bq::Bq,
    pub dataset: String,
    pub chain: chain::Chain,
    pub config: PathBuf,
}

impl Landing {
    /// `tables` are source names listed as plain tables; `extra` is appended to the config.
    pub async fn new(ddl: &str, tables: &[&str], extra: &str) -> Landing {
        let db = PgDb::new().await;
        db.exec(ddl).await;
        let bq = bq::Bq::new();
        let dataset = bq.create_dataset().await;
        let chain = chain::Chain::start(chain::good_project()).await;
        let config = write_config(chain.dir.path(), &chain, &dataset, tables, extra);
        Landing { db, bq, dataset, chain, config }
    }

    /// `aurora2bq run` on the config, against the database.
    pub async fn run(&self) -> Run {
        self.run_with(&[]).await
    }

    /// The same, with more environment variables.
    pub async fn run_with(&self, env: &[(&str, &str)]) -> Run {
        self.command(&["run"], env).await
    }

    /// `aurora2bq run` started in the background, logging in `log_format`, for a test that
    /// watches it and signals it.
    pub fn spawn_run(&self, log_format: &str) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora2bq"))
            .args(["run", "--config", self.config.to_str().expect("UTF-8 path")])
            .env("TEST_SOURCE_URL", &self.db.url)
            .env("AURORA2BQ_LOG_FORMAT", log_format)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("aurora2bq started")
    }

    /// Waits (up to 30 s) until rows of `target` are flowing: its staging table exists.
    pub async fn wait_for_staging(&self, target: &str) {
        let started = std::time::Instant::now();
        let prefix = format!("{target}__aurora2bq_staging_");
        while !self.bq.tables(&self.dataset).await.iter().any(|t| t.starts_with(&prefix)) {
            assert!(started.elapsed() < Duration::from_secs(30), "the run never started loading {target}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `aurora2bq COMMAND… --config CONFIG` against the database, with more environment.
    pub async fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec![("TEST_SOURCE_URL", self.db.url.as_str())];
        all.extend_from_slice(env);
        let mut argv = args.to_vec();
        argv.extend(["--config", self.config.to_str().expect("UTF-8 path")]);
        aurora2bq(&argv, &all).await
    }
}

/// Writes an aurora2bq config for `tables` (source names) into `dir`.
pub fn write_config(dir: &Path, chain: &chain::Chain, dataset: &str, tables: &[&str], extra: &str) -> PathBuf {
    let mut text = format!(
        r#"[source]
engine = "postgres"
url_env = "TEST_SOURCE_URL"

[destination]
project = "test-project"
dataset = "{dataset}"

[google]
credentials = "{cred}"
bigquery_url = "{rest}"
storage_write_url = "{grpc}"
allow_insecure_endpoints = true
request_timeout_seconds = 30
"#,
        cred = chain.cred_path.display(),
        rest = chain.rest_gate,
        grpc = chain.grpc_gate,
    );
    text.push_str(extra);
    for t in tables {
        text.push_str(&format!("\n[[tables]]\nsource = \"{t}\"\n"));
    }
    let path = dir.join("aurora2bq.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Sends SIGTERM to a child of this test.
#[allow(unsafe_code, reason = "FFI to kill(2), with no pointers")]
pub fn sigterm(pid: u32) {
    unsafe extern "C" {
        #[link_name = "kill"]
        fn libc_kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: a plain system call on a process id of our own child.
    assert_eq!(unsafe { libc_kill(pid as i32, 15) }, 0, "SIGTERM to {pid}");
}

/// Sets (or with `None` removes) an environment variable of this test's process. nextest
/// runs every test in a process of its own, so no other thread reads the environment.
#[allow(unsafe_code, reason = "std::env::set_var is unsafe since edition 2024")]
pub fn set_env(name: &str, value: Option<&std::ffi::OsStr>) {
    // SAFETY: one test per process (nextest); nothing else reads the environment meanwhile.
    unsafe {
        match value {
            Some(v) => std::env::set_var(name, v),
            None => std::env::remove_var(name),
        }
    }
}

/// How a run that may have been killed ended.
pub struct KilledRun {
    /// SIGKILL was sent at the failpoint (false: the run ended before reaching it).
    pub killed: bool,
    pub code: Option<i32>,
    pub stdout: String,
    /// What it logged (warnings and up).
    pub log: String,
}

/// `aurora2bq run --config CONFIG EXTRA…` against `url`; with a failpoint, the run pauses
/// there and is sent SIGKILL, as a node failure or an OOM kill would end it.
pub async fn run_killed_at(config: &Path, url: &str, extra: &[&str], point: Option<&str>) -> KilledRun {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aurora2bq"));
    cmd.args(["run", "--config", config.to_str().unwrap()])
        .args(extra)
        .env("TEST_SOURCE_URL", url)
        .env("AURORA2BQ_LOG_FORMAT", "text")
        .env("AURORA2BQ_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = point {
        cmd.env("AURORA2BQ_FAILPOINT", p).env("AURORA2BQ_FAILPOINT_ACTION", "pause");
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let collect = tokio::spawn(async move {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out).await;
        out
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut killed = false;
    let mut log = String::new();
    let reading = async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains("failpoint") && line.contains("reached") {
                child.start_kill().unwrap(); // SIGKILL
                killed = true;
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), reading).await.expect("the run ended or reached its point in time");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    let stdout = collect.await.unwrap_or_default();
    KilledRun { killed, code: status.code(), stdout, log }
}

/// Writes to `tables` (name, mode) in short transactions until `stop`: a new row in each,
/// with a negative key too when `low_keys` (below any key range planned earlier), and
/// updates to the full-refresh and merge tables (append tables only grow). `gate` pauses it.
pub async fn mutate(
    url: String,
    tables: &'static [(&'static str, &'static str)],
    low_keys: bool,
    gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut c = PgConnection::connect(&url).await.unwrap();
    let mut next = 100_000;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        {
            let _g = gate.lock().await;
            let mut sql = String::from("BEGIN;");
            for (t, mode) in tables {
                sql.push_str(&format!("INSERT INTO {t} VALUES ({next}, 'new', now());"));
                if low_keys {
                    sql.push_str(&format!("INSERT INTO {t} VALUES (-{next}, 'low', now());"));
                }
                if *mode != "append" {
                    sql.push_str(&format!(
                        "UPDATE {t} SET v = 'upd', updated_at = now() WHERE id IN (SELECT id FROM {t} ORDER BY random() LIMIT 3);"
                    ));
                }
            }
            sql.push_str("COMMIT;");
            (&mut c).execute(sql.as_str()).await.unwrap();
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}
