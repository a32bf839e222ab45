//! Talks to bqemulator directly (not through the gates): creates datasets and reads back
//! what aurora2bq loaded, so the tests check the destination independently of the tool.

use serde_json::{Value, json};

pub struct Bq {
    rest: String,
    http: reqwest::Client,
}

impl Bq {
    pub fn new() -> Bq {
        Bq { rest: super::env_var("AURORA2BQ_TEST_BQ_REST"), http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/bigquery/v2/projects/test-project{path}", self.rest)
    }

    pub async fn create_dataset(&self) -> String {
        let name = super::unique("ds");
        let body = json!({"datasetReference": {"projectId": "test-project", "datasetId": name}, "location": "US"});
        let r = self.http.post(self.url("/datasets")).json(&body).send().await.expect("create dataset");
        assert!(r.status().is_success(), "create dataset: {}", r.text().await.unwrap_or_default());
        name
    }

    pub async fn tables(&self, dataset: &str) -> Vec<String> {
        let v: Value =
            self.http.get(self.url(&format!("/datasets/{dataset}/tables"))).send().await.unwrap().json().await.unwrap();
        v["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["tableReference"]["tableId"].as_str().map(String::from))
            .collect()
    }

    pub async fn table(&self, dataset: &str, table: &str) -> Option<Value> {
        let r = self.http.get(self.url(&format!("/datasets/{dataset}/tables/{table}"))).send().await.unwrap();
        if r.status() == 404 { None } else { Some(r.json().await.unwrap()) }
    }

    /// Every row of a table as raw REST values (`f[].v`), in no particular order.
    pub async fn rows(&self, dataset: &str, table: &str) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("maxResults", "20000".to_string()), ("formatOptions.useInt64Timestamp", "true".into())];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let v: Value = self
                .http
                .get(self.url(&format!("/datasets/{dataset}/tables/{table}/data")))
                .query(&q)
                .send()
                .await
                .expect("tabledata.list")
                .json()
                .await
                .expect("tabledata.list JSON");
            let rows = v["rows"].as_array().cloned().unwrap_or_default();
            let n = rows.len();
            for r in rows {
                out.push(r["f"].as_array().unwrap().iter().map(|c| c["v"].clone()).collect());
            }
            match v["pageToken"].as_str() {
                Some(t) if n > 0 => token = Some(t.to_owned()),
                _ => return out,
            }
        }
    }

    /// The dataset's location as its resource says.
    pub async fn dataset_location(&self, dataset: &str) -> String {
        let v: Value =
            self.http.get(self.url(&format!("/datasets/{dataset}"))).send().await.unwrap().json().await.unwrap();
        v["location"].as_str().unwrap_or("US").to_owned()
    }

    pub async fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let body = json!({"query": sql, "useLegacySql": false, "formatOptions": {"useInt64Timestamp": true}});
        let v: Value = self.http.post(self.url("/queries")).json(&body).send().await.unwrap().json().await.unwrap();
        assert!(v["errors"].is_null(), "query {sql}: {}", v["errors"]);
        v["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["f"].as_array().unwrap().iter().map(|c| c["v"].clone()).collect())
            .collect()
    }
}
