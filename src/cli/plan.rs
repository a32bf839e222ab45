//! `aurora2bq plan`: what a run would do, with nothing written. It connects to both ends,
//! reads each table's state and describes it as a run would, and shows the column mapping,
//! what schema evolution would do to the target, the mode and window, the catalog's
//! estimates, and any refusal with its fix. It exits 1 when a run would fail for a reason
//! the plan can see.

use serde_json::{Value, json};

use super::exit;
use crate::config::{self, TableConfig};
use crate::describe::Diagnosis;
use crate::pipeline::human_bytes;
use crate::sink::Sink;
use crate::sink::bigquery::state::STATE_TABLE;
use crate::sink::bigquery::{BigQuerySink, TargetPlan};
use crate::source::{self, BatchLimits, Source};

pub const EXAMPLES: &str = "Examples:
  aurora2bq plan -c config.toml
  aurora2bq plan -c config.toml --tables orders --json";

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: super::tables::ConfigFile,
    /// Only these tables (as `run --tables`).
    #[arg(long, value_delimiter = ',', value_name = "TABLES")]
    tables: Vec<String>,
    /// One JSON array instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    shard: super::tables::ShardArg,
}

pub async fn plan(args: Args, run_id: String) -> u8 {
    match plan_inner(&args, &run_id).await {
        Ok(code) => code,
        Err(e) => {
            super::report("the plan could not be made", &e);
            if crate::pipeline::is_transient(&e) { exit::TRANSIENT } else { exit::SETUP_FAILED }
        }
    }
}

async fn plan_inner(args: &Args, run_id: &str) -> anyhow::Result<u8> {
    let selection = config::select::Selection { tables: super::tables::names(&args.tables), ..Default::default() };
    let mut config = super::tables::load(&args.file.config, &selection)?;
    let sink = super::run::bigquery(&config, run_id)?;
    sink.rest().get_dataset(&config.destination.dataset).await?;
    let limits = BatchLimits { rows: 1, bytes: 1024 };
    let source = source::connect(&config.source, limits).await?;
    let shard = args.shard.resolve(&config)?;
    config.tables =
        super::tables::choose(&*source, &config, &selection, shard, args.shard.shard_group.as_deref()).await?.tables;
    // Before the first run there is no state table (a run creates it; a plan writes nothing).
    let has_state = sink.rest().get_table(&config.destination.dataset, STATE_TABLE).await?.is_some();
    let mut plans = Vec::new();
    for table in &config.tables {
        plans.push(table_plan(table, &*source, &sink, has_state).await);
    }
    let refused = plans.iter().filter(|p| !p["problem"].is_null()).count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        for p in &plans {
            print!("{}", render(p));
        }
        println!(
            "{} of {} tables would load{}",
            plans.len() - refused,
            plans.len(),
            if refused > 0 { format!("; {refused} would fail (see each problem and its fix)") } else { String::new() }
        );
    }
    Ok(if refused > 0 { exit::TABLE_FAILED } else { exit::OK })
}

/// One table's plan as JSON; a refusal goes in `problem` and `fix`.
async fn table_plan(table: &TableConfig, source: &dyn Source, sink: &BigQuerySink, has_state: bool) -> Value {
    let mut out = json!({
        "table": table.target,
        "source": table.source_name(),
        "mode": table.mode.name(),
        "problem": null,
        "fix": null,
    });
    let refuse = |mut out: Value, problem: String, fix: Option<String>| {
        out["problem"] = json!(problem);
        out["fix"] = json!(fix);
        out
    };
    let prior = match has_state {
        false => Default::default(),
        true => match sink.prior(table).await {
            Ok(p) => p,
            Err(e) => return refuse(out, e.problem(), e.fix()),
        },
    };
    let window = crate::pipeline::window_for(table, prior.watermark.clone(), false);
    if let Some(w) = &window {
        out["window"] = json!({
            "cursor": w.cursor,
            "after": w.after.as_ref().map(|a| a.cursor.to_string()),
            "after_key": w.after.as_ref().map(|a| &a.key),
            "lookback": w.lookback,
            "until": "the source database's clock when the run starts",
        });
    }
    let mut read = match source.open(table, window.as_ref()).await {
        Ok(r) => r,
        Err(e) => return refuse(out, e.problem(), e.fix()),
    };
    let checked = read.check().await;
    let schema = read.schema().clone();
    drop(read);
    out["columns"] = schema
        .columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "source_type": c.source_type,
                "bigquery_name": c.field.name,
                "bigquery_type": c.field.ty.rest_name(),
                "repeated": c.field.repeated,
            })
        })
        .collect();
    out["estimate"] = json!({ "rows": schema.estimate.rows, "bytes": schema.estimate.bytes });
    if let Err(e) = checked {
        return refuse(out, e.problem(), e.fix());
    }
    match sink.plan_target(table, &schema).await {
        Ok(TargetPlan::Create) => out["target"] = json!({ "action": "create" }),
        Ok(TargetPlan::Evolve(ev)) if ev.is_empty() && ev.kept.is_empty() => {
            out["target"] = json!({ "action": "unchanged" })
        }
        Ok(TargetPlan::Evolve(ev)) => {
            out["target"] = json!({ "action": "evolve", "add": ev.added, "widen": ev.widened, "keep": ev.kept })
        }
        Err(e) => return refuse(out, e.problem(), e.fix()),
    }
    out
}

/// A table's plan for people.
fn render(p: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!("{} -> {} ({})\n", s(&p["source"]), s(&p["table"]), s(&p["mode"]));
    for c in p["columns"].as_array().into_iter().flatten() {
        let renamed =
            if c["name"] == c["bigquery_name"] { String::new() } else { format!(" as {}", s(&c["bigquery_name"])) };
        let ty =
            if c["repeated"] == true { format!("ARRAY<{}>", s(&c["bigquery_type"])) } else { s(&c["bigquery_type"]) };
        out.push_str(&format!("    {:<28} {:<28} -> {ty}{renamed}\n", s(&c["name"]), s(&c["source_type"])));
    }
    if let Some(w) = p.get("window") {
        let from = match w["after"].as_str() {
            Some(a) => format!("after {} = {a}", s(&w["cursor"])),
            None => "from the first row".into(),
        };
        let lookback =
            w["lookback"].as_i64().map_or("the cursor's default look-back".into(), |l| format!("look-back {l}"));
        out.push_str(&format!("  window: {from}, {lookback}, until the source's clock at the start\n"));
    }
    let e = &p["estimate"];
    if let Some(rows) = e["rows"].as_u64() {
        let bytes = e["bytes"].as_u64().map(|b| format!(", {} on disk", human_bytes(b))).unwrap_or_default();
        out.push_str(&format!("  estimate: ~{rows} rows{bytes} (catalog statistics)\n"));
    }
    match p["target"]["action"].as_str() {
        Some("create") => out.push_str("  target: created on the first load\n"),
        Some("unchanged") => out.push_str("  target: exists, schema unchanged\n"),
        Some("evolve") => {
            let t = &p["target"];
            for a in t["add"].as_array().into_iter().flatten() {
                out.push_str(&format!("  target: add column {} {}\n", s(&a[0]), s(&a[1])));
            }
            for w in t["widen"].as_array().into_iter().flatten() {
                out.push_str(&format!("  target: widen {} from {} to {}\n", s(&w[0]), s(&w[1]), s(&w[2])));
            }
            for k in t["keep"].as_array().into_iter().flatten() {
                out.push_str(&format!("  target: keep {} (gone from the source; NULL from now on)\n", s(k)));
            }
        }
        _ => {}
    }
    if !p["problem"].is_null() {
        out.push_str(&format!("  WOULD FAIL: {}\n", s(&p["problem"])));
        if let Some(f) = p["fix"].as_str() {
            out.push_str(&format!("  fix: {f}\n"));
        }
    }
    out
}
