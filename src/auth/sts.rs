//! Link 3: the STS token exchange (RFC 8693), docs/architecture.md. The subject token goes in
//! the form body; nothing else identifies the caller. No quota-project header is sent.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::diagnose::{self, ChainContext};
use super::{AccessToken, AuthError, Link, call};
use crate::retry::Policy;
use crate::secret::Secret;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub struct StsRequest<'a> {
    pub token_url: &'a str,
    pub audience: &'a str,
    pub subject_token: &'a Secret,
    pub subject_token_type: &'a str,
    pub scope: &'a str,
    pub client_auth: Option<&'a (String, Secret)>,
}

#[derive(Deserialize)]
struct Success {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OauthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

pub async fn exchange(
    http: &reqwest::Client,
    policy: &Policy,
    req: &StsRequest<'_>,
    now: SystemTime,
    cx: &ChainContext,
) -> Result<AccessToken, AuthError> {
    let form = [
        ("grant_type", GRANT_TYPE),
        ("audience", req.audience),
        ("scope", req.scope),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("subject_token", req.subject_token.expose()),
        ("subject_token_type", req.subject_token_type),
    ];
    let (status, body) = call::send(Link::StsExchange, policy, || {
        let mut b = http.post(req.token_url).form(&form);
        if let Some((id, secret)) = req.client_auth {
            b = b.basic_auth(id, Some(secret.expose()));
        }
        b
    })
    .await?;
    if status.is_success() {
        return parse_success(&body, now);
    }
    match serde_json::from_str::<OauthError>(&body) {
        Ok(e) => Err(diagnose::sts_error(&e.error, &e.error_description, cx)),
        Err(_) => Err(AuthError::broken(
            Link::StsExchange,
            format!("{} answered HTTP {status}: {}", req.token_url, crate::http::snippet(&body)),
            Some("check token_url in the credential config points at Google STS".into()),
        )),
    }
}

/// `expires_in` may be missing, zero, or a string; expiry counts from the local clock at
/// request time, as Google's libraries do.
fn parse_success(body: &str, now: SystemTime) -> Result<AccessToken, AuthError> {
    let bad = |p: String| AuthError::broken(Link::StsExchange, p, None);
    let s: Success =
        serde_json::from_str(body).map_err(|e| bad(format!("STS answered 200 with an unreadable body: {e}")))?;
    let secs = match &s.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(t)) => t.trim().parse::<i64>().ok(),
        _ => None,
    };
    let secs = match secs {
        Some(n) if n > 0 => n as u64,
        Some(n) => return Err(bad(format!("STS returned expires_in {n}; a token must last"))),
        // Google always sends it; if absent, assume the documented hour.
        None => 3600,
    };
    if s.access_token.is_empty() {
        return Err(bad("STS answered 200 without an access_token".into()));
    }
    Ok(AccessToken { token: Secret::new(s.access_token), expires_at: now + Duration::from_secs(secs) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_as_number_string_or_missing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t = parse_success(r#"{"access_token":"a","expires_in":3599}"#, now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(3599));
        let t = parse_success(r#"{"access_token":"a","expires_in":"120"}"#, now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(120));
        let t = parse_success(r#"{"access_token":"a"}"#, now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(3600));
        assert!(parse_success(r#"{"access_token":"a","expires_in":0}"#, now).is_err());
        assert!(parse_success(r#"{"expires_in":10}"#, now).is_err());
    }
}
