//! The `aurora2bq` binary: parse the command line, run, map the outcome to an exit code.
//! Everything else lives in the library so tests can drive it.

use std::process::ExitCode;

fn main() -> ExitCode {
    aurora2bq::cli::main()
}
