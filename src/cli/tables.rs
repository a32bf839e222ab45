//! What `run` and `plan` share before their tables: the config file, the tables named on the
//! command line, and pattern entries expanded against the source's catalog.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::select::{Selected, Selection};
use crate::config::{self, Config};
use crate::source::{self, Source};

/// The config file of a command.
#[derive(clap::Args)]
pub struct ConfigFile {
    /// The TOML config file.
    #[arg(long, short, env = "AURORA2BQ_CONFIG")]
    pub config: PathBuf,
}

/// Names given on the command line, without the empty one that an option given no value
/// leaves (`--full-refresh` alone).
pub fn names(v: &[String]) -> Vec<String> {
    v.iter().filter(|s| !s.is_empty()).cloned().collect()
}

/// Loads the config and checks the selection's names before any connection, unless pattern
/// entries are still to be expanded: then [`choose`] checks them.
pub fn load(path: &Path, selection: &Selection) -> anyhow::Result<Config> {
    let config = config::load(path)?;
    if config::select::pattern_schemas(&config.tables).is_empty() {
        selection.apply(&config.tables).map_err(anyhow::Error::msg)?;
    }
    Ok(config)
}

/// The tables the command covers: pattern entries expanded (what they left out is logged),
/// then the selection applied.
pub async fn choose(source: &dyn Source, config: &Config, selection: &Selection) -> anyhow::Result<Selected> {
    let (tables, notes) =
        source::expand_patterns(source, &config.tables).await.context("listing the source's tables")?;
    for note in notes {
        tracing::warn!("{note}");
    }
    selection.apply(&tables).map_err(anyhow::Error::msg)
}
