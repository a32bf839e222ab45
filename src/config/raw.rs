//! The config file exactly as written: serde structs that refuse unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub source: Spanned<RawSource>,
    pub destination: Spanned<RawDestination>,
    #[serde(default)]
    pub google: RawGoogle,
    #[serde(default)]
    pub run: RawRun,
    #[serde(default)]
    pub metrics: RawMetrics,
    pub tables: Option<Spanned<Vec<Spanned<RawTable>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub engine: Spanned<String>,
    pub url_env: Option<Spanned<String>>,
    pub url_file: Option<Spanned<String>>,
    pub application_name: Option<Spanned<String>>,
    pub statement_timeout_seconds: Option<Spanned<u64>>,
    pub connect_timeout_seconds: Option<Spanned<u64>>,
    pub ca_file: Option<Spanned<String>>,
    pub zero_dates: Option<Spanned<String>>,
    pub auth: Option<Spanned<String>>,
    pub aws_region: Option<Spanned<String>>,
    pub aws_role_arn: Option<Spanned<String>>,
    pub aws_token_file: Option<Spanned<String>>,
    pub aws_sts_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub project: Spanned<String>,
    pub dataset: Spanned<String>,
    pub location: Option<Spanned<String>>,
    pub staging_expiration_hours: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGoogle {
    pub credentials: Option<Spanned<String>>,
    pub access_token_file: Option<Spanned<String>>,
    pub bigquery_url: Option<Spanned<String>>,
    pub storage_write_url: Option<Spanned<String>>,
    pub allow_insecure_endpoints: Option<bool>,
    pub universe_domain: Option<Spanned<String>>,
    pub request_timeout_seconds: Option<Spanned<u64>>,
    pub retry: Option<RawRetry>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<Spanned<u64>>,
    pub initial_delay_ms: Option<Spanned<u64>>,
    pub max_delay_seconds: Option<Spanned<u64>>,
    pub deadline_seconds: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    pub batch_rows: Option<Spanned<u64>>,
    pub batch_bytes: Option<Spanned<u64>>,
    pub table_concurrency: Option<Spanned<u64>>,
    pub table_timeout_minutes: Option<Spanned<u64>>,
    pub heartbeat_seconds: Option<Spanned<u64>>,
    pub shards: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub pushgateway_url: Option<Spanned<String>>,
    pub job: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    pub source: Option<Spanned<String>>,
    /// With a pattern source: tables (names, `*` and `?`) it leaves out.
    pub exclude: Option<Spanned<Vec<String>>>,
    pub query: Option<Spanned<String>>,
    pub target: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub cursor: Option<Spanned<String>>,
    pub lookback: Option<Spanned<i64>>,
    pub key: Option<Vec<String>>,
    pub soft_delete_column: Option<Spanned<String>>,
    pub keys_as_bytes: Option<Spanned<bool>>,
    #[serde(default)]
    pub rename: BTreeMap<String, Spanned<String>>,
    pub columns: Option<Vec<String>>,
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    #[serde(default)]
    pub cast: BTreeMap<String, Spanned<String>>,
    pub parallel_chunks: Option<Spanned<u64>>,
    pub split_across_shards: Option<Spanned<bool>>,
    pub partition: Option<Spanned<RawPartition>>,
    pub cluster_by: Option<Vec<String>>,
    pub description: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub metadata_columns: Option<bool>,
    pub schema_changes: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPartition {
    pub column: String,
    /// HOUR, DAY, MONTH or YEAR for time columns.
    pub granularity: Option<String>,
    /// Integer-range partitioning.
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub interval: Option<i64>,
}
