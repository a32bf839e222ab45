//! Validation of the `[[tables]]` entries.

use std::collections::BTreeMap;

use toml::Spanned;

use super::{Ctx, is_bq_name};
use crate::config::raw::RawTable;
use crate::config::{
    Cast, ConfigError, Engine, LoadMode, Partition, SchemaChanges, TableConfig, TableSource, TargetOptions,
};

pub fn tables(
    cx: &Ctx,
    engine: Engine,
    raw: Option<Spanned<Vec<Spanned<RawTable>>>>,
) -> Result<Vec<TableConfig>, ConfigError> {
    let end = cx.text.len()..cx.text.len();
    let raw = raw.unwrap_or_else(|| Spanned::new(end, Vec::new()));
    if raw.get_ref().is_empty() {
        return Err(cx.err(
            raw.span(),
            "tables",
            "no tables listed: add at least one [[tables]] entry with `source = \"schema.table\"`",
        ));
    }
    let mut out: Vec<TableConfig> = Vec::new();
    // By lower-cased target: a dataset may be case-insensitive, and a lookup keeps a config
    // of tens of thousands of tables linear.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, t) in raw.into_inner().into_iter().enumerate() {
        let span = t.span();
        let (t, target_span) = table(cx, engine, i, span, t.into_inner())?;
        if let Some(&prev) = seen.get(&t.target.to_ascii_lowercase()) {
            return Err(cx.err(
                target_span,
                &format!("tables[{i}].target"),
                format!(
                    "target {:?} is already used by {:?}; give one of them another `target`",
                    t.target,
                    out[prev].source_name()
                ),
            ));
        }
        seen.insert(t.target.to_ascii_lowercase(), out.len());
        out.push(t);
    }
    Ok(out)
}

/// aurora2bq's own tables: the state and run tables, doctor probes and `T__aurora2bq_staging_*`.
fn is_reserved_target(target: &str) -> bool {
    let t = target.to_ascii_lowercase();
    t.starts_with("_aurora2bq") || t.contains("__aurora2bq_")
}

/// One entry, and the span of its target (or what the target was derived from).
fn table(cx: &Ctx, engine: Engine, i: usize, span: Span, t: RawTable) -> Result<(TableConfig, Span), ConfigError> {
    let key = |k: &str| format!("tables[{i}].{k}");
    let (source, target, target_span) = source_and_target(cx, engine, &key, span.clone(), &t)?;
    let (mode, cursor, lookback) = mode_and_window(cx, &key, span.clone(), &t)?;
    let (rename, casts) = column_options(cx, &key, &t)?;
    let parallel_chunks = parallel_chunks(cx, &key, &t)?;
    let split_across_shards = match &t.split_across_shards {
        Some(s) if *s.get_ref() && parallel_chunks < 2 => {
            return Err(cx.err(
                s.span(),
                &key("split_across_shards"),
                "a split table is read in its parallel_chunks chunks: set parallel_chunks = 2 or more (e.g. the shard count)",
            ));
        }
        Some(s) => *s.get_ref(),
        None => false,
    };
    let soft_delete_column = t.soft_delete_column.clone().map(|s| s.into_inner());
    let keys_as_bytes = t.keys_as_bytes.as_ref().is_some_and(|b| *b.get_ref());
    let (key_columns, columns, exclude_columns) = (t.key.clone(), t.columns.clone(), t.exclude_columns.clone());
    let (target_options, schema_changes) = target_options(cx, &key, span, t, mode, cursor.as_deref())?;
    let config = TableConfig {
        source,
        target,
        mode,
        cursor,
        lookback,
        key: key_columns,
        soft_delete_column,
        keys_as_bytes,
        rename,
        columns,
        exclude_columns,
        casts,
        parallel_chunks,
        split_across_shards,
        part: None,
        target_options,
        schema_changes,
    };
    Ok((config, target_span))
}

type Span = std::ops::Range<usize>;
/// Source column → BigQuery column name.
type Renames = BTreeMap<String, String>;

/// Where the rows come from (a table or a query) and the target's name.
fn source_and_target(
    cx: &Ctx,
    engine: Engine,
    key: &dyn Fn(&str) -> String,
    span: Span,
    t: &RawTable,
) -> Result<(TableSource, String, Span), ConfigError> {
    let (source, default_target, target_span) = match (&t.source, &t.query) {
        (Some(s), None) => {
            let (schema, name) = split_source(s.get_ref()).ok_or_else(|| {
                cx.err(
                    s.span(),
                    &key("source"),
                    format!(
                        "{:?} is not a table name: write `table` or `{}.table`",
                        s.get_ref(),
                        if engine == Engine::Postgres { "schema" } else { "database" }
                    ),
                )
            })?;
            if name.contains(['*', '?']) {
                if let Some(tg) = &t.target {
                    return Err(cx.err(
                        tg.span(),
                        &key("target"),
                        "a pattern's tables keep their own names as targets; to give one another target, list it \
                         in an entry of its own (that entry wins over the pattern)",
                    ));
                }
                let exclude = t.exclude.as_ref().map(|e| e.get_ref().clone()).unwrap_or_default();
                // The entry's own name stands for it in messages and selections; its tables get theirs.
                let label = s.get_ref().clone();
                return Ok((TableSource::Pattern { schema, pattern: name, exclude }, label, s.span()));
            }
            if let Some(e) = &t.exclude {
                return Err(cx.err(e.span(), &key("exclude"), "applies to a pattern source (`schema.prefix_*`) only"));
            }
            (TableSource::Table { schema, name: name.clone() }, Some(name), s.span())
        }
        (None, Some(q)) => {
            let sql = q.get_ref().trim().trim_end_matches(';').trim().to_owned();
            if !sql.to_ascii_lowercase().starts_with("select") && !sql.to_ascii_lowercase().starts_with("with") {
                return Err(cx.err(
                    q.span(),
                    &key("query"),
                    "a query source must be one SELECT (or WITH ... SELECT) statement",
                ));
            }
            (TableSource::Query(sql), None, q.span())
        }
        (Some(s), Some(_)) => return Err(cx.err(s.span(), &key("source"), "set either source or query, not both")),
        (None, None) => {
            return Err(cx.err(
                span,
                &key("source"),
                "each table needs `source = \"schema.table\"` or `query = \"SELECT ...\"`",
            ));
        }
    };
    let (target, target_span) = match (&t.target, default_target) {
        (Some(tg), _) => (tg.get_ref().clone(), tg.span()),
        (None, Some(d)) => (d, target_span),
        (None, None) => {
            return Err(cx.err(target_span, &key("target"), "a query source needs `target = \"table_name\"`"));
        }
    };
    if is_reserved_target(&target) {
        return Err(cx.err(
            target_span,
            &key("target"),
            format!(
                "{target:?} is reserved: aurora2bq keeps its watermarks, run history and staging tables under \
                 names starting with `_aurora2bq` or holding `__aurora2bq_`; set `target` to another name"
            ),
        ));
    }
    if !is_bq_name(&target) {
        return Err(cx.err(
            target_span,
            &key("target"),
            format!(
                "{target:?} is not usable as a BigQuery table name (letters, digits, underscores); set `target` to one"
            ),
        ));
    }
    Ok((source, target, target_span))
}

/// The load mode, the cursor and the look-back, and the options that only some modes take.
fn mode_and_window(
    cx: &Ctx,
    key: &dyn Fn(&str) -> String,
    span: Span,
    t: &RawTable,
) -> Result<(LoadMode, Option<String>, Option<i64>), ConfigError> {
    let mode = match &t.mode {
        Some(m) => cx.choice(m, &key("mode"))?,
        None => LoadMode::FullRefresh,
    };
    let cursor = t.cursor.as_ref().map(|c| c.get_ref().clone());
    if mode != LoadMode::FullRefresh && cursor.is_none() {
        return Err(cx.err(
            span.clone(),
            &key("cursor"),
            "incremental modes need `cursor`: the column that orders changes (e.g. updated_at)",
        ));
    }
    if mode == LoadMode::FullRefresh
        && let Some(c) = &t.cursor
    {
        return Err(cx.err(c.span(), &key("cursor"), "a cursor only applies to mode = \"append\" or \"merge\""));
    }
    // `None`: the default for the cursor's kind, known once the source is described.
    let lookback = match &t.lookback {
        Some(l) if *l.get_ref() < 0 => return Err(cx.err(l.span(), &key("lookback"), "cannot be negative")),
        Some(l) if mode == LoadMode::FullRefresh => {
            return Err(cx.err(
                l.span(),
                &key("lookback"),
                "a look-back only applies to mode = \"append\" or \"merge\"",
            ));
        }
        Some(l) => Some(*l.get_ref()),
        None => None,
    };
    if let Some(sd) = &t.soft_delete_column
        && mode != LoadMode::Merge
    {
        return Err(cx.err(sd.span(), &key("soft_delete_column"), "soft deletes apply to mode = \"merge\" only"));
    }
    if let Some(b) = &t.keys_as_bytes
        && mode != LoadMode::Merge
    {
        return Err(cx.err(b.span(), &key("keys_as_bytes"), "applies to mode = \"merge\" only"));
    }
    Ok((mode, cursor, lookback))
}

/// Renamed and cast columns.
fn column_options(
    cx: &Ctx,
    key: &dyn Fn(&str) -> String,
    t: &RawTable,
) -> Result<(Renames, BTreeMap<String, Cast>), ConfigError> {
    let mut rename = BTreeMap::new();
    for (col, to) in &t.rename {
        if let Some(why) = crate::bq_model::column_name_problem(to.get_ref()) {
            return Err(cx.err(
                to.span(),
                &key(&format!("rename.{col}")),
                format!("{:?} is not a valid BigQuery column name: {why}", to.get_ref()),
            ));
        }
        rename.insert(col.clone(), to.get_ref().clone());
    }
    let mut casts = BTreeMap::new();
    for (col, to) in &t.cast {
        let cast = cx.choice(to, &key(&format!("cast.{col}")))?;
        casts.insert(col.clone(), cast);
    }
    Ok((rename, casts))
}

fn parallel_chunks(cx: &Ctx, key: &dyn Fn(&str) -> String, t: &RawTable) -> Result<usize, ConfigError> {
    Ok(match &t.parallel_chunks {
        None => 1,
        Some(p) if (1..=32).contains(p.get_ref()) => *p.get_ref() as usize,
        Some(p) => return Err(cx.err(p.span(), &key("parallel_chunks"), "use 1 to 32")),
    })
}

/// What aurora2bq sets when it creates the target, and what it does when the source changes.
fn target_options(
    cx: &Ctx,
    key: &dyn Fn(&str) -> String,
    span: Span,
    t: RawTable,
    mode: LoadMode,
    cursor: Option<&str>,
) -> Result<(TargetOptions, SchemaChanges), ConfigError> {
    let partition = match t.partition {
        None => None,
        Some(p) => {
            let span = p.span();
            let p = p.into_inner();
            Some(match (p.granularity, p.start, p.end, p.interval) {
                (g, None, None, None) => {
                    let g = g.unwrap_or_else(|| "DAY".into()).to_ascii_uppercase();
                    if !["HOUR", "DAY", "MONTH", "YEAR"].contains(&g.as_str()) {
                        return Err(cx.err(
                            span,
                            &key("partition.granularity"),
                            format!("{g:?}: use HOUR, DAY, MONTH or YEAR"),
                        ));
                    }
                    Partition::Time { column: p.column, granularity: g }
                }
                (None, Some(start), Some(end), Some(interval)) if start < end && interval > 0 => {
                    Partition::Range { column: p.column, start, end, interval }
                }
                _ => {
                    return Err(cx.err(
                        span,
                        &key("partition"),
                        "give `column` and either `granularity` (time) or `start`, `end` and `interval` (integer range, start < end, interval > 0)",
                    ));
                }
            })
        }
    };
    if let (LoadMode::Merge, Some(p), Some(c)) = (mode, &partition, cursor)
        && p.column() == c
    {
        return Err(cx.err(
            span.clone(),
            &key("partition"),
            "a merge target cannot be partitioned by its cursor: the cursor changes with every update, \
                 so a row's old version would sit in another partition; partition by a column that does not \
                 change (e.g. created_at)",
        ));
    }
    let schema_changes = match &t.schema_changes {
        Some(v) => cx.choice(v, &key("schema_changes"))?,
        None => SchemaChanges::Evolve,
    };
    let target_options = TargetOptions {
        partition,
        cluster_by: t.cluster_by.unwrap_or_default(),
        description: t.description,
        labels: t.labels,
        metadata_columns: t.metadata_columns.unwrap_or(false),
    };
    if target_options.cluster_by.len() > 4 {
        return Err(cx.err(span.clone(), &key("cluster_by"), "BigQuery clusters by at most 4 columns"));
    }
    Ok((target_options, schema_changes))
}

/// `table` or `schema.table`; each part non-empty, no quoting games.
fn split_source(s: &str) -> Option<(Option<String>, String)> {
    let ok = |p: &str| !p.is_empty() && !p.contains(['"', '`', '\0']) && p.trim() == p;
    match s.split_once('.') {
        None if ok(s) => Some((None, s.to_owned())),
        Some((a, b)) if ok(a) && ok(b) && !b.contains('.') => Some((Some(a.into()), b.into())),
        _ => None,
    }
}
