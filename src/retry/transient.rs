//! The one decision of whether a failed call to Google may pass on another try, for HTTP
//! (STS, IAM, BigQuery REST) and gRPC (Storage Write) alike, with the wait Google asked for.

use std::time::Duration;

use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Whether a failure may pass, and how long the server asked us to wait first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A fact about the request: retrying only delays the message.
    Permanent,
    Transient {
        after: Option<Duration>,
    },
}

impl Verdict {
    /// Transient, at our own pace.
    pub const RETRY: Verdict = Verdict::Transient { after: None };

    pub fn from_bool(transient: bool) -> Self {
        if transient { Self::RETRY } else { Self::Permanent }
    }

    pub fn is_transient(self) -> bool {
        matches!(self, Verdict::Transient { .. })
    }
}

/// An HTTP answer: 408, 429 and 5xx may pass, and so does BigQuery's rate-limit 403
/// (`rateLimitExceeded`); everything else in 4xx is a fact about the request.
pub fn http(status: StatusCode, headers: &HeaderMap, body: &str) -> Verdict {
    let transient = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && is_rate_limited(body));
    if !transient {
        return Verdict::Permanent;
    }
    // Retry-After in seconds; Google does not send the HTTP-date form.
    let after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Verdict::Transient { after }
}

/// BigQuery answers some quota errors with 403 and reason `rateLimitExceeded`: they pass.
fn is_rate_limited(body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return false };
    v["error"]["errors"].as_array().is_some_and(|e| {
        e.iter().any(|x| matches!(x["reason"].as_str(), Some("rateLimitExceeded" | "userRateLimitExceeded")))
    })
}

/// A call that got no answer: resets, timeouts and truncated bodies may pass. A refused
/// connection does not: no Google frontend refuses one, so it means a wrong endpoint or a
/// blocked path, and retrying it only delays the message.
pub fn transport(e: &reqwest::Error) -> Verdict {
    let kind = e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode();
    Verdict::from_bool(kind && !crate::describe::is_refused(&crate::describe::error_chain(e)))
}

/// A gRPC status code that may pass (the Storage Write API's guidance).
pub fn grpc_code(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unavailable | ResourceExhausted | Internal | DeadlineExceeded | Cancelled | Aborted)
}

/// A gRPC status, with the wait of a `google.rpc.RetryInfo` detail when Google sends one.
pub fn grpc(status: &tonic::Status) -> Verdict {
    // A broken connection (reset, truncated HTTP/2) reaches us as UNKNOWN with the transport
    // error as its source; a server's own UNKNOWN has none.
    let broken = status.code() == tonic::Code::Unknown && std::error::Error::source(status).is_some();
    if !(grpc_code(status.code()) || broken) {
        return Verdict::Permanent;
    }
    Verdict::Transient { after: retry_info(status.details()) }
}

/// `google.rpc.Status`, as far as its details go.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<prost_types::Duration>,
}

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The delay in a status's RetryInfo detail, if it has one.
pub fn retry_info(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    let any = status.details.iter().find(|a| a.type_url == RETRY_INFO)?;
    let d = RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay?;
    Some(Duration::from_secs(d.seconds.max(0) as u64) + Duration::from_nanos(d.nanos.max(0) as u64))
}

/// Encodes a status's details with a RetryInfo wait (for servers in tests).
pub fn retry_info_details(delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    let any = prost_types::Any { type_url: RETRY_INFO.into(), value: info.encode_to_vec() };
    RpcStatus { details: vec![any] }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let none = HeaderMap::new();
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(http(StatusCode::from_u16(s).unwrap(), &none, "").is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409] {
            assert_eq!(http(StatusCode::from_u16(s).unwrap(), &none, "{}"), Verdict::Permanent, "{s}");
        }
    }

    #[test]
    fn bigquery_rate_limit_403_passes_and_retry_after_is_read() {
        let body =
            r#"{"error":{"code":403,"errors":[{"reason":"rateLimitExceeded"}],"message":"Exceeded rate limits"}}"#;
        assert!(http(StatusCode::FORBIDDEN, &HeaderMap::new(), body).is_transient());
        let denied = r#"{"error":{"code":403,"errors":[{"reason":"accessDenied"}]}}"#;
        assert_eq!(http(StatusCode::FORBIDDEN, &HeaderMap::new(), denied), Verdict::Permanent);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            http(StatusCode::TOO_MANY_REQUESTS, &h, ""),
            Verdict::Transient { after: Some(Duration::from_secs(7)) }
        );
    }

    #[test]
    fn grpc_retry_info_round_trips() {
        let details = retry_info_details(Duration::from_millis(1500));
        let status = tonic::Status::with_details(tonic::Code::ResourceExhausted, "quota", details.into());
        assert_eq!(grpc(&status), Verdict::Transient { after: Some(Duration::from_millis(1500)) });
        assert_eq!(grpc(&tonic::Status::invalid_argument("bad")), Verdict::Permanent);
        assert_eq!(grpc(&tonic::Status::unavailable("later")), Verdict::RETRY);
    }
}
