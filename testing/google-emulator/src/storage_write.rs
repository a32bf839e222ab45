//! A small BigQuery Storage Write server for tests: PENDING streams with offsets, Arrow
//! rows decoded and kept (so a test can check every row arrived exactly once), and a plan
//! of faults by request number: UNAVAILABLE mid-stream, per-request errors, row errors, a
//! response lost after the rows were stored. With `discard`, it only counts (a null sink
//! for benchmarks); with a latency, every answer waits that long, as a distant server's would.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use futures_util::StreamExt;
use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1 as pb;
use googleapis_tonic_google_cloud_bigquery_storage_v1::google::rpc::Status as RpcStatus;
use pb::append_rows_request::Rows;
use pb::append_rows_response::{AppendResult, Response as AppendResponse};
use tokio::sync::{mpsc, oneshot};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status, Streaming};

/// What the server does instead of answering a given request normally.
#[derive(Debug, Clone)]
pub enum WriteFault {
    /// End the whole AppendRows call with this status before handling the request.
    EndStream(Code),
    /// Answer the request with this error code (not stored).
    Error(Code),
    /// Store the rows, then end the call with UNAVAILABLE without answering.
    LoseResponse,
    /// Refuse these row indexes of the request.
    RowErrors(Vec<i64>),
}

#[derive(Default)]
struct StreamData {
    next_offset: i64,
    batches: BTreeMap<i64, RecordBatch>,
    rows: i64,
    finalized: bool,
}

#[derive(Default)]
struct State {
    discard: bool,
    latency: std::time::Duration,
    /// Unary calls (CreateWriteStream, FinalizeWriteStream, BatchCommitWriteStreams).
    unary: u64,
    streams: HashMap<String, StreamData>,
    /// Faults by 1-based AppendRows request number, over all connections.
    faults: HashMap<u64, WriteFault>,
    requests: u64,
    connections: u64,
    /// Committed rows by table path.
    committed: HashMap<String, Vec<RecordBatch>>,
}

#[derive(Clone)]
pub struct FakeStorageWrite {
    state: Arc<Mutex<State>>,
}

/// A running fake; dropping it stops the server.
pub struct RunningWrite {
    pub addr: SocketAddr,
    pub fake: FakeStorageWrite,
    _stop: oneshot::Sender<()>,
}

impl FakeStorageWrite {
    pub async fn start(discard: bool, port: u16) -> std::io::Result<RunningWrite> {
        Self::start_with_latency(discard, port, std::time::Duration::ZERO).await
    }

    /// As [`start`](Self::start), answering every call and every append `latency` after it
    /// arrived; appends in flight on one connection wait out their latencies together.
    pub async fn start_with_latency(
        discard: bool,
        port: u16,
        latency: std::time::Duration,
    ) -> std::io::Result<RunningWrite> {
        let fake = FakeStorageWrite { state: Arc::new(Mutex::new(State { discard, latency, ..Default::default() })) };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let svc = fake.clone();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(RunningWrite { addr, fake, _stop: tx })
    }

    /// Plans `fault` for the `n`-th AppendRows request (1-based, over all connections).
    pub fn fault_at(&self, n: u64, fault: WriteFault) {
        self.state.lock().unwrap().faults.insert(n, fault);
    }

    /// (AppendRows requests handled, connections opened).
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.requests, s.connections)
    }

    /// Unary calls handled.
    pub fn unary_calls(&self) -> u64 {
        self.state.lock().unwrap().unary
    }

    fn latency(&self) -> std::time::Duration {
        self.state.lock().unwrap().latency
    }

    /// Every committed batch of `table_path`, in offset order per stream.
    pub fn committed(&self, table_path: &str) -> Vec<RecordBatch> {
        self.state.lock().unwrap().committed.get(table_path).cloned().unwrap_or_default()
    }

    fn create(&self, req: pb::CreateWriteStreamRequest) -> Result<pb::WriteStream, Status> {
        let mut s = self.state.lock().unwrap();
        let name = format!("{}/streams/s{}", req.parent, s.streams.len() + 1);
        s.streams.insert(name.clone(), StreamData::default());
        Ok(pb::WriteStream { name, r#type: pb::write_stream::Type::Pending as i32, ..Default::default() })
    }

    fn finalize(&self, req: pb::FinalizeWriteStreamRequest) -> Result<pb::FinalizeWriteStreamResponse, Status> {
        let mut s = self.state.lock().unwrap();
        let st = s.streams.get_mut(&req.name).ok_or_else(|| Status::not_found(format!("no stream {}", req.name)))?;
        st.finalized = true;
        Ok(pb::FinalizeWriteStreamResponse { row_count: st.rows })
    }

    fn commit(&self, req: pb::BatchCommitWriteStreamsRequest) -> Result<pb::BatchCommitWriteStreamsResponse, Status> {
        let mut s = self.state.lock().unwrap();
        let mut batches = Vec::new();
        for name in &req.write_streams {
            let st = s.streams.get(name).ok_or_else(|| Status::not_found(format!("no stream {name}")))?;
            if !st.finalized {
                return Err(Status::failed_precondition(format!("stream {name} is not finalized")));
            }
            batches.extend(st.batches.values().cloned());
        }
        s.committed.entry(req.parent.clone()).or_default().extend(batches);
        Ok(pb::BatchCommitWriteStreamsResponse { commit_time: Some(prost_types_now()), stream_errors: vec![] })
    }

    /// Handles one request of a connection; `None` ends the call with that status.
    fn append(
        &self,
        req: &pb::AppendRowsRequest,
        schema: &mut Option<bytes::Bytes>,
    ) -> Result<pb::AppendRowsResponse, (Status, bool)> {
        let mut s = self.state.lock().unwrap();
        s.requests += 1;
        let n = s.requests;
        let fault = s.faults.remove(&n);
        if let Some(WriteFault::EndStream(code)) = &fault {
            return Err((Status::new(*code, "injected: connection ended"), false));
        }
        let reply = |r: AppendResponse| pb::AppendRowsResponse {
            response: Some(r),
            write_stream: req.write_stream.clone(),
            ..Default::default()
        };
        let err = |code: Code, msg: &str| {
            reply(AppendResponse::Error(RpcStatus { code: code as i32, message: msg.into(), details: vec![] }))
        };
        if let Some(WriteFault::Error(code)) = &fault {
            return Ok(err(*code, "injected error"));
        }
        if let Some(WriteFault::RowErrors(rows)) = &fault {
            let row_errors = rows
                .iter()
                .map(|i| pb::RowError { index: *i, code: 1, message: format!("injected: row {i} is bad") })
                .collect();
            return Ok(pb::AppendRowsResponse {
                row_errors,
                write_stream: req.write_stream.clone(),
                ..Default::default()
            });
        }
        let Some(Rows::ArrowRows(data)) = &req.rows else { return Ok(err(Code::InvalidArgument, "only arrow rows")) };
        if let Some(ws) = &data.writer_schema {
            *schema = Some(ws.serialized_schema.clone());
        }
        let Some(schema_bytes) = schema.clone() else {
            return Ok(err(Code::InvalidArgument, "no writer schema on this connection"));
        };
        let discard = s.discard;
        let st = s.streams.get_mut(&req.write_stream).ok_or_else(|| (Status::not_found("no such stream"), false))?;
        let offset = req.offset.unwrap_or(st.next_offset);
        if offset < st.next_offset {
            return Ok(err(Code::AlreadyExists, "offset already written"));
        }
        if offset > st.next_offset {
            return Ok(err(Code::OutOfRange, "offset beyond the end of the stream"));
        }
        let payload = data.rows.as_ref().map(|r| r.serialized_record_batch.clone()).unwrap_or_default();
        let mut bytes = schema_bytes.to_vec();
        bytes.extend_from_slice(&payload);
        let batch = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .ok()
            .and_then(|mut r| r.next())
            .and_then(Result::ok)
            .ok_or_else(|| (Status::invalid_argument("unreadable Arrow rows"), false))?;
        let rows = batch.num_rows() as i64;
        if !discard {
            st.batches.insert(offset, batch);
        }
        st.next_offset += rows;
        st.rows += rows;
        if let Some(WriteFault::LoseResponse) = fault {
            return Err((Status::unavailable("injected: response lost"), true));
        }
        Ok(reply(AppendResponse::AppendResult(AppendResult { offset: Some(offset) })))
    }
}

fn prost_types_now() -> prost_types::Timestamp {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp { seconds: now.as_secs() as i64, nanos: now.subsec_nanos() as i32 }
}

type ResponseStream = Pin<Box<dyn futures_util::Stream<Item = Result<pb::AppendRowsResponse, Status>> + Send>>;

impl NamedService for FakeStorageWrite {
    const NAME: &'static str = "google.cloud.bigquery.storage.v1.BigQueryWrite";
}

impl<B> Service<http::Request<B>> for FakeStorageWrite
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fake = self.clone();
        let path = req.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        Box::pin(async move {
            macro_rules! unary {
                ($method:ident, $req:ty, $resp:ty) => {{
                    let f = fake.clone();
                    let svc = tower::service_fn(move |r: Request<$req>| {
                        let f = f.clone();
                        async move {
                            f.state.lock().unwrap().unary += 1;
                            tokio::time::sleep(f.latency()).await;
                            f.$method(r.into_inner()).map(Response::new)
                        }
                    });
                    let codec = tonic_prost::ProstCodec::<$resp, $req>::default();
                    Ok(tonic::server::Grpc::new(codec).unary(svc, req).await)
                }};
            }
            match path.as_str() {
                "CreateWriteStream" => unary!(create, pb::CreateWriteStreamRequest, pb::WriteStream),
                "FinalizeWriteStream" => {
                    unary!(finalize, pb::FinalizeWriteStreamRequest, pb::FinalizeWriteStreamResponse)
                }
                "BatchCommitWriteStreams" => {
                    unary!(commit, pb::BatchCommitWriteStreamsRequest, pb::BatchCommitWriteStreamsResponse)
                }
                "AppendRows" => {
                    let f = fake.clone();
                    let svc = tower::service_fn(move |r: Request<Streaming<pb::AppendRowsRequest>>| {
                        let f = f.clone();
                        async move { Ok::<_, Status>(Response::new(f.connection(r.into_inner()))) }
                    });
                    let codec = tonic_prost::ProstCodec::<pb::AppendRowsResponse, pb::AppendRowsRequest>::default();
                    Ok(tonic::server::Grpc::new(codec).streaming(svc, req).await)
                }
                other => Ok(Status::unimplemented(format!("{other} is not emulated")).into_http()),
            }
        })
    }
}

impl FakeStorageWrite {
    /// One AppendRows call: answers each request in order until the client closes, or a
    /// planned fault ends it.
    fn connection(&self, mut requests: Streaming<pb::AppendRowsRequest>) -> ResponseStream {
        self.state.lock().unwrap().connections += 1;
        let (tx, rx) = mpsc::channel(16);
        // Answers leave in order, each `latency` after its request arrived: a second stage
        // holds them so that pipelined requests are not delayed one after another.
        let (due_tx, mut due_rx) = mpsc::channel::<(tokio::time::Instant, Result<_, Status>, bool)>(16);
        let latency = self.latency();
        tokio::spawn(async move {
            while let Some((due, answer, last)) = due_rx.recv().await {
                tokio::time::sleep_until(due).await;
                if tx.send(answer).await.is_err() || last {
                    return;
                }
            }
        });
        let fake = self.clone();
        tokio::spawn(async move {
            let mut schema = None;
            while let Some(req) = requests.next().await {
                let Ok(req) = req else { return };
                let due = tokio::time::Instant::now() + latency;
                let (answer, last) = match fake.append(&req, &mut schema) {
                    Ok(resp) => (Ok(resp), false),
                    Err((status, _stored)) => (Err(status), true),
                };
                if due_tx.send((due, answer, last)).await.is_err() || last {
                    return;
                }
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}
