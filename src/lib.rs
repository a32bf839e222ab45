//! aurora2bq copies Amazon Aurora (PostgreSQL, MySQL) tables into Google BigQuery.
//!
//! Data flows `config` → `source` (Arrow batches) → `sink::bigquery` (Storage Write API,
//! PENDING streams into a staging table) → one BigQuery transaction into the target.
//! `auth` supplies the access token for every Google call from Workload Identity Federation.

/// The version on every log line, in the run history and in `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from (build.rs), for `--version`.
pub const COMMIT: &str = env!("AURORA2BQ_COMMIT");

/// `aurora2bq --version`: the version and the commit.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("AURORA2BQ_COMMIT"), ")");

pub mod auth;
pub mod aws;
pub mod bq_model;
pub mod cli;
pub mod config;
pub mod describe;
pub mod doctor;
pub mod failpoint;
pub mod http;
pub mod pipeline;
pub mod retry;
pub mod secret;
pub mod sink;
pub mod source;
pub mod trust;
