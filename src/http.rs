//! The shared HTTP client for STS, IAM Credentials and BigQuery REST, and the one way to
//! send a call through it: under the retry policy, with [`crate::retry::transient`]'s rule.

use std::future::Future;
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};

use crate::describe;
use crate::retry::{self, Policy, Verdict, transient};

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

/// The last answer of a call: its status and body, and whether it was transient (the
/// policy ran out on it).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub attempts: u32,
    pub transient: bool,
}

/// Why a call got no answer.
#[derive(Debug)]
pub enum Failure<E> {
    /// Preparing the request failed (e.g. no access token): the caller's own error.
    Prepare(E),
    /// No answer arrived; `detail` is the error chain in plain words.
    Transport { detail: String, attempts: u32, transient: bool },
}

enum Attempt<E> {
    Prepare(E),
    Transport(reqwest::Error),
    Status(Answer, Verdict),
}

/// Sends the request `build` prepares (once per attempt, so a token can be fresh) and
/// returns the last answer. Transient answers and transport failures are retried under
/// `policy`; `prepare_verdict` says whether a failure to prepare may pass.
pub async fn send<E, F, Fut>(
    policy: &Policy,
    prepare_verdict: impl Fn(&E) -> Verdict,
    build: F,
) -> Result<Answer, Failure<E>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<RequestBuilder, E>>,
{
    let verdict = |a: &Attempt<E>| match a {
        Attempt::Prepare(e) => prepare_verdict(e),
        Attempt::Transport(e) => transient::transport(e),
        Attempt::Status(_, v) => *v,
    };
    let result = retry::retry(policy, verdict, |attempts| {
        let req = build();
        async move {
            let resp = req.await.map_err(Attempt::Prepare)?.send().await.map_err(Attempt::Transport)?;
            let (status, headers) = (resp.status(), resp.headers().clone());
            let body = resp.text().await.map_err(Attempt::Transport)?;
            let v = transient::http(status, &headers, &body);
            let answer = Answer { status, body, attempts, transient: v.is_transient() };
            if v.is_transient() { Err(Attempt::Status(answer, v)) } else { Ok(answer) }
        }
    })
    .await;
    result.or_else(|g| match g.error {
        Attempt::Status(answer, _) => Ok(answer),
        Attempt::Prepare(e) => Err(Failure::Prepare(e)),
        Attempt::Transport(e) => Err(Failure::Transport {
            detail: describe::error_chain(&e),
            attempts: g.attempts,
            transient: transient::transport(&e).is_transient(),
        }),
    })
}

/// The start of a response body for a message; Google's error bodies carry no secrets.
pub fn snippet(body: &str) -> String {
    let t = body.trim();
    if t.len() > 500 { format!("{}…", &t[..t.floor_char_boundary(500)]) } else { t.to_owned() }
}
