//! Link 4: IAM Credentials `generateAccessToken`, docs/architecture.md. The federated STS token
//! is the bearer; the answer is the service account's own access token. No quota-project
//! header (it turns the call into USER_PROJECT_DENIED).

use std::time::SystemTime;

use serde::Deserialize;

use super::credentials::Impersonation;
use super::diagnose::{self, ChainContext, GoogleError};
use super::{AccessToken, AuthError, Link, call};
use crate::retry::Policy;
use crate::secret::Secret;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Success {
    access_token: String,
    expire_time: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: GoogleError,
}

pub async fn generate(
    http: &reqwest::Client,
    policy: &Policy,
    imp: &Impersonation,
    sts_token: &Secret,
    scope: &str,
    now: SystemTime,
    cx: &ChainContext,
) -> Result<AccessToken, AuthError> {
    let body = serde_json::json!({
        "scope": [scope],
        "lifetime": format!("{}s", imp.lifetime_secs),
    });
    let (status, text) =
        call::send(Link::Impersonation, policy, || http.post(&imp.url).bearer_auth(sts_token.expose()).json(&body))
            .await?;
    if status.is_success() {
        return parse_success(&text, now);
    }
    match serde_json::from_str::<Envelope>(&text) {
        Ok(env) => Err(diagnose::iam_error(status.as_u16(), &env.error, imp, cx)),
        Err(_) => Err(AuthError::broken(
            Link::Impersonation,
            format!("{} answered HTTP {status}: {}", imp.url, crate::http::snippet(&text)),
            None,
        )),
    }
}

/// `expireTime` is RFC 3339, with or without fractional seconds. One already in the past
/// is reported, not panicked on (a bug seen in other clients).
fn parse_success(body: &str, now: SystemTime) -> Result<AccessToken, AuthError> {
    let bad = |p: String| AuthError::broken(Link::Impersonation, p, None);
    let s: Success = serde_json::from_str(body)
        .map_err(|e| bad(format!("generateAccessToken answered 200 with an unreadable body: {e}")))?;
    let expires = chrono::DateTime::parse_from_rfc3339(&s.expire_time)
        .map_err(|e| bad(format!("expireTime {:?} is not RFC 3339: {e}", s.expire_time)))?;
    let expires_at: SystemTime = expires.with_timezone(&chrono::Utc).into();
    if expires_at <= now {
        return Err(bad(format!(
            "generateAccessToken returned a token that already expired at {}; check this \
             machine's clock",
            s.expire_time
        )));
    }
    Ok(AccessToken { token: Secret::new(s.access_token), expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expire_time_with_and_without_fraction_and_in_the_past() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_629_936_000); // 2021-08-26T00:00:00Z
        let t = parse_success(r#"{"accessToken":"a","expireTime":"2021-08-26T00:57:30Z"}"#, now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(57 * 60 + 30));
        let t = parse_success(r#"{"accessToken":"a","expireTime":"2021-08-26T00:57:30.250Z"}"#, now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_millis((57 * 60 + 30) * 1000 + 250));
        let e = parse_success(r#"{"accessToken":"a","expireTime":"2021-08-25T00:00:00Z"}"#, now).unwrap_err();
        assert!(e.to_string().contains("already expired"));
        assert!(parse_success(r#"{"accessToken":"a","expireTime":"tomorrow"}"#, now).is_err());
    }
}
