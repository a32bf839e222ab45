//! TLS to MySQL with certificate verification against a CA bundle file (as with the RDS
//! bundle). The shared MariaDB here has no TLS, so this test starts a private `mariadbd` with
//! a certificate signed by a throwaway CA: the bundle that holds that CA is accepted, the
//! public CAs are not, and a server without TLS is refused rather than used in clear.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aurora2bq::config::{Engine, TableConfig, ZeroDates};
use aurora2bq::source::{self, BatchLimits};
use common::arrow_text::{read, source_config};
use sqlx::{Connection, Executor};

const LIMITS: BatchLimits = BatchLimits { rows: 10, bytes: 1 << 20 };

#[tokio::test]
async fn the_server_certificate_is_verified_against_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_certificates(dir.path());
    let server = PrivateMariaDb::start(dir.path());
    let url = format!("mysql://root@localhost:{}/tls_test", server.port);

    let mut c = sqlx::MySqlConnection::connect(&format!("mysql://root@127.0.0.1:{}/mysql", server.port)).await.unwrap();
    (&mut c)
        .execute("CREATE DATABASE tls_test; CREATE TABLE tls_test.t (id int PRIMARY KEY, v text); INSERT INTO tls_test.t VALUES (1, 'über'), (2, NULL)")
        .await
        .unwrap();

    let mut cfg = source_config(Engine::Mysql, &url, dir.path(), ZeroDates::Error);
    cfg.ca_file = Some(ca);
    let r = read(&cfg, &TableConfig::simple(None, "t"), None, LIMITS).await.expect("read over verified TLS");
    assert_eq!(r.column("v"), vec![Some("über".to_string()), None]);
    let (_, accepts): (String, String) =
        sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'").fetch_one(&mut c).await.unwrap();
    assert!(accepts.parse::<u64>().unwrap() >= 1, "the server saw no TLS handshake");

    // The public CAs do not vouch for it: refused, with the reason.
    cfg.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let e = source::connect(&cfg, LIMITS).await.err().expect("an unknown issuer is refused");
    let chain = aurora2bq::describe::error_chain(&e);
    assert!(chain.contains("cannot connect to MySQL") && chain.contains("UnknownIssuer"), "{chain}");
    assert!(chain.contains("not signed by a CA in source.ca_file") && chain.contains("RDS bundle"), "{chain}");

    // The right CA, but the URL names the server by an address its certificate does not carry.
    let by_ip = url.replace("localhost", "127.0.0.1");
    let mut cfg = source_config(Engine::Mysql, &by_ip, dir.path(), ZeroDates::Error);
    cfg.ca_file = Some(dir.path().join("ca.pem"));
    let e = source::connect(&cfg, LIMITS).await.err().expect("a name mismatch is refused");
    let chain = aurora2bq::describe::error_chain(&e);
    assert!(chain.contains("not a name on the server's certificate"), "{chain}");

    // A CA file means TLS is required: the shared server, which has no TLS, is refused.
    let plain = common::env_var("AURORA2BQ_TEST_MYSQL_URL");
    let mut cfg = source_config(Engine::Mysql, &plain, dir.path(), ZeroDates::Error);
    cfg.ca_file = Some(dir.path().join("ca.pem"));
    let e = source::connect(&cfg, LIMITS).await.err().expect("no TLS where it is required");
    let chain = aurora2bq::describe::error_chain(&e);
    assert!(
        chain.contains("cannot connect to MySQL") && chain.contains("requires TLS but the server offers none"),
        "{chain}"
    );
}

/// A CA, and a server certificate for `localhost` signed by it; returns the CA file.
fn make_certificates(dir: &Path) -> std::path::PathBuf {
    let ext = dir.join("server.ext");
    std::fs::write(&ext, "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=aurora2bq test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    dir.join("ca.pem")
}

/// A throwaway `mariadbd` on a free port with TLS, killed on drop.
struct PrivateMariaDb {
    child: Child,
    port: u16,
}

impl PrivateMariaDb {
    fn start(dir: &Path) -> PrivateMariaDb {
        let data = dir.join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db is installed (scripts/test installs MariaDB)");
        assert!(out.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let file = |name: &str| dir.join(name).display().to_string();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", file("mariadbd.sock")))
            .arg(format!("--pid-file={}", file("mariadbd.pid")))
            .arg(format!("--log-error={}", file("mariadbd.err")))
            .arg(format!("--ssl-ca={}", file("ca.pem")))
            .arg(format!("--ssl-cert={}", file("server.pem")))
            .arg(format!("--ssl-key={}", file("server.key")))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-grant-tables", "--innodb-buffer-pool-size=16M"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd is installed");
        let mut db = PrivateMariaDb { child, port };
        db.wait_ready(&file("mariadbd.err"));
        db
    }

    fn wait_ready(&mut self, log: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mariadbd exited ({status}): {}", std::fs::read_to_string(log).unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd not ready in 60 s: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
