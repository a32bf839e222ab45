//! The Storage Write driver against a server that misbehaves on purpose: every transient
//! fault ends in all rows stored exactly once; every permanent one in a prompt, clear error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, RecordBatch};
use aurora2bq::sink::SinkError;
use aurora2bq::sink::bigquery::encode::{batch_bytes, schema_bytes};
use aurora2bq::sink::bigquery::write::{AppendStream, WriteClient};
use aurora2bq_google_emulator::storage_write::{FakeStorageWrite, WriteFault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

const TABLE: &str = "projects/p/datasets/d/tables/t";
const BATCHES: i64 = 6;
const ROWS: i64 = 100;
use crate::common::FAST_RETRY as FAST;

fn batch(i: i64) -> RecordBatch {
    let schema = aurora2bq::bq_model::arrow_schema(&[aurora2bq::bq_model::BqField {
        name: "id".into(),
        ty: aurora2bq::bq_model::BqType::Int64,
        repeated: false,
    }]);
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(i * ROWS..(i + 1) * ROWS))]).unwrap()
}

/// Writes BATCHES batches through `url`, then finalizes and commits.
async fn write_all(url: &str) -> Result<(), SinkError> {
    let client =
        WriteClient::new(&url::Url::parse(url).unwrap(), Arc::new(crate::common::FixedToken))?.with_retry(FAST);
    let name = client.create_pending_stream(TABLE).await?;
    let schema = bytes::Bytes::from(schema_bytes(&batch(0).schema()));
    let mut stream = AppendStream::start(client.clone(), name.clone(), schema, 2);
    for i in 0..BATCHES {
        stream.append(bytes::Bytes::from(batch_bytes(&batch(i)).unwrap()), ROWS as usize).await?;
    }
    let outcome = stream.finish().await?;
    assert_eq!(outcome.rows, BATCHES * ROWS);
    assert_eq!(client.finalize(&name).await?, BATCHES * ROWS, "the server holds each row once");
    client.batch_commit(TABLE, &[name]).await
}

fn committed_ids(fake: &FakeStorageWrite) -> Vec<i64> {
    let mut ids: Vec<i64> = fake
        .committed(TABLE)
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn transient_faults_end_with_every_row_exactly_once() {
    let cases: Vec<(&str, u64, WriteFault)> = vec![
        ("UNAVAILABLE mid-stream", 3, WriteFault::EndStream(Code::Unavailable)),
        ("ABORTED", 2, WriteFault::EndStream(Code::Aborted)),
        ("INTERNAL", 4, WriteFault::EndStream(Code::Internal)),
        ("RESOURCE_EXHAUSTED", 3, WriteFault::Error(Code::ResourceExhausted)),
        ("lost response", 2, WriteFault::LoseResponse),
        ("OUT_OF_RANGE", 3, WriteFault::Error(Code::OutOfRange)),
    ];
    for (name, at, fault) in cases {
        let server = FakeStorageWrite::start(false, 0).await.unwrap();
        server.fake.fault_at(at, fault);
        let started = Instant::now();
        write_all(&format!("http://{}", server.addr)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(committed_ids(&server.fake), (0..BATCHES * ROWS).collect::<Vec<_>>(), "{name}");
        let (_, connections) = server.fake.counts();
        assert!(connections >= 2, "{name}: reconnected ({connections} connections)");
        assert!(started.elapsed() < Duration::from_secs(10), "{name}: {:?}", started.elapsed());
    }
}

/// A proxy that resets the first connection once the server has sent `after` bytes.
async fn resetting_proxy(upstream: std::net::SocketAddr, after: usize) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let reset = std::mem::replace(&mut first, false);
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                if reset {
                    // Linger 0 turns the close below into a TCP reset.
                    socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
                }
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                let mut sent = 0;
                let mut buf = vec![0u8; 8192];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                    if reset && sent >= after {
                        break;
                    }
                }
                up.abort();
                drop(cw);
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_reset_connection_is_reconnected_and_nothing_is_lost_or_doubled() {
    let server = FakeStorageWrite::start(false, 0).await.unwrap();
    // Enough bytes for the HTTP/2 preface, the stream creation and a couple of answers.
    let proxy = resetting_proxy(server.addr, 400).await;
    write_all(&format!("http://{proxy}")).await.expect("recovered from the reset");
    assert_eq!(committed_ids(&server.fake), (0..BATCHES * ROWS).collect::<Vec<_>>());
    assert!(server.fake.counts().1 >= 2, "the reset hit an AppendRows call, which reconnected");
}

#[tokio::test]
async fn row_errors_and_permanent_errors_fail_promptly_and_clearly() {
    let server = FakeStorageWrite::start(false, 0).await.unwrap();
    server.fake.fault_at(2, WriteFault::RowErrors(vec![5, 7]));
    match write_all(&format!("http://{}", server.addr)).await {
        Err(SinkError::RowErrors { rows, .. }) => {
            assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![ROWS + 5, ROWS + 7], "absolute row numbers");
            assert!(rows[0].1.contains("row 5 is bad"));
        }
        other => panic!("{other:?}"),
    }
    assert!(server.fake.committed(TABLE).is_empty());

    let server = FakeStorageWrite::start(false, 0).await.unwrap();
    server.fake.fault_at(2, WriteFault::Error(Code::InvalidArgument));
    let started = Instant::now();
    let e = write_all(&format!("http://{}", server.addr)).await.unwrap_err();
    assert!(!e.is_transient() && e.to_string().contains("InvalidArgument"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // UNAVAILABLE on every connection: bounded attempts, then the last error.
    let server = FakeStorageWrite::start(false, 0).await.unwrap();
    for n in 1..=50 {
        server.fake.fault_at(n, WriteFault::EndStream(Code::Unavailable));
    }
    let started = Instant::now();
    let e = write_all(&format!("http://{}", server.addr)).await.unwrap_err();
    assert!(e.to_string().contains("Unavailable"), "{e}");
    let (_, connections) = server.fake.counts();
    assert!(connections <= FAST.max_attempts as u64 + 1, "{connections} connections");
    assert!(started.elapsed() < Duration::from_secs(10));
}
