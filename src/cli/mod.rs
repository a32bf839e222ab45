//! The command line: parse arguments, set up logging, run one command, map its outcome to
//! an exit code. Commands live one per file.

mod cred_config;
mod doctor;
mod extract;
mod logging;
mod run;
mod state;
mod termination;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in the README.
pub mod exit {
    /// Every table loaded.
    pub const OK: u8 = 0;
    /// At least one table failed; the others committed.
    pub const TABLE_FAILED: u8 = 1;
    /// Nothing ran: bad config, unreachable source or destination, broken credentials.
    pub const SETUP_FAILED: u8 = 2;
    /// Stopped by SIGTERM or SIGINT.
    pub const STOPPED: u8 = 3;
}

#[derive(Parser)]
#[command(name = "aurora2bq", version, about = "Copy Aurora (PostgreSQL, MySQL) tables into BigQuery, exactly once")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy every table in the config.
    #[command(after_help = run::EXAMPLES)]
    Run(run::Args),
    /// Show or reset each table's stored state (watermark, last load, last run).
    State(state::Args),
    /// Check every link from the pod's token to the source tables, and say how to fix the first broken one.
    Doctor(doctor::DoctorArgs),
    /// Read every table as a run would and discard the rows (measures and checks the source side).
    Extract(extract::Args),
    /// Print an access token from the configured credentials (for debugging, like gcloud auth print-access-token).
    Token(doctor::TokenArgs),
    /// Write an external_account credential config for an EKS pod (like gcloud's create-cred-config).
    CredConfig(cred_config::Args),
}

pub fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    if let Command::CredConfig(args) = cli.command {
        return ExitCode::from(cred_config::run(args));
    }
    // One id per invocation: on every JSON log line, in the run history and on BigQuery jobs.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    logging::init(&run_id);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aurora2bq: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SETUP_FAILED);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args, run_id).await,
            Command::State(args) => state::state(args, run_id).await,
            Command::Doctor(args) => doctor::doctor(args).await,
            Command::Token(args) => doctor::token(args).await,
            Command::Extract(args) => extract::extract(args).await,
            Command::CredConfig(_) => unreachable!("handled before the runtime starts"),
        }
    });
    // Do not wait for stray tasks (a hung connection) at exit: the CronJob must end.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    ExitCode::from(code)
}

/// A batch's Arrow buffers are large and short-lived. After the first such buffer is freed,
/// glibc raises its mmap threshold and serves the next ones from heap arenas that it seldom
/// gives back, so the peak grows with the run; a fixed threshold keeps them mapped and
/// returned, and peak memory follows the pipeline's depth, not the table's size
/// (docs/bench.md: the peak stops at about 55 MiB instead of creeping past 80).
#[allow(unsafe_code, reason = "the crate's one unsafe call: an FFI setter with no pointers")]
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called once, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Prints an error with its whole cause chain, for people, on stderr.
pub(crate) fn report(context: &str, e: &anyhow::Error) {
    eprintln!("aurora2bq: {context}: {e:#}");
}
