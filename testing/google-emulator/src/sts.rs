//! `POST /v1/token`: the STS token exchange, checked the way Google checks it, answering
//! with Google's error bodies (docs/architecture.md, "The credential chain").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{Map, Value, json};

use crate::config::{Endpoint, ProviderConfig};
use crate::state::{State, TokenInfo, now_secs};
use crate::{cel, keys};

/// Clock skew Google tolerates on `exp` (observed).
const SKEW_SECS: i64 = 60;

fn err(code: &str, description: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": code, "error_description": description.into()}))).into_response()
}

pub async fn token(
    AxState(s): AxState<Arc<State>>,
    headers: axum::http::HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    s.count(Endpoint::Sts);
    if headers.contains_key("x-goog-user-project") {
        s.quota_header_seen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if let Some(r) = s.fault(Endpoint::Sts).await {
        return r;
    }
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return err("unsupported_grant_type", format!("Invalid value for \"grant_type\": {}", field("grant_type")));
    }
    if field("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token" {
        return err("invalid_request", "Invalid value for \"requested_token_type\".");
    }
    if !matches!(
        field("subject_token_type"),
        "urn:ietf:params:oauth:token-type:jwt" | "urn:ietf:params:oauth:token-type:id_token"
    ) {
        return err("invalid_request", "Invalid value for \"subject_token_type\".");
    }
    if field("subject_token").is_empty() {
        return err("invalid_request", "Missing value for \"subject_token\".");
    }
    let audience = field("audience");
    let provider = find_provider(&s, audience);
    let Some((provider, pool_path)) = provider.filter(|(p, _)| !p.disabled) else {
        return err(
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid. This might either be \
             because the pool or provider is disabled or deleted or because it doesn't exist.",
        );
    };
    match verify(&s, &provider, audience, field("subject_token")) {
        Err(r) => r,
        Ok((claims, exp)) => map_and_issue(&s, &provider, &pool_path, claims, exp),
    }
}

/// The provider named by `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/V`.
fn find_provider(s: &State, audience: &str) -> Option<(ProviderConfig, String)> {
    let cfg = s.config.read().expect("config lock");
    let rest = audience.strip_prefix("//iam.googleapis.com/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ["projects", n, "locations", "global", "workloadIdentityPools", pool, "providers", prov] = parts.as_slice()
    else {
        return None;
    };
    if *n != cfg.project_number {
        return None;
    }
    let p = cfg.providers.iter().find(|p| p.pool == *pool && p.provider == *prov)?.clone();
    Some((p, format!("projects/{n}/locations/global/workloadIdentityPools/{pool}")))
}

/// Issuer, keys, signature, expiry and audience, in that order.
fn verify(s: &State, p: &ProviderConfig, audience: &str, token: &str) -> Result<(Value, i64), Response> {
    let parsed = keys::parse(token).ok_or_else(|| err("invalid_grant", "Unable to parse the ID Token."))?;
    let iss = parsed.claims["iss"].as_str().unwrap_or_default().to_owned();
    let expected = p.issuer_uri.clone().unwrap_or_else(|| s.issuer.clone());
    if iss != expected {
        return Err(err(
            "invalid_grant",
            format!("The issuer in ID Token {iss} does not match the expected ones: [{expected}]."),
        ));
    }
    let jwks =
        s.jwks_of(&iss).ok_or_else(|| err("invalid_grant", "Error connecting to the given credential's issuer."))?;
    let kid = parsed.header["kid"].as_str().unwrap_or_default();
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| err("invalid_grant", "Error connecting to the given credential's issuer."))?;
    if !keys::verify(&parsed, key) {
        return Err(err("invalid_grant", "Unable to verify the ID Token signature."));
    }
    let (iat, exp) = (parsed.claims["iat"].as_i64(), parsed.claims["exp"].as_i64());
    let (Some(iat), Some(exp)) = (iat, exp) else {
        return Err(err("invalid_grant", "ID Token issued at 0 is stale to sign-in."));
    };
    if exp + SKEW_SECS < now_secs() {
        return Err(err("invalid_grant", format!("ID Token issued at {iat} is stale to sign-in.")));
    }
    let auds: Vec<String> = match &parsed.claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let allowed: Vec<String> = if p.allowed_audiences.is_empty() {
        let full = audience.trim_start_matches("//");
        vec![format!("//{full}"), format!("https://{full}")]
    } else {
        p.allowed_audiences.clone()
    };
    if !auds.iter().any(|a| allowed.contains(a)) {
        return Err(err(
            "invalid_grant",
            format!("The audience in ID Token [{}] does not match the expected audience.", auds.join(", ")),
        ));
    }
    Ok((parsed.claims, exp))
}

/// Attribute mapping, the 127-byte subject limit, the condition; then a federated token.
fn map_and_issue(s: &State, p: &ProviderConfig, pool: &str, claims: Value, exp: i64) -> Response {
    let mut vars = Map::new();
    vars.insert("assertion".into(), claims);
    let mut mapping = p.attribute_mapping.clone();
    mapping.entry("google.subject".into()).or_insert_with(|| "assertion.sub".into());
    let mut google = Map::new();
    let mut attributes = Map::new();
    for (key, expr) in &mapping {
        let v = match cel::eval(expr, &vars) {
            Ok(v) => v,
            Err(e) => return err("invalid_request", format!("Failed to evaluate attribute mapping {key}: {e}")),
        };
        match key.split_once('.') {
            Some(("google", k)) => google.insert(k.to_owned(), v),
            Some(("attribute", k)) => attributes.insert(k.to_owned(), v),
            _ => None,
        };
    }
    let subject = google.get("subject").and_then(Value::as_str).unwrap_or_default().to_owned();
    if subject.len() > 127 {
        return err(
            "invalid_request",
            "The size of mapped attribute google.subject exceeds the 127 bytes limit. Either modify your \
             attribute mapping or the incoming assertion to produce a shorter subject.",
        );
    }
    if let Some(cond) = &p.attribute_condition {
        vars.insert("google".into(), Value::Object(google.clone()));
        vars.insert("attribute".into(), Value::Object(attributes.clone()));
        if cel::eval(cond, &vars).ok() != Some(Value::Bool(true)) {
            return err("unauthorized_client", "The given credential is rejected by the attribute condition.");
        }
    }
    // The federated token lives at most an hour and never beyond the subject token.
    let lifetime = (exp - now_secs()).clamp(1, 3600) as u64;
    let token = s.issue(
        "emu-sts",
        TokenInfo {
            email: None,
            pool: pool.to_owned(),
            subject,
            attributes,
            expires_at: SystemTime::now() + Duration::from_secs(lifetime),
        },
    );
    Json(json!({
        "access_token": token,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": lifetime,
    }))
    .into_response()
}
