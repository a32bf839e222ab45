//! `POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`: impersonation,
//! allowed only to principals holding roles/iam.workloadIdentityUser (docs/architecture.md, "The credential chain").

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::Endpoint;
use crate::state::{State, TokenInfo};

fn google_error(code: u16, status: &str, message: String, reason: Option<&str>) -> Response {
    let mut body = json!({"error": {"code": code, "message": message, "status": status}});
    if let Some(r) = reason {
        body["error"]["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": r,
            "domain": "iam.googleapis.com",
            "metadata": {"permission": "iam.serviceAccounts.getAccessToken"},
        }]);
    }
    (StatusCode::from_u16(code).expect("valid status"), Json(body)).into_response()
}

pub async fn generate_access_token(
    AxState(s): AxState<Arc<State>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    s.count(Endpoint::Iam);
    if let Some(r) = s.fault(Endpoint::Iam).await {
        return r;
    }
    let Some(email) =
        rest.strip_prefix("projects/-/serviceAccounts/").and_then(|r| r.strip_suffix(":generateAccessToken"))
    else {
        return google_error(404, "NOT_FOUND", format!("Method not found: {rest}"), None);
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(caller) = s.token_info(bearer) else {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
             or other valid authentication credential."
                .into(),
            Some("ACCESS_TOKEN_TYPE_UNSUPPORTED"),
        );
    };
    if headers.contains_key("x-goog-user-project") {
        s.quota_header_seen.store(true, std::sync::atomic::Ordering::SeqCst);
        return google_error(
            403,
            "PERMISSION_DENIED",
            "Caller does not have required permission to use project. Grant the caller the \
             roles/serviceusage.serviceUsageConsumer role."
                .into(),
            Some("USER_PROJECT_DENIED"),
        );
    }
    let members = {
        let cfg = s.config.read().expect("config lock");
        match cfg.service_accounts.iter().find(|a| a.email == email) {
            Some(a) => a.workload_identity_users.clone(),
            None => {
                return google_error(404, "NOT_FOUND", format!("Not found; Gaia id not found for email {email}"), None);
            }
        }
    };
    if !allowed(&caller, &members) {
        return google_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).".into(),
            Some("IAM_PERMISSION_DENIED"),
        );
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let lifetime = body["lifetime"].as_str().unwrap_or("3600s");
    let secs: i64 = lifetime.trim_end_matches('s').parse().unwrap_or(-1);
    if secs <= 0 {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Lifetime of access token must be larger then zero.".into(),
            None,
        );
    }
    if secs > 3600 {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "The lifetime of the requested access token can not have lifetimes of more than 1 hour \
             without the constraints/iam.allowServiceAccountCredentialLifetimeExtension policy."
                .into(),
            None,
        );
    }
    let expires = SystemTime::now() + Duration::from_secs(secs as u64);
    let token = s.issue("emu-sa", TokenInfo { email: Some(email.to_owned()), expires_at: expires, ..caller });
    let expire_time = chrono::DateTime::<chrono::Utc>::from(expires).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Json(json!({"accessToken": token, "expireTime": expire_time})).into_response()
}

/// principal://…/subject/SUB, principalSet://…/attribute.K/V, principalSet://…/*.
fn allowed(caller: &TokenInfo, members: &[String]) -> bool {
    let base = format!("iam.googleapis.com/{}", caller.pool);
    members.iter().any(|m| {
        if *m == format!("principal://{base}/subject/{}", caller.subject) || *m == format!("principalSet://{base}/*") {
            return true;
        }
        caller
            .attributes
            .iter()
            .any(|(k, v)| v.as_str().is_some_and(|v| *m == format!("principalSet://{base}/attribute.{k}/{v}")))
    })
}
