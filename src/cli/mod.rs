//! The command line: parse arguments, set up logging, run one command, map its outcome to
//! an exit code. Commands live one per file.

mod cred_config;
mod doctor;
mod extract;
mod logging;
mod plan;
mod run;
mod setup;
mod state;
mod tables;
mod termination;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in the README. 1 and 2 are failures a retry cannot fix (the
/// CronJob's podFailurePolicy fails the Job on them); 4 is one a retry may fix.
pub mod exit {
    /// Every table loaded.
    pub const OK: u8 = 0;
    /// At least one table failed for a reason a retry will not fix; the others committed.
    pub const TABLE_FAILED: u8 = 1;
    /// Nothing ran: bad config, broken credentials, missing permissions or dataset.
    pub const SETUP_FAILED: u8 = 2;
    /// Stopped by SIGTERM or SIGINT.
    pub const STOPPED: u8 = 3;
    /// Failed only for reasons that may pass (network, Google 5xx or rate limits, the source
    /// unreachable): a retry may succeed, and whatever committed stays committed.
    pub const TRANSIENT: u8 = 4;
}

#[derive(Parser)]
#[command(
    name = "aurora2bq",
    version = crate::LONG_VERSION,
    about = "Copy Aurora (PostgreSQL, MySQL) tables into BigQuery, exactly once",
    after_help = "Examples:\n  aurora2bq doctor -c config.toml\n  aurora2bq run -c config.toml\n  aurora2bq state show -c \
                  config.toml\n\nExit codes: 0 ok, 1 a table failed (retry will not help), 2 nothing ran (config, \
                  credentials, permissions), 3 stopped by a signal, 4 failed for reasons that may pass (retry)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy every table in the config.
    #[command(after_help = run::EXAMPLES)]
    Run(run::Args),
    /// Show what a run would do, writing nothing: column mapping, target changes, window, estimates, refusals.
    #[command(after_help = plan::EXAMPLES)]
    Plan(plan::Args),
    /// Show or reset each table's stored state (watermark, last load, last run).
    #[command(
        after_help = "Examples:\n  aurora2bq state show -c config.toml\n  aurora2bq state reset -c config.toml orders"
    )]
    State(state::Args),
    /// Check every link from the pod's token to the source tables, and say how to fix the first broken one.
    #[command(after_help = doctor::DOCTOR_EXAMPLES)]
    Doctor(doctor::DoctorArgs),
    /// Read every table as a run would and discard the rows (measures and checks the source side).
    #[command(after_help = "Examples:\n  aurora2bq extract -c config.toml")]
    Extract(extract::Args),
    /// Print an access token from the configured credentials (for debugging, like gcloud auth print-access-token).
    #[command(after_help = "Examples:\n  curl -H \"Authorization: Bearer $(aurora2bq token -c config.toml)\" \\\n    \
                            https://bigquery.googleapis.com/bigquery/v2/projects/my-project/datasets")]
    Token(doctor::TokenArgs),
    /// Write an external_account credential config for an EKS pod (like gcloud's create-cred-config).
    #[command(after_help = cred_config::EXAMPLES)]
    CredConfig(cred_config::Args),
    /// Generate the keyless set-up (AWS role and policy, database grants, Google pool, provider and roles, credential config, kustomize overlay) from the config and a few names.
    #[command(after_help = setup::EXAMPLES)]
    Setup(Box<setup::Args>),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  aurora2bq completions bash > /etc/bash_completion.d/aurora2bq\n  aurora2bq \
                            completions zsh > \"${fpath[1]}/_aurora2bq\"\n  aurora2bq completions fish > \
                            ~/.config/fish/completions/aurora2bq.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

pub fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::CredConfig(args) => return ExitCode::from(cred_config::run(args)),
        Command::Setup(args) => return ExitCode::from(setup::run(*args)),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "aurora2bq",
                &mut std::io::stdout(),
            );
            return ExitCode::from(exit::OK);
        }
        command => Cli { command },
    };
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
            Command::Plan(args) => plan::plan(args, run_id).await,
            Command::Doctor(args) => doctor::doctor(args).await,
            Command::Token(args) => doctor::token(args).await,
            Command::Extract(args) => extract::extract(args).await,
            Command::CredConfig(_) | Command::Setup(_) | Command::Completions { .. } => exit::OK,
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
