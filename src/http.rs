//! The shared HTTP client for STS, IAM Credentials and BigQuery REST, and the one place
//! that decides whether an HTTP failure is worth retrying.

use std::time::Duration;

/// One client for the whole run: connection pooling, timeouts, a user agent.
pub fn client(request_timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("aurora2bq/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(request_timeout)
        .build()
        .expect("the HTTP client builds with static settings")
}

/// rustls panics at run time when more than one crypto provider is compiled in and none
/// was chosen; choose aws-lc-rs once, before any TLS is used.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// 408, 429 and 5xx may pass; everything else in 4xx is a fact about the request.
pub fn is_transient_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// Resets, timeouts, truncated bodies: worth another try. A refused connection is not: no
/// Google frontend refuses one, so it means a wrong endpoint or a blocked path, and retrying
/// it only delays the message.
pub fn is_transient_transport(e: &reqwest::Error) -> bool {
    (e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode()) && !is_refused(&error_chain(e))
}

/// Whether an error text says the connection was refused.
pub fn is_refused(detail: &str) -> bool {
    detail.to_ascii_lowercase().contains("connection refused")
}

/// Library wording a user cannot act on, said plainly (the original stays after it).
fn plain(text: String) -> String {
    const SAID: &[(&str, &str)] = &[
        (
            "tunnel error: unsuccessful",
            "the HTTP proxy (HTTPS_PROXY) refused to open a connection to the host; allow it on the proxy or list \
             the host in NO_PROXY",
        ),
        ("dns error", "the host name does not resolve (check the URL and the pod's DNS)"),
        (
            "pool timed out while waiting for an open connection",
            "no database connection could be opened in time (source.connect_timeout_seconds): check host and port, \
             and that the network path (security group, NAT) allows it",
        ),
        ("connection refused", "nothing accepts connections there (check the URL and port)"),
        ("certificate", "the server's TLS certificate was not accepted"),
    ];
    let lower = text.to_ascii_lowercase();
    match SAID.iter().find(|(k, _)| lower.contains(k)) {
        Some((_, said)) => format!("{said} ({text})"),
        None => text,
    }
}

/// An error and all its causes on one line, in plain words where the library's are terse.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    plain(raw_chain(e))
}

/// An error and all its causes on one line: reqwest's own message omits the cause
/// ("connection refused", "certificate expired") that a user needs.
fn raw_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn status_classification() {
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(is_transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409] {
            assert!(!is_transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
