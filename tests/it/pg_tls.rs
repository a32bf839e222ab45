//! TLS to PostgreSQL with certificate verification against a CA bundle file (as with the
//! RDS bundle): the server's certificate is accepted when the bundle vouches for it and
//! the host name matches, and refused otherwise.

use crate::common;

use aurora2bq::config::{Engine, TableConfig, ZeroDates};
use aurora2bq::source::{self, BatchLimits};
use common::arrow_text::source_config;
use sqlx::Connection;

#[tokio::test]
async fn the_server_certificate_is_verified_against_the_bundle() {
    let db = common::PgDb::new().await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);").await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (ssl, cert): (String, String) =
        sqlx::query_as("SELECT current_setting('ssl'), current_setting('ssl_cert_file')")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(ssl, "on", "this test needs PostgreSQL with ssl = on (Debian's default, with the snakeoil certificate)");
    let dir = tempfile::tempdir().unwrap();
    // The server's self-signed certificate (CN and SAN localhost) is its own CA.
    let url = db.url.replace("127.0.0.1", "localhost");
    let mut cfg = source_config(Engine::Postgres, &url, dir.path(), ZeroDates::Error);
    cfg.ca_file = Some(cert.into());
    let limits = BatchLimits { rows: 10, bytes: 1 << 20 };
    let src = source::connect(&cfg, limits).await.expect("verified TLS connection");
    src.open(&TableConfig::simple(None, "t"), None).await.expect("read over TLS");

    // The public CAs do not vouch for it: refused, with the reason.
    cfg.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let e = source::connect(&cfg, limits).await.err().expect("an unknown issuer is refused");
    let chain = aurora2bq::describe::error_chain(&e);
    assert!(
        chain.contains("cannot connect to PostgreSQL") && chain.contains("not signed by a CA in source.ca_file"),
        "{chain}"
    );
}
