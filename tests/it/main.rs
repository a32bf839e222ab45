//! Every integration test, as one binary: one link step instead of twenty on two cores, and
//! one copy of the shared fixtures in `common` (databases, the emulated credential chain,
//! bqemulator, comparisons). Each module is what used to be a test file; nextest's filters
//! name them as `module::test`.

mod common;
mod draw;

mod architecture;
mod auth_chain;
mod auth_faults;
mod auth_refresh;
mod auth_sources;
mod crash;
mod doctor;
mod generative;
mod hangs;
mod incremental_load;
mod incremental_window;
mod late_commits;
mod manifests;
mod many_tables;
mod mysql_chunks;
mod mysql_tls;
mod mysql_types;
mod observe;
mod operate;
mod overlap;
mod pg_e2e;
mod pg_tls;
mod pg_types;
mod rds_iam;
mod run_control;
mod schema_evolution;
mod setup;
mod shards;
mod split_tables;
mod staging_check;
mod storage_write_faults;
mod trust;
