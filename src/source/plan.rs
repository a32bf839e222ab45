//! What both engines do with the catalog's columns: check that the config names only
//! columns the table has, then plan each selected column or say why it cannot be copied;
//! and, from the plans, the table's schema and an incremental window's columns.

use super::window::Window;
use super::{Column, SourceError, TableSchema};
use crate::config::{Cast, TableConfig};

/// Why one column cannot be planned.
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    /// No mapping for the type: exclude or cast the column.
    Unsupported,
    /// The config asks for something that does not apply.
    Invalid(String),
}

/// A source column as planning sees it (each engine's catalog row implements it).
pub trait NamedColumn {
    fn name(&self) -> &str;
    fn declared(&self) -> &str;
}

pub fn plan_columns<C: NamedColumn, P>(
    table: &TableConfig,
    display_name: &str,
    columns: &[C],
    plan: impl Fn(&C, Option<Cast>) -> Result<P, PlanError>,
) -> Result<Vec<P>, SourceError> {
    let known = |c: &String| columns.iter().any(|k| k.name() == c);
    let listed = table.columns.iter().flatten().chain(&table.exclude_columns).chain(table.casts.keys());
    if let Some(missing) = listed.into_iter().find(|c| !known(c)) {
        let all: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        return Err(SourceError::Config {
            table: display_name.to_owned(),
            detail: format!(
                "the config names column {missing:?}, which it does not have (columns: {})",
                all.join(", ")
            ),
        });
    }
    let mut plans = Vec::new();
    for c in columns.iter().filter(|c| table.includes(c.name())) {
        match plan(c, table.casts.get(c.name()).copied()) {
            Ok(p) => plans.push(p),
            Err(PlanError::Unsupported) => {
                return Err(SourceError::Unsupported {
                    table: display_name.to_owned(),
                    column: c.name().to_owned(),
                    ty: c.declared().to_owned(),
                });
            }
            Err(PlanError::Invalid(detail)) => {
                return Err(SourceError::Config {
                    table: display_name.to_owned(),
                    detail: format!("column {}: {detail}", c.name()),
                });
            }
        }
    }
    if plans.is_empty() {
        return Err(SourceError::Config { table: display_name.to_owned(), detail: "no columns left to copy".into() });
    }
    Ok(plans)
}

/// A planned column, as far as the steps both engines share need to know it.
pub trait Planned {
    fn column(&self) -> &Column;
}

/// The schema a table's planned columns give it.
pub fn table_schema<P: Planned>(display_name: &str, plans: &[P], primary_key: &[String]) -> TableSchema {
    TableSchema {
        display_name: display_name.to_owned(),
        columns: plans.iter().map(|p| p.column().clone()).collect(),
        primary_key: primary_key.to_vec(),
        estimate: Default::default(),
    }
}

/// An incremental window's columns, found among the copied ones.
pub struct WindowColumns<'p, P> {
    pub cursor: &'p P,
    /// (name, plan) of each key column: the configured key, else the primary key.
    pub keys: Vec<(&'p str, &'p P)>,
    /// The window, its key filled in from the primary key when the config names none.
    pub window: Window,
}

pub fn window_columns<'p, P: Planned>(
    display_name: &str,
    plans: &'p [P],
    primary_key: &[String],
    w: &Window,
) -> Result<WindowColumns<'p, P>, SourceError> {
    let bad = |detail: String| SourceError::Config { table: display_name.to_owned(), detail };
    let find = |c: &str| plans.iter().find(|p| p.column().name == c);
    let cursor =
        find(&w.cursor).ok_or_else(|| bad(format!("cursor column {:?} is not among the copied columns", w.cursor)))?;
    let mut window = w.clone();
    if window.key.is_empty() {
        window.key = primary_key.to_vec();
    }
    let mut keys = Vec::new();
    for k in &window.key {
        let p = find(k).ok_or_else(|| bad(format!("key column {k:?} is not among the copied columns")))?;
        keys.push((p.column().name.as_str(), p));
    }
    Ok(WindowColumns { cursor, keys, window })
}

/// Which rows of a table a read covers.
pub enum Chunks {
    /// All of them, in this many key-range chunks (1: one query).
    Whole(usize),
    /// A split table's chunks `mine` of `of`, over the key range its plan fixed.
    Part { lo: i64, hi: i64, of: usize, mine: Vec<usize> },
}

impl Chunks {
    /// A table's: its share of a split table once the run has the plan, else all of it
    /// (`plan` looking at a split table describes the whole table).
    pub fn of(table: &crate::config::TableConfig) -> Chunks {
        match table.part.as_ref().and_then(|p| p.plan.as_ref().map(|plan| (p, plan))) {
            Some((p, plan)) => Chunks::Part { lo: plan.lo, hi: plan.hi, of: p.chunks, mine: p.mine.clone() },
            None => Chunks::Whole(table.parallel_chunks),
        }
    }

    /// The conditions to read, given the key (quoted) and, for a whole table, its range now;
    /// empty: read the table in one query.
    pub fn ranges(&self, key: &str, now: Option<(i64, i64)>) -> Vec<String> {
        match self {
            Chunks::Whole(1) => Vec::new(),
            Chunks::Whole(n) => now.map(|(lo, hi)| key_ranges(key, lo, hi, *n)).unwrap_or_default(),
            Chunks::Part { lo, hi, of, mine } => {
                let all = key_ranges(key, *lo, *hi, *of);
                mine.iter().filter_map(|i| all.get(*i).cloned()).collect()
            }
        }
    }

    /// The ranges when the table has no single-column integer key to split by: a split
    /// table is refused, a chunked one is read in one chunk.
    pub fn without_key(&self, table: &str) -> Result<Vec<String>, super::SourceError> {
        match self {
            Chunks::Part { .. } => Err(no_split_key(table)),
            Chunks::Whole(n) => {
                if *n > 1 {
                    tracing::warn!(
                        table,
                        "parallel_chunks needs a single-column integer primary key; reading in one chunk"
                    );
                }
                Ok(Vec::new())
            }
        }
    }

    /// The relation a part's watermark is taken over: only its own chunks.
    pub fn watermark_from(&self, from: &str, ranges: &[String]) -> String {
        match self {
            Chunks::Part { .. } => {
                let any: Vec<String> = ranges.iter().map(|r| format!("({r})")).collect();
                format!("(SELECT * FROM {from} WHERE {}) AS _a2b_part", any.join(" OR "))
            }
            Chunks::Whole(_) => from.to_owned(),
        }
    }
}

/// The refusal of a table split across shards without a key to split it by.
pub fn no_split_key(table: &str) -> super::SourceError {
    super::SourceError::Config {
        table: table.to_owned(),
        detail: "a table split across shards is read in ranges of its primary key, which must be one (signed) \
                 integer column; set split_across_shards = false"
            .into(),
    }
}

/// `n` conditions on the integer key `k` (quoted) that split `lo..=hi` into ranges of
/// about equal width and together cover every value, below `lo` and above `hi` too.
pub(crate) fn key_ranges(k: &str, lo: i64, hi: i64, n: usize) -> Vec<String> {
    let n = n.max(1) as i128;
    let bound = |i: i128| (lo as i128 + (hi as i128 - lo as i128 + 1) * i / n) as i64;
    (0..n)
        .map(|i| match (i, i + 1 == n) {
            (0, true) => "TRUE".to_string(),
            (0, false) => format!("{k} < {}", bound(1)),
            (_, true) => format!("{k} >= {}", bound(i)),
            _ => format!("{k} >= {} AND {k} < {}", bound(i), bound(i + 1)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bq_model::{BqField, BqType};

    struct P(Column);

    impl Planned for P {
        fn column(&self) -> &Column {
            &self.0
        }
    }

    fn plans(names: &[&str]) -> Vec<P> {
        let col = |n: &str| Column {
            name: n.into(),
            source_type: "int8".into(),
            field: BqField { name: n.into(), ty: BqType::Int64, repeated: false },
        };
        names.iter().map(|n| P(col(n))).collect()
    }

    fn window(cursor: &str, key: &[&str]) -> Window {
        Window {
            cursor: cursor.into(),
            key: key.iter().map(|k| k.to_string()).collect(),
            after: None,
            lookback: None,
            null_cursors: Default::default(),
        }
    }

    #[test]
    fn window_key_defaults_to_the_primary_key_and_must_be_copied() {
        let ps = plans(&["a", "b", "ts"]);
        let pk = vec!["b".to_string(), "a".to_string()];
        let cols = window_columns("t", &ps, &pk, &window("ts", &[])).unwrap();
        assert_eq!(cols.cursor.0.name, "ts");
        assert_eq!(cols.keys.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(cols.window.key, pk);
        let cols = window_columns("t", &ps, &pk, &window("ts", &["a"])).unwrap();
        assert_eq!(cols.window.key, ["a"]);

        let e = window_columns("t", &ps, &pk, &window("gone", &[])).err().unwrap();
        assert!(e.to_string().contains("cursor column \"gone\" is not among the copied columns"), "{e}");
        let e = window_columns("t", &ps, &pk, &window("ts", &["c"])).err().unwrap();
        assert!(e.to_string().contains("key column \"c\" is not among the copied columns"), "{e}");
    }

    #[test]
    fn the_schema_follows_the_plans() {
        let s = table_schema("t", &plans(&["a", "b"]), &["a".to_string()]);
        assert_eq!(s.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((s.display_name.as_str(), s.primary_key.as_slice()), ("t", ["a".to_string()].as_slice()));
    }
}
