//! One HTTP call of the chain with the shared retry policy: transient failures (network,
//! 408, 429, 5xx) are retried; any other answer is returned for the caller to read.

use reqwest::{RequestBuilder, StatusCode};

use super::{AuthError, Link};
use crate::retry::{self, Policy};

enum Failure {
    Transport(reqwest::Error),
    Status(StatusCode, String),
}

/// Sends the request `build` makes (once per attempt) and returns the final status and body.
pub async fn send(
    link: Link,
    policy: &Policy,
    build: impl Fn() -> RequestBuilder,
) -> Result<(StatusCode, String), AuthError> {
    let result = retry::retry(
        policy,
        |f: &Failure| match f {
            Failure::Transport(e) => crate::http::is_transient_transport(e),
            Failure::Status(s, _) => crate::http::is_transient_status(*s),
        },
        |_| async {
            let resp = build().send().await.map_err(Failure::Transport)?;
            let status = resp.status();
            let body = resp.text().await.map_err(Failure::Transport)?;
            if crate::http::is_transient_status(status) {
                return Err(Failure::Status(status, body));
            }
            Ok((status, body))
        },
    )
    .await;
    match result {
        Ok(ok) => Ok(ok),
        Err(gave_up) => {
            let problem = match &gave_up.error {
                // reqwest's message names the URL but never the body or headers.
                Failure::Transport(e) => crate::http::error_chain(e),
                Failure::Status(s, body) => format!("HTTP {s}: {}", snippet(body)),
            };
            let transient = match &gave_up.error {
                Failure::Transport(e) => crate::http::is_transient_transport(e),
                Failure::Status(..) => true,
            };
            if transient {
                Err(AuthError::Transient { link, problem, attempts: gave_up.attempts })
            } else {
                let fix = crate::http::is_refused(&problem).then(|| {
                    "nothing answers at that URL: check the credential config's URLs (token_url, \
                     service_account_impersonation_url) and that the pod may reach them"
                        .to_string()
                });
                Err(AuthError::broken(link, problem, fix))
            }
        }
    }
}

/// The start of a response body for a message; bodies from STS and IAM carry no secrets.
pub fn snippet(body: &str) -> String {
    let t = body.trim();
    if t.len() > 500 { format!("{}…", &t[..t.floor_char_boundary(500)]) } else { t.to_owned() }
}
