//! BigQuery: REST for datasets, tables and queries; the Storage Write API for rows.
//!
//! A table's rows go into a staging table through a PENDING stream, so nothing is visible
//! until the stream is committed; then one multi-statement transaction replaces the target's
//! rows with the staging table's, and the staging table is dropped (it also expires on its
//! own in case a run dies first).

pub mod encode;
pub mod error;
mod load;
pub mod rest;
pub mod schema;
pub mod write;

use std::sync::Arc;

use async_trait::async_trait;

use self::error::SinkError;
use self::load::BigQueryLoad;
use self::rest::RestClient;
use self::write::WriteClient;
use super::{Sink, TableLoad};
use crate::auth::endpoints::{self, Policy, Service};
use crate::auth::TokenSource;
use crate::config::{Destination, GoogleConfig, TableConfig};
use crate::source::TableSchema;

pub struct BigQuerySink {
    pub(crate) rest: RestClient,
    pub(crate) write: WriteClient,
    pub(crate) dest: Destination,
    pub(crate) run_id: String,
}

impl BigQuerySink {
    pub fn new(
        google: &GoogleConfig,
        dest: &Destination,
        tokens: Arc<dyn TokenSource>,
        http: reqwest::Client,
        run_id: String,
    ) -> Result<Self, SinkError> {
        // Our own endpoints get the access token: the same HTTPS rule as the credential config.
        let policy = Policy { allow_insecure: google.allow_insecure_endpoints };
        endpoints::check(policy, Service::BigQuery, "google.bigquery_url", google.bigquery_url.as_str())
            .map_err(SinkError::Config)?;
        endpoints::check(
            policy,
            Service::BigQueryStorage,
            "google.storage_write_url",
            google.storage_write_url.as_str(),
        )
        .map_err(SinkError::Config)?;
        let rest = RestClient::new(
            http,
            &google.bigquery_url,
            tokens.clone(),
            dest.project.clone(),
            dest.location.clone(),
        );
        let write = WriteClient::new(&google.storage_write_url, tokens)?;
        Ok(Self { rest, write, dest: dest.clone(), run_id })
    }

    /// Checks the dataset is there and readable before any table starts.
    pub async fn check_dataset(&self) -> Result<(), SinkError> {
        self.rest.get_dataset(&self.dest.dataset).await.map(|_| ())
    }

    pub fn rest(&self) -> &RestClient {
        &self.rest
    }

    /// `projects/P/datasets/D/tables/T`, the Storage Write API's name for a table.
    pub(crate) fn table_path(&self, table: &str) -> String {
        format!("projects/{}/datasets/{}/tables/{table}", self.dest.project, self.dest.dataset)
    }
}

#[async_trait]
impl Sink for Arc<BigQuerySink> {
    async fn begin(
        &self,
        table: &TableConfig,
        schema: &TableSchema,
    ) -> Result<Box<dyn TableLoad>, SinkError> {
        Ok(Box::new(BigQueryLoad::begin(self.clone(), table, schema).await?))
    }
}
