//! `aurora2bq doctor` and `aurora2bq token`.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::exit;
use crate::doctor::{self, Options};

pub const DOCTOR_EXAMPLES: &str = "Examples:
  aurora2bq doctor                          # the credential chain only
  aurora2bq doctor -c config.toml           # every link, to the source tables
  aurora2bq doctor -c config.toml --write-probe --json";

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// aurora2bq's config; without it only the credential chain is checked.
    #[arg(long, short, env = "AURORA2BQ_CONFIG")]
    config: Option<PathBuf>,
    /// Also create and drop a scratch table and open a write stream on it.
    #[arg(long)]
    write_probe: bool,
    /// Print the checklist as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn doctor(a: DoctorArgs) -> u8 {
    let report = doctor::run(&Options { config: a.config, write_probe: a.write_probe }).await;
    if a.json {
        println!("{}", report.render_json());
    } else {
        if std::io::stdout().is_terminal() {
            println!("aurora2bq doctor: checking each link in the order a run uses it\n");
        }
        print!("{}", report.render_text());
    }
    if report.ok { exit::OK } else { exit::SETUP_FAILED }
}

#[derive(clap::Args)]
pub struct TokenArgs {
    /// aurora2bq's config (its [google] section); without it the default credentials.
    #[arg(long, short, env = "AURORA2BQ_CONFIG")]
    config: Option<PathBuf>,
}

/// Prints an access token, like `gcloud auth print-access-token`, for debugging with curl.
pub async fn token(a: TokenArgs) -> u8 {
    let google = match &a.config {
        Some(p) => match crate::config::load(p) {
            Ok(c) => c.google,
            Err(e) => {
                eprintln!("aurora2bq: {e}");
                return exit::SETUP_FAILED;
            }
        },
        None => crate::config::GoogleConfig::default(),
    };
    let http = crate::http::client(google.request_timeout);
    let result = async { crate::auth::from_config(&google, http)?.token().await }.await;
    match result {
        Ok(t) => {
            println!("{}", t.token.expose());
            exit::OK
        }
        Err(e) => {
            eprintln!("aurora2bq: {e}");
            exit::SETUP_FAILED
        }
    }
}
