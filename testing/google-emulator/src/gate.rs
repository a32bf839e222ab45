//! An authenticating reverse proxy in front of bqemulator (which accepts any token): a
//! request passes only with an unexpired access token this emulator issued, so the tests
//! prove that aurora2bq really sends the token the chain produced, on REST and gRPC alike.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::state::State;

struct Gate {
    state: Arc<State>,
    upstream: String,
    grpc: bool,
    client: Client<HttpConnector, Body>,
}

pub fn router(state: Arc<State>, upstream: &str, grpc: bool) -> Router {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(grpc);
    let gate = Arc::new(Gate {
        state,
        upstream: upstream.trim_end_matches('/').to_owned(),
        grpc,
        client: builder.build_http(),
    });
    Router::new().fallback(forward).with_state(gate)
}

async fn forward(AxState(g): AxState<Arc<Gate>>, mut req: Request) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if g.state.token_info(token).is_none() {
        g.state.gate_count(false);
        return refuse(g.grpc);
    }
    g.state.gate_count(true);
    if !g.grpc
        && let Some(denied) = missing_permission(&g.state, token, &req)
    {
        return denied;
    }
    if !g.grpc && req.method() == axum::http::Method::POST && req.uri().path().ends_with("/queries") {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
            return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
        };
        let labels = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("labels").cloned())
            .unwrap_or(serde_json::Value::Null);
        g.state.query_labels.lock().unwrap_or_else(|e| e.into_inner()).push(labels);
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(uri) = format!("{}{path}", g.upstream).parse::<Uri>() else {
        return (StatusCode::BAD_GATEWAY, "bad upstream URI").into_response();
    };
    *req.uri_mut() = uri;
    req.headers_mut().remove("host");
    match g.client.request(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
    }
}

/// BigQuery's 403 when the token's service account lacks the permission the request needs.
/// Modelled: `bigquery.jobs.create` (roles/bigquery.jobUser, for query jobs) and
/// `bigquery.tables.create` (roles/bigquery.dataEditor, for creating tables in a dataset).
fn missing_permission(state: &State, token: &str, req: &Request) -> Option<Response> {
    let email = state.token_info(token)?.email?;
    let path = req.uri().path();
    let post = req.method() == axum::http::Method::POST;
    let project = path.split("/projects/").nth(1)?.split('/').next()?.to_owned();
    let needed = if post && (path.ends_with("/queries") || path.ends_with("/jobs")) {
        "bigquery.jobs.create"
    } else if post && path.ends_with("/tables") {
        "bigquery.tables.create"
    } else {
        return None;
    };
    let cfg = state.config.read().expect("config lock");
    let sa = cfg.service_accounts.iter().find(|s| s.email == email)?;
    if !sa.missing_permissions.iter().any(|p| p == needed) {
        return None;
    }
    let message = if needed == "bigquery.jobs.create" {
        format!(
            "Access Denied: Project {project}: User does not have bigquery.jobs.create permission in project {project}."
        )
    } else {
        let dataset = path.split("/datasets/").nth(1)?.split('/').next()?;
        format!(
            "Access Denied: Dataset {project}:{dataset}: Permission bigquery.tables.create denied on dataset \
             {project}:{dataset} (or it may not exist)."
        )
    };
    Some(
        (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED",
                "errors": [{"message": message, "domain": "global", "reason": "accessDenied"}]}})),
        )
            .into_response(),
    )
}

/// 401 with Google's envelope for REST; a trailers-only UNAUTHENTICATED for gRPC.
fn refuse(grpc: bool) -> Response {
    if grpc {
        let mut r = Response::new(Body::empty());
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from_static("16"));
        h.insert("grpc-message", HeaderValue::from_static("Request had invalid authentication credentials."));
        return r;
    }
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}})),
    )
        .into_response()
}
