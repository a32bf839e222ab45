//! STS behind servers that misbehave in ways the emulator cannot: always 500, reset the
//! connection, or never answer. Each ends in a bounded number of attempts, a clear error
//! naming the link, and within a bounded time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aurora2bq::auth::{self, AuthError, Link};
use aurora2bq::config::{CredentialsFrom, GoogleConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::FAST_RETRY as FAST;

#[derive(Clone, Copy)]
enum Misbehaviour {
    Status500,
    Reset,
    Silent,
}

/// A loopback server that misbehaves on every connection; counts connections.
async fn server(m: Misbehaviour) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let _ = sock.read(&mut buf).await;
                match m {
                    Misbehaviour::Status500 => {
                        let body = r#"{"error":"internal_failure","error_description":"boom"}"#;
                        let resp = format!(
                            "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                    Misbehaviour::Reset => {
                        // Linger 0 turns the close into a TCP reset.
                        let std = sock.into_std().unwrap();
                        let sock2 = socket2::Socket::from(std);
                        let _ = sock2.set_linger(Some(Duration::ZERO));
                        drop(sock2);
                    }
                    Misbehaviour::Silent => tokio::time::sleep(Duration::from_secs(3600)).await,
                }
            });
        }
    });
    (format!("http://{addr}/v1/token"), count)
}

async fn exchange_against(m: Misbehaviour) -> (AuthError, u32, Duration) {
    let (url, count) = server(m).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a.b.c").unwrap();
    let cred = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/v",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": url,
        "credential_source": {"file": token},
    });
    let path = dir.path().join("cred.json");
    std::fs::write(&path, cred.to_string()).unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    // Built as `run` builds it, so the config's retry policy is the one that must bound it.
    let google = GoogleConfig {
        credentials: CredentialsFrom::File(Some(path)),
        allow_insecure_endpoints: true,
        retry: FAST,
        ..GoogleConfig::default()
    };
    let ext = auth::from_config(&google, http).unwrap();
    let started = Instant::now();
    let e = ext.token().await.expect_err("the exchange cannot succeed");
    (e, count.load(Ordering::SeqCst), started.elapsed())
}

#[tokio::test]
async fn every_misbehaviour_ends_in_bounded_retries_and_a_clear_error() {
    for (m, name) in
        [(Misbehaviour::Status500, "500"), (Misbehaviour::Reset, "reset"), (Misbehaviour::Silent, "silent")]
    {
        let (e, connections, elapsed) = exchange_against(m).await;
        assert_eq!(e.link(), Link::StsExchange, "{name}: {e}");
        assert!(e.is_transient(), "{name}: {e}");
        assert!(e.to_string().contains(&format!("retried {} times", FAST.max_attempts)), "{name}: {e}");
        assert_eq!(connections, FAST.max_attempts, "{name}: one connection per attempt");
        assert!(elapsed < Duration::from_secs(5), "{name}: took {elapsed:?}");
    }
}
