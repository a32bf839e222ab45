//! A table split across the shards of a run, coordinated in BigQuery itself, with no
//! service of ours: table creation is atomic (a second create of a name fails), and a
//! table's description can be read and replaced.
//!
//! - The plan: the first shard to reach the table creates `T__aurora2bq_plan_GROUP` with the
//!   bounds every shard reads by in its description; the others find it there.
//! - The parts: each shard stages its chunks in its own `T__aurora2bq_part_GROUP_sI_RUN`
//!   through PENDING streams and, once committed into it, marks it done in its description
//!   (its chunks, rows and watermark).
//! - The commit: a shard that finds every chunk in a done part (one part per shard index;
//!   a rerun of a shard makes a new one) commits them all in one transaction, fenced like any
//!   load, recording the plan's commit id as the run. Two shards finishing together both
//!   try; the fence lets one through, and the other finds the commit id in the state.
//!
//! A shard that dies leaves an unfinished part nobody commits; its rerun stages a new one.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::BigQuerySink;
use super::error::SinkError;
use super::schema;
use crate::config::SplitPlan;
use crate::source::window::Watermark;

const PLAN_MARK: &str = "aurora2bq split plan: ";
const DONE_MARK: &str = "aurora2bq part done: ";

/// What a finished part holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDone {
    pub shard: u32,
    pub chunks: Vec<usize>,
    pub rows: i64,
    pub watermark: Option<Watermark>,
    /// The part's table; not stored (it is the table's own name).
    #[serde(skip)]
    pub table: String,
}

fn base(target: &str) -> String {
    target.chars().take(900).collect()
}

pub fn plan_table(target: &str, group: &str) -> String {
    format!("{}__aurora2bq_plan_{group}", base(target))
}

fn part_prefix(target: &str, group: &str) -> String {
    format!("{}__aurora2bq_part_{group}_", base(target))
}

pub fn part_table(target: &str, group: &str, shard: u32, run_id: &str) -> String {
    let short: String = run_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    format!("{}s{shard}_{short}", part_prefix(target, group))
}

fn expiry_ms(sink: &BigQuerySink) -> i64 {
    let at = SystemTime::now() + sink.dest.staging_expiration;
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// The plan every shard of `group` reads `target` by: `proposal` if this shard is the first
/// to plan it, else the one already there.
pub async fn agree(
    sink: &BigQuerySink,
    target: &str,
    group: &str,
    proposal: SplitPlan,
) -> Result<SplitPlan, SinkError> {
    let name = plan_table(target, group);
    let text = serde_json::to_string(&proposal).expect("a plan serializes");
    let fields = [crate::bq_model::BqField::scalar("plan", crate::bq_model::BqType::String)];
    let description = format!("{PLAN_MARK}{text}");
    let resource = schema::table_resource(
        &sink.dest.project,
        &sink.dest.dataset,
        &name,
        &fields,
        Some(expiry_ms(sink)),
        Some(&description),
    );
    if sink.rest.create_table_once(&sink.dest.dataset, &resource).await? {
        return Ok(proposal);
    }
    let found = sink.rest.get_table(&sink.dest.dataset, &name).await?;
    let stored = found.as_ref().and_then(|t| t["description"].as_str()).and_then(|d| d.strip_prefix(PLAN_MARK));
    stored.and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| SinkError::State {
        table: target.to_owned(),
        detail: format!("the split plan {name} is missing or unreadable; drop it and rerun the shards"),
    })
}

/// Marks a part's table done: its rows are committed into it.
pub async fn mark_done(sink: &BigQuerySink, done: &PartDone) -> Result<(), SinkError> {
    let text = serde_json::to_string(done).expect("a part serializes");
    let body = serde_json::json!({ "description": format!("{DONE_MARK}{text}") });
    sink.rest.patch_table(&sink.dest.dataset, &done.table, &body).await
}

/// One done part per shard covering every chunk of `target`, when there are: the table can
/// be committed. Among a shard's done parts (a rerun after its part was done) the first by
/// name is taken; they hold the same chunks.
pub async fn complete(
    sink: &BigQuerySink,
    target: &str,
    group: &str,
    chunks: usize,
) -> Result<Option<Vec<PartDone>>, SinkError> {
    let prefix = part_prefix(target, group);
    let mut names: Vec<String> =
        sink.rest.list_tables(&sink.dest.dataset).await?.into_iter().filter(|t| t.starts_with(&prefix)).collect();
    names.sort();
    let mut by_shard: BTreeMap<u32, PartDone> = BTreeMap::new();
    for name in names {
        let Some(t) = sink.rest.get_table(&sink.dest.dataset, &name).await? else { continue };
        let done = t["description"].as_str().and_then(|d| d.strip_prefix(DONE_MARK));
        let Some(mut part) = done.and_then(|d| serde_json::from_str::<PartDone>(d).ok()) else { continue };
        part.table = name;
        by_shard.entry(part.shard).or_insert(part);
    }
    let mut covered = vec![0u32; chunks];
    for part in by_shard.values() {
        for &c in &part.chunks {
            if let Some(n) = covered.get_mut(c) {
                *n += 1;
            }
        }
    }
    Ok(covered.iter().all(|n| *n == 1).then(|| by_shard.into_values().collect()))
}

/// Drops the plan and every part of `target` in `group`, in the background: after the
/// commit they are spent (and expire on their own if this fails).
pub fn drop_all(sink: &BigQuerySink, target: &str, group: &str) {
    let (s, target, group) = (sink.clone(), target.to_owned(), group.to_owned());
    sink.cleanup.spawn(async move {
        let work = async {
            let prefix = part_prefix(&target, &group);
            let mut names: Vec<String> = s.rest.list_tables(&s.dest.dataset).await.unwrap_or_default();
            names.retain(|t| t.starts_with(&prefix));
            names.push(plan_table(&target, &group));
            for n in names {
                let _ = s.rest.delete_table(&s.dest.dataset, &n).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(60), work).await;
    });
}
