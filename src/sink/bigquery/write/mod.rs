//! The BigQuery Storage Write API over gRPC: PENDING streams, appends of Arrow rows,
//! finalize and batch commit. Nothing written is visible until the commit.

mod stream;

use std::sync::Arc;
use std::time::Duration;

use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1 as pb;
use pb::big_query_write_client::BigQueryWriteClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

pub use stream::{AppendStream, StreamOutcome};

use super::error::SinkError;
use crate::auth::TokenSource;
use crate::retry::{self, Policy, Verdict, transient};

#[derive(Clone)]
pub struct WriteClient {
    channel: Channel,
    tokens: Arc<dyn TokenSource>,
    retry: Policy,
    /// How long any one call or append may wait for its answer: `google.request_timeout`,
    /// so a server that accepts and never answers ends within the configured deadlines.
    call_timeout: Duration,
}

pub fn grpc_error(what: &str, status: &tonic::Status) -> SinkError {
    SinkError::Grpc {
        what: what.to_owned(),
        code: format!("{:?}", status.code()),
        message: status.message().to_owned(),
        verdict: transient::grpc(status),
    }
}

impl WriteClient {
    /// A lazily connected channel; TLS with the system's roots for `https://`.
    pub fn new(url: &url::Url, tokens: Arc<dyn TokenSource>) -> Result<Self, SinkError> {
        crate::http::install_crypto_provider();
        let bad = |e: tonic::transport::Error| SinkError::Config(format!("google.storage_write_url {url}: {e}"));
        let mut ep = Endpoint::from_shared(url.as_str().trim_end_matches('/').to_owned())
            .map_err(bad)?
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if url.scheme() == "https" {
            ep = ep.tls_config(ClientTlsConfig::new().with_native_roots()).map_err(bad)?;
        }
        Ok(Self { channel: ep.connect_lazy(), tokens, retry: Policy::STANDARD, call_timeout: Duration::from_secs(60) })
    }

    /// Overrides the per-call deadline (default 60 s).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Overrides the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: Policy) -> Self {
        self.retry = retry;
        self
    }

    pub(crate) fn raw(&self) -> BigQueryWriteClient<Channel> {
        BigQueryWriteClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(16 << 20)
    }

    /// A request with the bearer token and the routing header Google's frontends expect.
    pub(crate) async fn request<T>(&self, msg: T, routing: (&str, &str)) -> Result<tonic::Request<T>, SinkError> {
        let token = self.tokens.token().await?;
        let mut req = tonic::Request::new(msg);
        let bearer = format!("Bearer {}", token.token.expose());
        req.metadata_mut().insert(
            "authorization",
            bearer.parse().map_err(|_| SinkError::Config("the access token is not a valid header value".into()))?,
        );
        let value: String = url::form_urlencoded::byte_serialize(routing.1.as_bytes()).collect();
        if let Ok(v) = format!("{}={value}", routing.0).parse() {
            req.metadata_mut().insert("x-goog-request-params", v);
        }
        Ok(req)
    }

    /// Runs a unary call with a deadline and the shared retry policy. `also_transient`
    /// widens what is retried (NOT_FOUND right after a table is created).
    async fn unary<R, F, Fut>(&self, what: &str, also_transient: &[tonic::Code], call: F) -> Result<R, SinkError>
    where
        F: Fn(BigQueryWriteClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let r = retry::retry(&self.retry, SinkError::verdict, |_| async {
            let fut = call(self.raw());
            match tokio::time::timeout(self.call_timeout, fut).await {
                Err(_) => Err(SinkError::Grpc {
                    what: what.to_owned(),
                    code: "DeadlineExceeded".into(),
                    message: format!(
                        "no answer within {} s (google.request_timeout_seconds); check google.storage_write_url \
                         reaches the Storage Write API",
                        self.call_timeout.as_secs()
                    ),
                    verdict: Verdict::RETRY,
                }),
                Ok(Ok(resp)) => Ok(resp.into_inner()),
                Ok(Err(status)) => {
                    let mut e = grpc_error(what, &status);
                    if let SinkError::Grpc { verdict, .. } = &mut e
                        && also_transient.contains(&status.code())
                    {
                        *verdict = Verdict::RETRY;
                    }
                    Err(e)
                }
            }
        })
        .await;
        r.map_err(|g| g.error)
    }

    /// Creates a PENDING stream on `table_path` (`projects/P/datasets/D/tables/T`).
    pub async fn create_pending_stream(&self, table_path: &str) -> Result<String, SinkError> {
        let stream = self
            .unary("CreateWriteStream", &[tonic::Code::NotFound], |mut c| {
                let table_path = table_path.to_owned();
                async move {
                    let msg = pb::CreateWriteStreamRequest {
                        parent: table_path.clone(),
                        write_stream: Some(pb::WriteStream {
                            r#type: pb::write_stream::Type::Pending as i32,
                            ..Default::default()
                        }),
                    };
                    let req = self.request(msg, ("parent", &table_path)).await.map_err(to_status)?;
                    c.create_write_stream(req).await
                }
            })
            .await?;
        Ok(stream.name)
    }

    /// Finalizes a stream: no more appends; returns the rows it holds.
    pub async fn finalize(&self, stream: &str) -> Result<i64, SinkError> {
        let r = self
            .unary("FinalizeWriteStream", &[], |mut c| async move {
                let msg = pb::FinalizeWriteStreamRequest { name: stream.to_owned() };
                let req = self.request(msg, ("name", stream)).await.map_err(to_status)?;
                c.finalize_write_stream(req).await
            })
            .await?;
        Ok(r.row_count)
    }

    /// Commits finalized streams atomically: all become visible, or none.
    pub async fn batch_commit(&self, table_path: &str, streams: &[String]) -> Result<(), SinkError> {
        let r = self
            .unary("BatchCommitWriteStreams", &[], |mut c| async move {
                let msg = pb::BatchCommitWriteStreamsRequest {
                    parent: table_path.to_owned(),
                    write_streams: streams.to_vec(),
                };
                let req = self.request(msg, ("parent", table_path)).await.map_err(to_status)?;
                c.batch_commit_write_streams(req).await
            })
            .await?;
        if r.commit_time.is_none() {
            let errors: Vec<String> =
                r.stream_errors.iter().map(|e| format!("{}: {}", e.entity, e.error_message)).collect();
            return Err(SinkError::Grpc {
                what: "BatchCommitWriteStreams".into(),
                code: "COMMIT_FAILED".into(),
                message: if errors.is_empty() { "no commit time in the answer".into() } else { errors.join("; ") },
                verdict: Verdict::Permanent,
            });
        }
        Ok(())
    }
}

/// Carries a token failure through tonic's error type inside a retried call.
fn to_status(e: SinkError) -> tonic::Status {
    match e {
        SinkError::Auth(a) if a.is_transient() => tonic::Status::unavailable(a.to_string()),
        other => tonic::Status::unauthenticated(other.to_string()),
    }
}
