//! Puts the commit into `aurora2bq --version`: `AURORA2BQ_COMMIT` when the build sets it (the
//! Dockerfile passes it as a build argument, having no .git), else git's short HEAD, else
//! "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=AURORA2BQ_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let from_env = std::env::var("AURORA2BQ_COMMIT").ok().filter(|c| !c.trim().is_empty());
    let from_git = || {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !commit.is_empty()).then_some(commit)
    };
    let commit = from_env.or_else(from_git).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AURORA2BQ_COMMIT={commit}");
}
