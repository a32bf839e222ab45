//! A latency-only BigQuery REST API for benchmarks. It keeps table resources by name, answers
//! every query job as finished with no rows, and delays every answer by a fixed latency, as
//! real BigQuery's round trips and job times would.
//!
//! It checks no SQL: bqemulator does that in the tests. This measures how well a run overlaps
//! its per-table calls, which bqemulator cannot show. It serves one DuckDB connection, and the
//! tests run its loads one at a time because concurrent ones can deadlock it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
struct Fake {
    latency: Duration,
    /// Table resources by `dataset.table`.
    tables: Mutex<HashMap<String, Value>>,
    calls: AtomicU64,
    queries: AtomicU64,
    /// Calls waiting out their latency now, and the most there ever were: how far a run
    /// overlaps its calls.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// The REST router; `latency` delays every answer.
pub fn router(latency: Duration) -> Router {
    let fake = Arc::new(Fake { latency, ..Fake::default() });
    Router::new()
        .route("/bigquery/v2/projects/{p}/datasets/{d}", get(dataset))
        .route("/bigquery/v2/projects/{p}/datasets/{d}/tables", get(list).post(create))
        .route("/bigquery/v2/projects/{p}/datasets/{d}/tables/{t}", get(table).patch(patch).delete(delete))
        .route("/bigquery/v2/projects/{p}/queries", axum::routing::post(query))
        .route("/bigquery/v2/projects/{p}/queries/{job}", get(query_results))
        .route("/fake/stats", get(stats))
        .with_state(fake)
}

/// Counts the call, checks it carries a token, and waits out the latency.
async fn arrive(fake: &Fake, headers: &HeaderMap) -> Result<(), Response> {
    fake.calls.fetch_add(1, Ordering::Relaxed);
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    fake.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counted out even when the client gives up mid-wait (the handler is dropped).
    struct Leave<'a>(&'a AtomicU64);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _leave = Leave(&fake.in_flight);
    tokio::time::sleep(fake.latency).await;
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.len() > 7);
    if !bearer {
        return Err(error(StatusCode::UNAUTHORIZED, "Request is missing required authentication credential."));
    }
    Ok(())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"code": status.as_u16(), "message": message, "status": status.as_str()}})))
        .into_response()
}

type Fk = State<Arc<Fake>>;

async fn dataset(State(f): Fk, h: HeaderMap, Path((p, d)): Path<(String, String)>) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    Json(json!({"datasetReference": {"projectId": p, "datasetId": d}, "location": "US"})).into_response()
}

async fn list(State(f): Fk, h: HeaderMap, Path((_p, d)): Path<(String, String)>) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    let prefix = format!("{d}.");
    let tables: Vec<Value> = f
        .tables
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| json!({"tableReference": v["tableReference"]}))
        .collect();
    Json(json!({"tables": tables})).into_response()
}

async fn create(
    State(f): Fk,
    h: HeaderMap,
    Path((_p, d)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    let Some(t) = body["tableReference"]["tableId"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "tableReference.tableId is required");
    };
    let mut tables = f.tables.lock().unwrap();
    let key = format!("{d}.{t}");
    if tables.contains_key(&key) {
        return error(StatusCode::CONFLICT, &format!("Already Exists: Table {key}"));
    }
    tables.insert(key, body.clone());
    Json(body).into_response()
}

async fn table(State(f): Fk, h: HeaderMap, Path((_p, d, t)): Path<(String, String, String)>) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    match f.tables.lock().unwrap().get(&format!("{d}.{t}")) {
        Some(v) => Json(v.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("Not found: Table {d}.{t}")),
    }
}

async fn patch(
    State(f): Fk,
    h: HeaderMap,
    Path((_p, d, t)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    let mut tables = f.tables.lock().unwrap();
    let Some(v) = tables.get_mut(&format!("{d}.{t}")) else {
        return error(StatusCode::NOT_FOUND, &format!("Not found: Table {d}.{t}"));
    };
    // tables.patch replaces the fields it is given (schema, description, ...).
    for (k, val) in body.as_object().into_iter().flatten() {
        v[k.as_str()] = val.clone();
    }
    Json(v.clone()).into_response()
}

async fn delete(State(f): Fk, h: HeaderMap, Path((_p, d, t)): Path<(String, String, String)>) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    match f.tables.lock().unwrap().remove(&format!("{d}.{t}")) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("Not found: Table {d}.{t}")),
    }
}

/// Every job finishes within the call, with no rows: a table's state reads as never loaded.
async fn query(State(f): Fk, h: HeaderMap, Path(p): Path<String>) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    let n = f.queries.fetch_add(1, Ordering::Relaxed) + 1;
    Json(finished(&p, &format!("job_{n}"))).into_response()
}

async fn query_results(State(f): Fk, h: HeaderMap, Path((p, job)): Path<(String, String)>) -> Response {
    if let Err(e) = arrive(&f, &h).await {
        return e;
    }
    Json(finished(&p, &job)).into_response()
}

fn finished(project: &str, job: &str) -> Value {
    json!({
        "kind": "bigquery#queryResponse",
        "jobReference": {"projectId": project, "jobId": job, "location": "US"},
        "jobComplete": true,
        "totalRows": "0",
        "rows": [],
        "schema": {"fields": []},
    })
}

async fn stats(State(f): Fk) -> Json<Value> {
    Json(json!({
        "calls": f.calls.load(Ordering::Relaxed),
        "queries": f.queries.load(Ordering::Relaxed),
        "max_in_flight": f.max_in_flight.load(Ordering::SeqCst),
        "tables": f.tables.lock().unwrap().len(),
    }))
}
