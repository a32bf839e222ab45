//! The target table: created with its partitioning, clustering, description and labels, or
//! brought in line with the source (schema evolution), or left alone with a message that
//! says what changed and how to proceed.

use std::time::Duration;

use serde_json::{Value, json};

use super::BigQuerySink;
use super::error::SinkError;
use super::schema::{self, quote};
use crate::bq_model::{BqField, BqType};
use crate::config::{Partition, SchemaChanges, TableConfig};

const DDL_DEADLINE: Duration = Duration::from_secs(600);

/// Whether BigQuery can widen a column of type `from` to `to` in place.
fn widens(from: BqType, to: BqType) -> bool {
    matches!((from, to), (BqType::Int64, BqType::Numeric | BqType::BigNumeric) | (BqType::Numeric, BqType::BigNumeric))
}

/// A type for DDL. NUMERIC and BIGNUMERIC are spelled with their full precision and scale:
/// the same range as the bare names in BigQuery, and bqemulator (DuckDB) would otherwise
/// make NUMERIC a DECIMAL(18,3).
fn ddl_type(ty: &str) -> String {
    match ty {
        "NUMERIC" => "NUMERIC(38, 9)".into(),
        "BIGNUMERIC" => "BIGNUMERIC(76, 38)".into(),
        other => other.into(),
    }
}

fn options(resource: &mut Value, table: &TableConfig) {
    let o = &table.target_options;
    match &o.partition {
        Some(Partition::Time { column, granularity }) => {
            resource["timePartitioning"] = json!({ "type": granularity, "field": column });
        }
        Some(Partition::Range { column, start, end, interval }) => {
            resource["rangePartitioning"] = json!({
                "field": column,
                "range": { "start": start.to_string(), "end": end.to_string(), "interval": interval.to_string() },
            });
        }
        None => {}
    }
    if !o.cluster_by.is_empty() {
        resource["clustering"] = json!({ "fields": o.cluster_by });
    }
    if !o.labels.is_empty() {
        resource["labels"] = json!(o.labels);
    }
}

/// Creates the target, or evolves it to hold `fields`. Returns the target's partition
/// column type when it is partitioned (for pruning the MERGE).
/// Whether [`ensure`] made the target, so that a failed first load can take it away again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Existed,
}

/// What loading `fields` would do to an existing target, or why it cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Evolution {
    /// New columns, with their BigQuery types.
    pub added: Vec<(String, String)>,
    /// Columns widened in place: (name, from, to).
    pub widened: Vec<(String, String, String)>,
    /// Target columns the source no longer has: kept, and NULL from now on.
    pub kept: Vec<String>,
}

impl Evolution {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.widened.is_empty()
    }
}

/// What a load would do to its target, found without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPlan {
    Create,
    Evolve(Evolution),
}

/// The changes `fields` need of the existing table `existing`, or the refusal (with its
/// fix) a load would stop with.
fn assess(
    existing: &Value,
    table: &TableConfig,
    fields: &[BqField],
) -> Result<(schema::SchemaDiff, Evolution), SinkError> {
    let current = schema::existing_fields(existing);
    let diff = schema::diff(&current, fields);
    // A source type the target's type can hold (INT64 into NUMERIC) needs no change.
    let (widen, refuse): (Vec<_>, Vec<_>) = diff
        .changed
        .iter()
        .filter(|(name, _, _)| {
            let (t, s) = types(&current, fields, name);
            !(s.is_some() && t.is_some() && widens(s.unwrap(), t.unwrap()))
        })
        .partition(|(name, _, _)| {
            let (t, s) = types(&current, fields, name);
            matches!((t, s), (Some(t), Some(s)) if widens(t, s))
        });
    let policy = table.schema_changes;
    if !refuse.is_empty()
        || (policy == SchemaChanges::Refuse
            && (!widen.is_empty() || !diff.added.is_empty() || !diff.missing_in_source.is_empty()))
    {
        return Err(SinkError::Schema {
            table: table.target.clone(),
            detail: describe(&diff, &refuse, &widen, policy),
        });
    }
    let evolution = Evolution {
        added: diff.added.iter().map(|f| (f.name.clone(), f.ty.rest_name().to_owned())).collect(),
        widened: widen.into_iter().cloned().collect(),
        kept: diff.missing_in_source.clone(),
    };
    Ok((diff, evolution))
}

/// What [`ensure`] would do, with nothing changed: for `aurora2bq plan`.
pub async fn plan(sink: &BigQuerySink, table: &TableConfig, fields: &[BqField]) -> Result<TargetPlan, SinkError> {
    match sink.rest.get_table(&sink.dest.dataset, &table.target).await? {
        None => Ok(TargetPlan::Create),
        Some(existing) => Ok(TargetPlan::Evolve(assess(&existing, table, fields)?.1)),
    }
}

/// Creates the target, or adds and widens its columns, given its resource as the load read
/// it (`None`: no such table). The load reads it while its rows are being committed, so the
/// read costs no time of its own.
pub async fn ensure(
    sink: &BigQuerySink,
    table: &TableConfig,
    fields: &[BqField],
    existing: Option<Value>,
) -> Result<Ensured, SinkError> {
    let (project, dataset, target) = (&sink.dest.project, &sink.dest.dataset, &table.target);
    let Some(existing) = existing else {
        let desc = table.target_options.description.as_deref();
        let mut resource = schema::table_resource(project, dataset, target, fields, None, desc);
        options(&mut resource, table);
        sink.rest.create_table(dataset, &resource).await?;
        return Ok(Ensured::Created);
    };
    let (diff, evolution) = assess(&existing, table, fields)?;
    let widen = &evolution.widened;
    if !diff.missing_in_source.is_empty() {
        tracing::warn!(table = %target, columns = ?diff.missing_in_source, "target columns no longer in the source are kept and loaded as NULL");
    }
    if evolution.is_empty() {
        return Ok(Ensured::Existed);
    }
    let t = quote(&[project, dataset, target]);
    for f in &diff.added {
        let ty = ddl_type(f.ty.rest_name());
        let ty = if f.repeated { format!("ARRAY<{ty}>") } else { ty };
        let sql = format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {} {ty}", quote(&[&f.name]));
        sink.rest.query(&format!("adding column {} to {target}", f.name), &sql, DDL_DEADLINE).await?;
        tracing::info!(table = %target, column = %f.name, "added a column the source gained");
    }
    for (name, from, to) in widen {
        let sql = format!("ALTER TABLE {t} ALTER COLUMN {} SET DATA TYPE {}", quote(&[name]), ddl_type(to));
        sink.rest.query(&format!("widening {name} of {target} from {from} to {to}"), &sql, DDL_DEADLINE).await?;
        tracing::info!(table = %target, column = %name, from = %from, to = %to, "widened a column");
    }
    // The DDL is what BigQuery needs; the same schema through tables.patch keeps every
    // reader of the table metadata (and bqemulator, which needs both) in step.
    let mut merged: Vec<Value> = existing["schema"]["fields"].as_array().cloned().unwrap_or_default();
    for f in merged.iter_mut() {
        let name = f["name"].as_str().unwrap_or_default().to_owned();
        if let Some((_, _, to)) = widen.iter().find(|(n, _, _)| *n == name) {
            f["type"] = json!(to);
        }
    }
    merged.extend(schema::fields_json(&diff.added).as_array().cloned().unwrap_or_default());
    sink.rest.patch_schema(dataset, target, &json!({ "fields": merged })).await?;
    Ok(Ensured::Existed)
}

fn types(
    current: &[(String, Option<BqType>, bool)],
    fields: &[BqField],
    name: &str,
) -> (Option<BqType>, Option<BqType>) {
    let t = current.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, t, _)| *t);
    let s = fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)).map(|f| f.ty);
    (t, s)
}

fn describe(
    diff: &schema::SchemaDiff,
    refuse: &[&(String, String, String)],
    widen: &[&(String, String, String)],
    policy: SchemaChanges,
) -> String {
    let mut what = Vec::new();
    for (n, t, s) in refuse {
        what.push(format!(
            "column {n} is {t} in BigQuery but the source now gives {s}, which BigQuery cannot convert in place"
        ));
    }
    if policy == SchemaChanges::Refuse {
        for (n, t, s) in widen {
            what.push(format!("column {n} widened from {t} to {s}"));
        }
        for f in &diff.added {
            what.push(format!("new column {} ({})", f.name, f.ty.rest_name()));
        }
        for n in &diff.missing_in_source {
            what.push(format!("column {n} is gone from the source"));
        }
    }
    let how = if refuse.is_empty() {
        "set `schema_changes = \"evolve\"` on this table to apply it, or change the source back"
    } else {
        "to proceed, read the column in a type the target holds (`cast`), exclude it (`exclude_columns`), or \
         drop the target table so the next run creates it with the new type (a full reload for incremental tables)"
    };
    format!("the source's columns changed: {}; the target was left as it was. {how}", what.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bigquery_widenings_are_applied() {
        assert!(widens(BqType::Int64, BqType::Numeric));
        assert!(widens(BqType::Int64, BqType::BigNumeric));
        assert!(widens(BqType::Numeric, BqType::BigNumeric));
        assert!(!widens(BqType::Date, BqType::Datetime));
        assert!(!widens(BqType::Numeric, BqType::Int64));
        assert!(!widens(BqType::String, BqType::Json));
    }
}
