//! `aurora2bq doctor`: checks every link from the pod's token to the source tables, in the
//! order a run uses them, and stops at the first broken one with what is wrong and the fix.

mod aws;
mod chain;
mod checks;
mod report;

use std::path::PathBuf;

pub use report::{Check, Report, Status};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// aurora2bq's config; without it only the credential chain is checked.
    pub config: Option<PathBuf>,
    /// Also create and delete a table, and open a write stream on it.
    pub write_probe: bool,
}

/// Runs the checks in order; a failure marks every later check as not run.
pub async fn run(options: &Options) -> Report {
    checks::Doctor::new(options.clone()).run().await
}
