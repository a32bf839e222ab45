//! `aurora2bq state show` and `state reset`: what each table's watermark is and when it was
//! last loaded, and forgetting watermarks, without hand-written SQL against the state table.

use std::io::{BufRead, IsTerminal, Write};

use super::exit;
use crate::config::{self, TableConfig, TableSource};
use crate::sink::bigquery::runs::LastRun;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List each table's mode, watermark, last load, rows and run, and its last run's outcome.
    #[command(
        after_help = "Examples:\n  aurora2bq state show -c config.toml\n  aurora2bq state show -c config.toml --json"
    )]
    Show {
        #[command(flatten)]
        config: super::tables::ConfigFile,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Forget the watermarks of tables (one atomic statement): their next run reads them from the start.
    #[command(after_help = "Examples:\n  aurora2bq state reset -c config.toml orders\n  aurora2bq state reset -c \
                             config.toml 'public.*' --yes")]
    Reset {
        #[command(flatten)]
        config: super::tables::ConfigFile,
        /// Tables, named as in the config (target, source or source table name; * and ? allowed).
        #[arg(required = true)]
        tables: Vec<String>,
        /// Do not ask (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

pub async fn state(args: Args, run_id: String) -> u8 {
    let result = match args.command {
        Command::Show { config, json } => show(&config.config, json, &run_id).await,
        Command::Reset { config, tables, yes } => reset(&config.config, &tables, yes, &run_id).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            super::report("state", &e);
            exit::SETUP_FAILED
        }
    }
}

async fn show(path: &std::path::Path, json: bool, run_id: &str) -> anyhow::Result<u8> {
    let config = config::load(path)?;
    let sink = super::run::bigquery(&config, run_id)?;
    let rows = sink.state().list().await?;
    let last: std::collections::BTreeMap<String, LastRun> = sink.runs().last().await?.into_iter().collect();
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "table": r.table,
                    "source": r.source,
                    "mode": r.mode,
                    "watermark": r.watermark.as_ref().map(|w| w.cursor.to_string()),
                    "watermark_key": r.watermark.as_ref().map(|w| &w.key),
                    "last_load": r.loaded_at.and_then(chrono::DateTime::from_timestamp_micros).map(|t| t.to_rfc3339()),
                    "rows": r.rows,
                    "run_id": r.run_id,
                    "last_run": last.get(&r.table),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    let mut lines = vec![["TABLE", "MODE", "WATERMARK", "LAST LOAD", "ROWS", "RUN", "LAST RUN"].map(String::from)];
    for r in &rows {
        let last_run = match last.get(&r.table) {
            Some(l) if l.run_id != r.run_id || l.status != "ok" => format!("{} ({})", l.status, short(&l.run_id)),
            Some(_) => "ok".into(),
            None => "-".into(),
        };
        lines.push([
            r.table.clone(),
            r.mode.clone(),
            r.watermark.as_ref().map_or("-".into(), |w| w.cursor.to_string()),
            r.loaded_at
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string()),
            r.rows.to_string(),
            short(&r.run_id).to_owned(),
            last_run,
        ]);
    }
    if rows.is_empty() {
        println!("no table has been loaded into {}.{} yet", config.destination.project, config.destination.dataset);
    } else {
        print!("{}", columns(&lines));
    }
    Ok(exit::OK)
}

async fn reset(path: &std::path::Path, names: &[String], yes: bool, run_id: &str) -> anyhow::Result<u8> {
    let config = config::load(path)?;
    let sink = super::run::bigquery(&config, run_id)?;
    // Names as in the config, or of any table the state holds: a pattern entry's tables are
    // known only by their stored state here (reading the source is not needed to forget).
    let mut known: Vec<TableConfig> =
        config.tables.into_iter().filter(|t| !matches!(t.source, TableSource::Pattern { .. })).collect();
    for row in sink.state().list().await? {
        if !known.iter().any(|t| t.target == row.table) {
            known.push(TableConfig::simple(None, &row.table));
        }
    }
    let selection = config::select::Selection { tables: super::tables::names(names), ..Default::default() };
    let targets: Vec<String> =
        selection.apply(&known).map_err(anyhow::Error::msg)?.tables.into_iter().map(|t| t.target).collect();
    let question = format!(
        "Forget the watermarks of {}? Their next run reads them from the start (merge tables re-merge every row; \
         to also drop rows deleted at the source, use `run --full-refresh` instead).",
        targets.join(", ")
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("{question}\nStandard input is not a terminal: pass --yes to confirm");
        }
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing changed");
            return Ok(exit::OK);
        }
    }
    match sink.state().reset(&targets).await? {
        Some(n) => println!("forgot {n} stored watermark(s) of {}", targets.join(", ")),
        None => println!("forgot the watermarks of {}", targets.join(", ")),
    }
    Ok(exit::OK)
}

fn short(run_id: &str) -> &str {
    &run_id[..run_id.len().min(12)]
}

/// Left-aligned columns, two spaces apart, as kubectl prints them.
fn columns<const N: usize>(lines: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in lines {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
