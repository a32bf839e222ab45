//! One HTTP call of the chain through the shared sender ([`crate::http::send`]): transient
//! failures are retried there; any other answer is returned for the caller to read.

use std::convert::Infallible;

use reqwest::{RequestBuilder, StatusCode};

use super::{AuthError, Link};
use crate::http::{self, Failure};
use crate::retry::Policy;

/// Sends the request `build` makes (once per attempt) and returns the final status and body.
pub async fn send(
    link: Link,
    policy: &Policy,
    build: impl Fn() -> RequestBuilder,
) -> Result<(StatusCode, String), AuthError> {
    let result =
        http::send(policy, |e: &Infallible| match *e {}, || std::future::ready(Ok::<_, Infallible>(build()))).await;
    match result {
        Ok(a) if a.transient => Err(AuthError::Transient {
            link,
            problem: format!("HTTP {}: {}", a.status, http::snippet(&a.body)),
            attempts: a.attempts,
        }),
        Ok(a) => Ok((a.status, a.body)),
        Err(Failure::Prepare(never)) => match never {},
        // reqwest's message names the URL but never the body or headers.
        Err(Failure::Transport { detail, attempts, transient: true }) => {
            Err(AuthError::Transient { link, problem: detail, attempts })
        }
        Err(Failure::Transport { detail, .. }) => {
            let fix = crate::describe::is_refused(&detail).then(|| {
                "nothing answers at that URL: check the credential config's URLs (token_url, \
                 service_account_impersonation_url) and that the pod may reach them"
                    .to_string()
            });
            Err(AuthError::broken(link, detail, fix))
        }
    }
}
