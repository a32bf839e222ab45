//! One task owns each AppendRows connection. Requests carry explicit offsets and are kept
//! until acknowledged; responses arrive in request order and are matched to the oldest
//! request in flight. On a transient failure the task reconnects (with a fresh token) and
//! resends from the first unacknowledged offset: ALREADY_EXISTS then means "that one got
//! through before", OUT_OF_RANGE means "an earlier one did not" (docs/architecture.md, "Storage Write rules").

use std::collections::VecDeque;

use bytes::Bytes;
use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1 as pb;
use pb::append_rows_request::{ArrowData, Rows};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::{WriteClient, grpc_error};
use crate::retry::{Backoff, Verdict, transient};
use crate::sink::bigquery::error::SinkError;

const CODE_ALREADY_EXISTS: i32 = 6;
const CODE_OUT_OF_RANGE: i32 = 11;

/// Rows sent and acknowledged by the server.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamOutcome {
    pub rows: i64,
    pub requests: u64,
    pub bytes: u64,
    pub reconnects: u32,
}

struct Append {
    payload: Bytes,
    rows: usize,
}

/// The handle the pipeline holds; the task behind it does the I/O.
pub struct AppendStream {
    pub name: String,
    tx: Option<mpsc::Sender<Append>>,
    task: JoinHandle<Result<StreamOutcome, SinkError>>,
}

impl AppendStream {
    pub fn start(client: WriteClient, name: String, schema: Bytes, max_inflight: usize) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let client_retry = client.retry;
        let task = Task {
            client,
            name: name.clone(),
            schema,
            max_inflight: max_inflight.max(1),
            inflight: VecDeque::new(),
            next_offset: 0,
            conn: None,
            backoff: Backoff::new(client_retry),
            outcome: StreamOutcome::default(),
        };
        Self { name, tx: Some(tx), task: tokio::spawn(task.run(rx)) }
    }

    /// Queues one IPC record batch of `rows` rows; waits while the stream is busy.
    pub async fn append(&mut self, payload: Bytes, rows: usize) -> Result<(), SinkError> {
        let tx = self.tx.as_ref().expect("append after finish");
        if tx.send(Append { payload, rows }).await.is_err() {
            // The task stopped: its result says why.
            self.tx = None;
            return Err(match (&mut self.task).await {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => SinkError::Cancelled,
                Err(join) => SinkError::Task(format!("the append task: {join}")),
            });
        }
        Ok(())
    }

    /// Waits for every append to be acknowledged.
    pub async fn finish(mut self) -> Result<StreamOutcome, SinkError> {
        self.tx = None;
        match self.task.await {
            Ok(r) => r,
            Err(join) => Err(SinkError::Task(format!("the append task: {join}"))),
        }
    }
}

struct Pending {
    offset: i64,
    rows: usize,
    /// Shared with the request in flight: resending costs no copy.
    payload: Bytes,
    /// Sent again after a reconnect: ALREADY_EXISTS then means it was written the first time.
    resent: bool,
}

struct Conn {
    requests: mpsc::Sender<pb::AppendRowsRequest>,
    responses: tonic::codec::Streaming<pb::AppendRowsResponse>,
}

struct Task {
    client: WriteClient,
    name: String,
    schema: Bytes,
    max_inflight: usize,
    inflight: VecDeque<Pending>,
    next_offset: i64,
    conn: Option<Conn>,
    /// Failures since the last acknowledged append, under the shared policy.
    backoff: Backoff,
    outcome: StreamOutcome,
}

/// What to do after a failure.
enum Recovery {
    Reconnect(SinkError),
    Fatal(SinkError),
}

impl Task {
    async fn run(mut self, mut input: mpsc::Receiver<Append>) -> Result<StreamOutcome, SinkError> {
        let mut closed = false;
        loop {
            if closed && self.inflight.is_empty() {
                return Ok(self.outcome);
            }
            let step = tokio::select! {
                cmd = input.recv(), if !closed && self.inflight.len() < self.max_inflight => match cmd {
                    Some(a) => self.send_new(a).await,
                    None => { closed = true; Ok(()) }
                },
                // An append not answered within the call deadline is treated as lost and
                // resent on a new connection; BigQuery answers in seconds.
                resp = tokio::time::timeout(self.client.call_timeout(), next_response(&mut self.conn)),
                    if !self.inflight.is_empty() => match resp {
                        Ok(resp) => self.on_response(resp),
                        Err(_) => Err(Recovery::Reconnect(self.lost("no answer to an append within the deadline"))),
                    },
            };
            if let Err(recovery) = step {
                match recovery {
                    Recovery::Fatal(e) => return Err(e),
                    Recovery::Reconnect(e) => self.reconnect(e).await?,
                }
            }
        }
    }

    async fn send_new(&mut self, a: Append) -> Result<(), Recovery> {
        let p = Pending { offset: self.next_offset, rows: a.rows, payload: a.payload, resent: false };
        self.next_offset += a.rows as i64;
        self.outcome.requests += 1;
        self.outcome.bytes += p.payload.len() as u64;
        self.inflight.push_back(p);
        if self.conn.is_none() {
            return self.connect().await;
        }
        let req = self.request(self.inflight.len() - 1, false);
        let conn = self.conn.as_ref().expect("connected");
        if conn.requests.send(req).await.is_err() {
            return Err(Recovery::Reconnect(self.lost("the connection closed while sending")));
        }
        Ok(())
    }

    fn request(&self, index: usize, with_schema: bool) -> pb::AppendRowsRequest {
        let p = &self.inflight[index];
        pb::AppendRowsRequest {
            write_stream: self.name.clone(),
            offset: Some(p.offset),
            rows: Some(Rows::ArrowRows(ArrowData {
                writer_schema: with_schema.then(|| pb::ArrowSchema { serialized_schema: self.schema.clone() }),
                rows: Some(pb::ArrowRecordBatch { serialized_record_batch: p.payload.clone(), ..Default::default() }),
            })),
            ..Default::default()
        }
    }

    /// Opens a connection and (re)sends everything in flight, the schema on the first.
    async fn connect(&mut self) -> Result<(), Recovery> {
        let (tx, rx) = mpsc::channel(self.max_inflight + 1);
        // Queue the requests before the call: some servers answer the headers only after
        // the first message arrives.
        for i in 0..self.inflight.len() {
            let req = self.request(i, i == 0);
            tx.send(req).await.expect("the channel has room for every request in flight");
        }
        let req = self
            .client
            .request(ReceiverStream::new(rx), ("write_stream", &self.name))
            .await
            .map_err(|e| if e.is_transient() { Recovery::Reconnect(e) } else { Recovery::Fatal(e) })?;
        let resp = self.client.raw().append_rows(req).await.map_err(|s| classify(grpc_error("AppendRows", &s)))?;
        self.conn = Some(Conn { requests: tx, responses: resp.into_inner() });
        Ok(())
    }

    fn on_response(&mut self, resp: Result<Option<pb::AppendRowsResponse>, tonic::Status>) -> Result<(), Recovery> {
        let resp = match resp {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Recovery::Reconnect(self.lost("the server closed the stream"))),
            Err(status) => return Err(classify(grpc_error("AppendRows", &status))),
        };
        let front = self.inflight.front().expect("a response implies a request in flight");
        if !resp.row_errors.is_empty() {
            let rows = resp.row_errors.iter().map(|e| (front.offset + e.index, e.message.clone())).collect();
            return Err(Recovery::Fatal(SinkError::RowErrors { table: self.name.clone(), rows }));
        }
        use pb::append_rows_response::Response;
        match resp.response {
            Some(Response::AppendResult(_)) => {}
            Some(Response::Error(s)) if s.code == CODE_ALREADY_EXISTS && front.resent => {
                tracing::debug!(offset = front.offset, "append was already written before the reconnect");
            }
            Some(Response::Error(s)) if s.code == CODE_OUT_OF_RANGE => {
                return Err(Recovery::Reconnect(self.code_error(s.code, &s.message, Verdict::RETRY)));
            }
            Some(Response::Error(s)) => {
                let code = tonic::Code::from(s.code);
                return Err(classify(self.code_error(
                    s.code,
                    &s.message,
                    Verdict::from_bool(transient::grpc_code(code)),
                )));
            }
            None => return Err(Recovery::Fatal(self.code_error(2, "empty AppendRows response", Verdict::Permanent))),
        }
        let done = self.inflight.pop_front().expect("checked above");
        self.outcome.rows += done.rows as i64;
        self.backoff.reset();
        Ok(())
    }

    async fn reconnect(&mut self, mut cause: SinkError) -> Result<(), SinkError> {
        self.conn = None;
        loop {
            let attempt = self.backoff.attempts();
            let Some(delay) = self.backoff.next(cause.verdict()) else { return Err(cause) };
            tracing::warn!(stream = %self.name, error = %cause, attempt, "append failed; reconnecting");
            tokio::time::sleep(delay).await;
            self.outcome.reconnects += 1;
            for p in self.inflight.iter_mut() {
                p.resent = true;
            }
            match self.connect().await {
                Ok(()) => return Ok(()),
                Err(Recovery::Fatal(e)) => return Err(e),
                Err(Recovery::Reconnect(e)) => cause = e,
            }
        }
    }

    fn lost(&self, what: &str) -> SinkError {
        SinkError::Grpc {
            what: "AppendRows".into(),
            code: "Unavailable".into(),
            message: what.into(),
            verdict: Verdict::RETRY,
        }
    }

    fn code_error(&self, code: i32, message: &str, verdict: Verdict) -> SinkError {
        SinkError::Grpc {
            what: format!("AppendRows on {}", self.name),
            code: format!("{:?}", tonic::Code::from(code)),
            message: message.to_owned(),
            verdict,
        }
    }
}

fn classify(e: SinkError) -> Recovery {
    if e.is_transient() { Recovery::Reconnect(e) } else { Recovery::Fatal(e) }
}

async fn next_response(conn: &mut Option<Conn>) -> Result<Option<pb::AppendRowsResponse>, tonic::Status> {
    match conn {
        Some(c) => c.responses.message().await,
        None => Ok(None),
    }
}
