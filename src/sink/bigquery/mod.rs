//! BigQuery: REST for datasets, tables and queries; the Storage Write API for rows.
//!
//! A table's rows go into a staging table through a PENDING stream, so nothing is visible
//! until the stream is committed; then one multi-statement transaction replaces the target's
//! rows with the staging table's, and the staging table is dropped (it also expires on its
//! own in case a run dies first).

mod cleanup;
pub mod encode;
pub mod error;
mod load;
pub mod parts;
pub mod rest;
pub mod runs;
pub mod schema;
mod sql;
pub mod state;
mod target;
pub mod write;

pub use target::{Evolution, TargetPlan};

use std::sync::Arc;

use async_trait::async_trait;

use self::error::SinkError;
use self::load::BigQueryLoad;
use self::rest::RestClient;
use self::write::WriteClient;
use super::{LoadPlan, Prior, RunRecord, Sink, TableLoad};
use crate::auth::TokenSource;
use crate::config::{Destination, GoogleConfig, TableConfig};
use crate::trust::{self, Service};

/// Cheap to clone: the clients share their connections, so each table's load holds its own.
#[derive(Clone)]
pub struct BigQuerySink {
    pub(crate) rest: RestClient,
    pub(crate) write: WriteClient,
    pub(crate) dest: Destination,
    pub(crate) run_id: String,
    pub(crate) cleanup: cleanup::Cleanup,
    /// The history table is known to exist (`prepare` made sure).
    runs_ready: Arc<std::sync::atomic::AtomicBool>,
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
        let policy = google.endpoint_policy();
        trust::check(&policy, Service::BigQuery, "google.bigquery_url", google.bigquery_url.as_str())
            .map_err(SinkError::Config)?;
        trust::check(&policy, Service::BigQueryStorage, "google.storage_write_url", google.storage_write_url.as_str())
            .map_err(SinkError::Config)?;
        let rest =
            RestClient::new(http, &google.bigquery_url, tokens.clone(), dest.project.clone(), dest.location.clone())
                .with_retry(google.retry)
                .with_member(&google.credentials, &dest.dataset)
                .with_labels(&run_id, None);
        let write = WriteClient::new(&google.storage_write_url, tokens)?
            .with_retry(google.retry)
            .with_call_timeout(google.request_timeout);
        Ok(Self {
            rest,
            write,
            dest: dest.clone(),
            run_id,
            cleanup: cleanup::Cleanup::default(),
            runs_ready: Arc::default(),
        })
    }

    /// Checks the dataset is there and readable, and that the state and history tables
    /// exist, before any table starts: three round trips at once, the dataset's error first.
    pub async fn prepare(&self) -> Result<(), SinkError> {
        let (state, runs) = (self.state(), self.runs());
        let (dataset, state, runs) =
            tokio::join!(self.rest.get_dataset(&self.dest.dataset), state.ensure(), runs.ensure());
        dataset?;
        state?;
        runs?;
        self.runs_ready.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn runs(&self) -> runs::RunsTable<'_> {
        runs::RunsTable { rest: &self.rest, project: &self.dest.project, dataset: &self.dest.dataset }
    }

    pub(crate) fn state(&self) -> state::StateStore<'_> {
        state::StateStore { rest: &self.rest, project: &self.dest.project, dataset: &self.dest.dataset }
    }

    /// Creates a scratch table, opens a PENDING write stream on it and finalizes it (so
    /// nothing is ever committed), then drops the table: the permissions a run needs.
    pub async fn write_probe(&self) -> Result<(), SinkError> {
        let table = format!("_aurora2bq_doctor_probe_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let fields = [crate::bq_model::BqField::scalar("probe", crate::bq_model::BqType::Int64)];
        let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        let ms = expires.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let resource = schema::table_resource(
            &self.dest.project,
            &self.dest.dataset,
            &table,
            &fields,
            Some(ms),
            Some("aurora2bq doctor probe"),
        );
        self.rest.create_table(&self.dest.dataset, &resource).await?;
        let streamed = async {
            let stream = self.write.create_pending_stream(&self.table_path(&table)).await?;
            self.write.finalize(&stream).await
        }
        .await;
        let dropped = self.rest.delete_table(&self.dest.dataset, &table).await;
        streamed?;
        dropped
    }

    /// What loading `schema` would do to `table`'s target (create it, or which columns it would
    /// add or widen), or the refusal a load would stop with; changes nothing.
    pub async fn plan_target(
        &self,
        table: &TableConfig,
        schema: &crate::source::TableSchema,
    ) -> Result<TargetPlan, SinkError> {
        target::plan(self, table, &load::target_fields(table, &schema.fields())).await
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
impl Sink for BigQuerySink {
    async fn prior(&self, table: &TableConfig) -> Result<Prior, SinkError> {
        self.state().prior(&table.target).await
    }

    async fn priors(&self, targets: &[&str]) -> Result<std::collections::HashMap<String, Prior>, SinkError> {
        self.state().priors(targets).await
    }

    async fn agree_split(
        &self,
        target: &str,
        group: &str,
        proposal: crate::config::SplitPlan,
    ) -> Result<crate::config::SplitPlan, SinkError> {
        parts::agree(self, target, group, proposal).await
    }

    async fn begin(&self, plan: LoadPlan<'_>) -> Result<Box<dyn TableLoad>, SinkError> {
        Ok(Box::new(BigQueryLoad::begin(self.clone(), plan).await?))
    }

    async fn record_run(&self, records: &[RunRecord]) -> Result<(), SinkError> {
        let ready = self.runs_ready.load(std::sync::atomic::Ordering::Relaxed);
        self.runs().append(records, ready).await
    }

    async fn settle(&self) {
        self.cleanup.settle().await
    }
}
