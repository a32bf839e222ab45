//! What `run` and `plan` share before their tables: the config file, the tables named on the
//! command line, and pattern entries expanded against the source's catalog.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::select::{Selected, Selection};
use crate::config::shard::Shard;
use crate::config::{self, Config, ShardPart};
use crate::source::{self, Source};

/// The config file of a command.
#[derive(clap::Args)]
pub struct ConfigFile {
    /// The TOML config file.
    #[arg(long, short, env = "AURORA2BQ_CONFIG")]
    pub config: PathBuf,
}

/// Which shard of a run this process is.
#[derive(clap::Args)]
pub struct ShardArg {
    /// Take only this shard's tables: INDEX/COUNT (0-based), e.g. 0/4. In an Indexed Job,
    /// JOB_COMPLETION_INDEX with AURORA2BQ_SHARDS (or run.shards) says the same.
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<String>,
    /// The run the shards belong to, the same for all of them and new for every run: where
    /// they meet in BigQuery to commit a table split across them (`split_across_shards`). In
    /// an Indexed Job, the Job's name (k8s/components/indexed-job sets it).
    #[arg(long, value_name = "NAME", env = "AURORA2BQ_SHARD_GROUP")]
    pub shard_group: Option<String>,
}

impl ShardArg {
    pub fn resolve(&self, config: &Config) -> anyhow::Result<Option<Shard>> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Shard::resolve(
            self.shard.as_deref(),
            env("JOB_COMPLETION_INDEX").as_deref(),
            env("AURORA2BQ_SHARDS").as_deref(),
            config.run.shards,
        )
        .map_err(anyhow::Error::msg)
    }
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
/// then the selection applied, then this shard's share taken.
pub async fn choose(
    source: &dyn Source,
    config: &Config,
    selection: &Selection,
    shard: Option<Shard>,
    group: Option<&str>,
) -> anyhow::Result<Selected> {
    let (tables, notes) =
        source::expand_patterns(source, &config.tables).await.context("listing the source's tables")?;
    for note in notes {
        tracing::warn!("{note}");
    }
    let mut selected = selection.apply(&tables).map_err(anyhow::Error::msg)?;
    if let Some(shard) = shard {
        let all = selected.tables.len();
        for t in selected.tables.iter_mut().filter(|t| t.split_across_shards && shard.count > 1) {
            let group = group.map(group_name).filter(|g| !g.is_empty()).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} is split across the shards (split_across_shards), and they meet in BigQuery under the run's \
                     name: set --shard-group NAME (or AURORA2BQ_SHARD_GROUP), the same for every shard and new for \
                     every run; in an Indexed Job, k8s/components/indexed-job sets it to the Job's name",
                    t.source_name()
                )
            })?;
            let mine = shard.chunks_of(&t.target, t.parallel_chunks);
            t.part = Some(ShardPart { group, shard: shard.index, chunks: t.parallel_chunks, mine, plan: None });
        }
        let split = |t: &config::TableConfig| t.part.as_ref().is_some_and(|p| !p.mine.is_empty());
        let whole = |t: &config::TableConfig| t.part.is_none() && shard.owns(&t.target);
        selected.tables.retain(|t| split(t) || whole(t));
        let kept: Vec<String> = selected.tables.iter().map(|t| t.target.clone()).collect();
        selected.reload.retain(|t| kept.contains(t));
        tracing::info!(
            shard = format!("{}/{}", shard.index, shard.count),
            tables = selected.tables.len(),
            of = all,
            "this shard's tables"
        );
    }
    Ok(selected)
}

/// The group as BigQuery table names can carry it: letters, digits and `_`, at most 40.
fn group_name(g: &str) -> String {
    g.chars()
        .filter_map(|c| match c {
            c if c.is_ascii_alphanumeric() => Some(c),
            '-' | '_' | '.' => Some('_'),
            _ => None,
        })
        .take(40)
        .collect()
}
