//! BigQuery REST v2: datasets, tables and query jobs. Each call carries a fresh access
//! token, is retried under the shared policy when the failure may pass, and reports
//! Google's error message with a fix where one is known.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::error::SinkError;
use crate::auth::AuthError;
use crate::auth::TokenSource;
use crate::config::CredentialsFrom;
use crate::http::Failure;
use crate::retry::{Policy, Verdict};

#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<dyn TokenSource>,
    retry: Policy,
    pub project: String,
    pub location: Option<String>,
    /// For permission fixes: the credential (whose member BigQuery sees), and the dataset.
    credentials: Option<CredentialsFrom>,
    dataset: String,
    /// Labels on every query job, so a job in BigQuery's history leads back to its run.
    labels: serde_json::Map<String, Value>,
}

/// A finished query's result rows, as BigQuery's JSON (`rows[].f[].v`).
#[derive(Debug, Default)]
pub struct QueryResult {
    pub rows: Vec<Vec<Value>>,
    pub affected_rows: Option<i64>,
    pub job_id: String,
}

impl RestClient {
    pub fn new(
        http: reqwest::Client,
        base: &url::Url,
        tokens: Arc<dyn TokenSource>,
        project: String,
        location: Option<String>,
    ) -> Self {
        let base = base.as_str().trim_end_matches('/').to_owned();
        Self {
            http,
            base,
            tokens,
            retry: Policy::STANDARD,
            project,
            location,
            credentials: None,
            dataset: "DATASET".into(),
            labels: serde_json::Map::new(),
        }
    }

    /// Which credential the calls run as and on which dataset, so that permission errors
    /// name both (the member is worked out only when an error needs it).
    pub fn with_member(mut self, credentials: &CredentialsFrom, dataset: &str) -> Self {
        self.credentials = Some(credentials.clone());
        self.dataset = dataset.to_owned();
        self
    }

    /// Labels query jobs with the run id and, for one table's load, the table.
    pub fn with_labels(mut self, run_id: &str, table: Option<&str>) -> Self {
        self.labels.insert("aurora2bq_run".into(), json!(label_value(run_id)));
        if let Some(t) = table {
            self.labels.insert("aurora2bq_table".into(), json!(label_value(t)));
        }
        self
    }

    pub fn with_retry(mut self, retry: Policy) -> Self {
        self.retry = retry;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}/bigquery/v2/projects/{}{path}", self.base, self.project)
    }

    /// Sends one call with retries; returns the status and JSON body of the last answer
    /// that was not transient.
    async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), SinkError> {
        let url = self.url(path);
        let answer = crate::http::send(
            &self.retry,
            |e: &AuthError| Verdict::from_bool(e.is_transient()),
            || async {
                let token = self.tokens.token().await?;
                let req = self.http.request(method.clone(), &url).query(query).bearer_auth(token.token.expose());
                Ok(match body {
                    Some(b) => req.json(b),
                    None => req,
                })
            },
        )
        .await
        .map_err(|f| match f {
            Failure::Prepare(e) => SinkError::Auth(e),
            Failure::Transport { detail, attempts, .. } => {
                SinkError::Transport { what: what.to_owned(), detail, attempts }
            }
        })?;
        let v: Value = if answer.body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&answer.body).unwrap_or_else(|_| json!({ "raw": answer.body }))
        };
        if answer.transient {
            return Err(http_error(what, answer.status, &v, self));
        }
        Ok((answer.status, v))
    }

    /// Checks the dataset exists and can be read; the error says how to create or grant it.
    pub async fn get_dataset(&self, dataset: &str) -> Result<Value, SinkError> {
        let what = format!("reading dataset {}:{dataset}", self.project);
        let (status, v) = self.call(&what, Method::GET, &format!("/datasets/{dataset}"), &[], None).await?;
        ok_or(status, v, &what, self)
    }

    pub async fn list_tables(&self, dataset: &str) -> Result<Vec<String>, SinkError> {
        let what = format!("listing tables of {}:{dataset}", self.project);
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("maxResults", "1000".to_string())];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let (status, v) = self.call(&what, Method::GET, &format!("/datasets/{dataset}/tables"), &q, None).await?;
            let v = ok_or(status, v, &what, self)?;
            for t in v["tables"].as_array().into_iter().flatten() {
                if let Some(id) = t["tableReference"]["tableId"].as_str() {
                    names.push(id.to_owned());
                }
            }
            match v["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    /// The table resource, or `None` if there is no such table.
    pub async fn get_table(&self, dataset: &str, table: &str) -> Result<Option<Value>, SinkError> {
        let what = format!("reading table {dataset}.{table}");
        let (status, v) =
            self.call(&what, Method::GET, &format!("/datasets/{dataset}/tables/{table}"), &[], None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        ok_or(status, v, &what, self).map(Some)
    }

    /// Creates the table `resource` describes unless it exists: reading first, so that a run
    /// needs the create permission only once.
    pub async fn ensure_table(&self, dataset: &str, resource: &Value) -> Result<(), SinkError> {
        let table = resource["tableReference"]["tableId"].as_str().unwrap_or_default();
        if self.get_table(dataset, table).await?.is_some() {
            return Ok(());
        }
        self.create_table(dataset, resource).await
    }

    /// Creates a table; an existing one (e.g. from a retried create) is not an error.
    pub async fn create_table(&self, dataset: &str, resource: &Value) -> Result<(), SinkError> {
        self.create_table_once(dataset, resource).await.map(|_| ())
    }

    /// Creates a table unless one of that name exists; `false` if it did. The one atomic
    /// step BigQuery offers between processes: split tables' plans rely on it.
    pub async fn create_table_once(&self, dataset: &str, resource: &Value) -> Result<bool, SinkError> {
        let table = resource["tableReference"]["tableId"].as_str().unwrap_or("?");
        let what = format!("creating table {dataset}.{table}");
        let (status, v) =
            self.call(&what, Method::POST, &format!("/datasets/{dataset}/tables"), &[], Some(resource)).await?;
        if status == StatusCode::CONFLICT {
            return Ok(false);
        }
        ok_or(status, v, &what, self).map(|_| true)
    }

    /// Changes a table's properties given in `body` (tables.patch).
    pub async fn patch_table(&self, dataset: &str, table: &str, body: &Value) -> Result<(), SinkError> {
        let what = format!("updating table {dataset}.{table}");
        let (status, v) =
            self.call(&what, Method::PATCH, &format!("/datasets/{dataset}/tables/{table}"), &[], Some(body)).await?;
        ok_or(status, v, &what, self).map(|_| ())
    }

    /// Replaces a table's schema through tables.patch (fields may only be added or widened).
    pub async fn patch_schema(&self, dataset: &str, table: &str, schema: &Value) -> Result<(), SinkError> {
        let what = format!("updating the schema of {dataset}.{table}");
        let body = json!({ "schema": schema });
        let (status, v) =
            self.call(&what, Method::PATCH, &format!("/datasets/{dataset}/tables/{table}"), &[], Some(&body)).await?;
        ok_or(status, v, &what, self).map(|_| ())
    }

    /// Deletes a table; one already gone is not an error.
    pub async fn delete_table(&self, dataset: &str, table: &str) -> Result<(), SinkError> {
        let what = format!("deleting table {dataset}.{table}");
        let (status, v) =
            self.call(&what, Method::DELETE, &format!("/datasets/{dataset}/tables/{table}"), &[], None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        ok_or(status, v, &what, self).map(|_| ())
    }

    /// Runs GoogleSQL to completion and returns its rows. A request id makes a retried
    /// call return the first call's job instead of running the statement twice.
    pub async fn query(&self, what: &str, sql: &str, deadline: Duration) -> Result<QueryResult, SinkError> {
        let started = Instant::now();
        let mut body = json!({
            "query": sql,
            "useLegacySql": false,
            "timeoutMs": 10_000,
            "requestId": uuid::Uuid::new_v4().to_string(),
            "formatOptions": { "useInt64Timestamp": true },
        });
        if let Some(l) = &self.location {
            body["location"] = json!(l);
        }
        if !self.labels.is_empty() {
            body["labels"] = Value::Object(self.labels.clone());
        }
        let (status, mut v) = self.call(what, Method::POST, "/queries", &[], Some(&body)).await?;
        v = ok_or(status, v, what, self)?;
        let job_id = v["jobReference"]["jobId"].as_str().unwrap_or_default().to_owned();
        let job_location = v["jobReference"]["location"].as_str().map(str::to_owned);
        while v["jobComplete"] != json!(true) {
            if started.elapsed() > deadline {
                return Err(SinkError::Query {
                    what: what.to_owned(),
                    message: format!("job {job_id} did not finish within {}s", deadline.as_secs()),
                });
            }
            let mut q = vec![("timeoutMs", "10000".to_string()), ("formatOptions.useInt64Timestamp", "true".into())];
            if let Some(l) = &job_location {
                q.push(("location", l.clone()));
            }
            let (status, next) = self.call(what, Method::GET, &format!("/queries/{job_id}"), &q, None).await?;
            v = ok_or(status, next, what, self)?;
        }
        query_failure(what, &v)?;
        let rows = v["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r["f"].as_array().map(|f| f.iter().map(|c| c["v"].clone()).collect()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let affected_rows = v["numDmlAffectedRows"].as_str().and_then(|s| s.parse().ok());
        Ok(QueryResult { rows, affected_rows, job_id })
    }
}

/// A finished job can still carry its failure in the body (`errors`, `status.errorResult`).
fn query_failure(what: &str, v: &Value) -> Result<(), SinkError> {
    let first = v["status"]["errorResult"]["message"]
        .as_str()
        .or_else(|| v["errors"].as_array().and_then(|e| e.first()).and_then(|e| e["message"].as_str()));
    match first {
        Some(m) => Err(SinkError::Query { what: what.to_owned(), message: m.to_owned() }),
        None => Ok(()),
    }
}

/// A BigQuery label value: lowercase letters, digits, `_` and `-`, at most 63 characters.
fn label_value(s: &str) -> String {
    s.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(63)
        .collect()
}

fn ok_or(status: StatusCode, v: Value, what: &str, c: &RestClient) -> Result<Value, SinkError> {
    if status.is_success() { Ok(v) } else { Err(http_error(what, status, &v, c)) }
}

fn http_error(what: &str, status: StatusCode, v: &Value, c: &RestClient) -> SinkError {
    let message = v["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
        let s = v.to_string();
        s.chars().take(300).collect()
    });
    let fix = match status.as_u16() {
        401 => Some("the access token was refused: run `aurora2bq doctor` to check the credential chain".into()),
        403 => {
            let member = c.credentials.as_ref().and_then(crate::auth::member::of);
            Some(crate::auth::member::permission_fix(&message, member.as_deref(), &c.project, &c.dataset))
        }
        404 if what.starts_with("reading dataset") => Some(format!(
            "create the dataset: bq mk --dataset --location={} {}:DATASET, or fix destination.dataset",
            c.location.as_deref().unwrap_or("US"),
            c.project
        )),
        _ => None,
    };
    let transient = crate::retry::transient::http(status, &reqwest::header::HeaderMap::new(), &v.to_string());
    SinkError::Http {
        what: what.to_owned(),
        status: status.as_u16(),
        message,
        fix,
        transient: transient.is_transient(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_follow_bigquerys_rules() {
        assert_eq!(label_value("Orders.2024 (EU)"), "orders_2024__eu_");
        assert_eq!(label_value(&"x".repeat(100)).len(), 63);
        assert_eq!(label_value("0a1b-c_d"), "0a1b-c_d");
    }
}
