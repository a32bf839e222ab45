//! Incremental windows: rows ordered by (cursor, key), resumed strictly after the stored
//! pair so ties are neither lost nor repeated, with an optional look-back that re-reads
//! rows before the watermark (late commits), bounded above by the database clock at start.

use serde::{Deserialize, Serialize};

/// A cursor value, typed as the database has it, without loss.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorValue {
    Int(i64),
    /// µs since the epoch, an instant (timestamptz, MySQL TIMESTAMP).
    Timestamp(i64),
    /// µs since the epoch of a wall-clock value (timestamp, MySQL DATETIME).
    Datetime(i64),
    /// Days since the epoch.
    Date(i32),
}

impl std::fmt::Display for CursorValue {
    /// As a person reads it: ISO 8601, instants in UTC.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let micros = |us: i64| chrono::DateTime::from_timestamp_micros(us);
        match *self {
            CursorValue::Int(n) => write!(f, "{n}"),
            CursorValue::Timestamp(us) => match micros(us) {
                Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.fZ")),
                None => write!(f, "{us} µs"),
            },
            CursorValue::Datetime(us) => match micros(us) {
                Some(t) => write!(f, "{}", t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f")),
                None => write!(f, "{us} µs"),
            },
            CursorValue::Date(d) => match chrono::DateTime::from_timestamp(i64::from(d) * 86_400, 0) {
                Some(t) => write!(f, "{}", t.date_naive()),
                None => write!(f, "day {d}"),
            },
        }
    }
}

/// One key column's value, as text the database casts back to the column's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The database type name used in the cast (`int8`, `text`, `uuid`, ...).
    pub ty: String,
    pub text: String,
    /// The key column it belongs to (absent in watermarks stored before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// The last (cursor, key) a run loaded: the next run starts strictly after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub cursor: CursorValue,
    pub key: Vec<KeyValue>,
}

impl Watermark {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a watermark serializes")
    }

    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("stored watermark {s:?} is unreadable: {e}"))
    }
}

/// What an incremental read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub cursor: String,
    /// Key columns in order; ties on the cursor are broken by them.
    pub key: Vec<String>,
    /// Start strictly after this pair; `None` reads from the beginning.
    pub after: Option<Watermark>,
    /// Re-read this much before the watermark's cursor (seconds, days or values by type);
    /// `None` until resolved to the cursor kind's default ([`resolve_lookback`]).
    pub lookback: Option<i64>,
    /// What rows whose cursor is NULL get: they have no place in the (cursor, key) order.
    pub null_cursors: NullCursors,
}

/// The look-back when the config sets none: a row written by a transaction that commits
/// late carries a cursor from the database clock at its start (`now()`, `CURRENT_TIMESTAMP`,
/// `ON UPDATE CURRENT_TIMESTAMP`), older than rows committed meanwhile; re-reading five
/// minutes before the watermark catches every transaction shorter than that. A date cursor
/// re-reads its last day (rows updated later that day keep the date, and could sort before
/// the stored key). An integer cursor has no clock to measure by: 0, set it explicitly.
pub const DEFAULT_LOOKBACK_SECONDS: i64 = 300;
pub const DEFAULT_LOOKBACK_DAYS: i64 = 1;

/// What a cursor's values measure, for its default look-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorClock {
    /// Timestamps and datetimes: the look-back is in seconds.
    Time,
    /// Dates: in days.
    Date,
    /// Integers (sequences): in values, and no clock to default by.
    Counter,
}

/// The look-back a window uses: the configured one, else the default for the cursor's
/// clock. A window without a key cannot tell a re-read row from a new one, so it re-reads
/// nothing unless told to (and then is refused).
pub fn resolve_lookback(w: &Window, clock: CursorClock, display_name: &str) -> Result<i64, super::SourceError> {
    match w.lookback {
        Some(n) if n > 0 && w.key.is_empty() => Err(super::SourceError::Refused {
            table: display_name.to_owned(),
            problem: "a look-back re-reads rows, and without a key a re-read row cannot be told from a new one".into(),
            fix: "name the columns that identify a row with `key = [\"col\", ...]`, or set `lookback = 0`".into(),
        }),
        Some(n) => Ok(n),
        None if w.key.is_empty() => Ok(0),
        None => Ok(match clock {
            CursorClock::Time => DEFAULT_LOOKBACK_SECONDS,
            CursorClock::Date => DEFAULT_LOOKBACK_DAYS,
            CursorClock::Counter => 0,
        }),
    }
}

/// Rows with a NULL cursor cannot be resumed after, so each mode says what they get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullCursors {
    /// Merge: every window re-reads them, and the merge by key makes that harmless, so
    /// they are neither lost nor doubled (at the cost of re-reading them each run).
    #[default]
    Reread,
    /// Append: refused while any exists; an insert-only load can neither re-read them
    /// (it would double them) nor skip them (it would lose them).
    Refuse,
}

impl NullCursors {
    pub fn for_mode(mode: crate::config::LoadMode) -> Self {
        if mode == crate::config::LoadMode::Append { NullCursors::Refuse } else { NullCursors::Reread }
    }
}

/// A check run in the read's snapshot before any row is read: a row returned means the
/// window cannot be loaded exactly once, for the reason and with the fix given.
pub struct Guard {
    pub sql: String,
    pub problem: String,
    pub fix: String,
}

impl Window {
    /// Whether `w` was stored by a window keyed as this one is (same columns, same types), so
    /// that resuming strictly after its key is meaningful. A key changed in the config since
    /// (another column, another type) is not: such a window resumes at the stored cursor
    /// inclusively, and the key match of merge and append makes the re-read harmless.
    pub fn resumes_by_key(&self, w: &Watermark, types: &[String]) -> bool {
        w.key.len() == self.key.len()
            && w.key
                .iter()
                .zip(&self.key)
                .zip(types)
                .all(|((k, name), ty)| &k.ty == ty && k.column.as_ref().is_none_or(|c| c == name))
    }

    /// The guards for this window on `from`, with quoted `cursor` and `keys` and the
    /// window's `condition`.
    pub fn guards(&self, from: &str, condition: &str, cursor: &str, keys: &[String]) -> Vec<Guard> {
        let mut out = Vec::new();
        if !keys.is_empty() {
            let any_null: Vec<String> = keys.iter().map(|k| format!("{k} IS NULL")).collect();
            out.push(Guard {
                sql: format!("SELECT 1 FROM {from} WHERE ({condition}) AND ({}) LIMIT 1", any_null.join(" OR ")),
                problem: format!(
                    "key column(s) {} hold NULL in rows of this window: such rows cannot be matched in a merge \
                     (NULL equals nothing) nor resumed after, so they would be loaded again on every run or lost",
                    self.key.join(", ")
                ),
                fix: "set `key = [\"col\", ...]` to NOT NULL columns that identify a row (by default the primary \
                      key is used), or fill the NULLs in the source"
                    .into(),
            });
        }
        if self.null_cursors == NullCursors::Refuse {
            out.push(Guard {
                sql: format!("SELECT 1 FROM {from} WHERE {cursor} IS NULL LIMIT 1"),
                problem: format!(
                    "cursor column {} holds NULL: an append load can neither re-read such rows (it would insert \
                     them twice) nor skip them (they would be lost)",
                    self.cursor
                ),
                fix: "fill the NULLs and make the cursor NOT NULL (e.g. DEFAULT now()), or use mode = \"merge\", \
                      which re-reads NULL-cursor rows on every run and merges them by key"
                    .into(),
            });
        }
        out
    }
}

/// The lower end of a window, in an engine's SQL.
pub enum Lower {
    /// The first load: every row, NULL cursors included (later runs cannot see changes to
    /// those rows, so the cursor should be NOT NULL).
    Everything,
    /// The look-back: from this cursor literal on.
    From(String),
    /// Strictly after the stored pair: `(cursor, k1, …) > (C, K1, …)`.
    After { columns: Vec<String>, values: Vec<String> },
}

/// The WHERE condition of a window on quoted column `cursor`, bounded above by the
/// literal `upper` (the database clock at the start) when there is one; with `nulls` =
/// [`NullCursors::Reread`] rows whose cursor is NULL are in every window.
pub fn condition(cursor: &str, upper: Option<String>, lower: Lower, nulls: NullCursors) -> String {
    // The first load takes NULL cursors already.
    let first = matches!(lower, Lower::Everything);
    let bounded = bounded(cursor, upper, lower);
    if first || nulls == NullCursors::Refuse { bounded } else { format!("(({bounded}) OR {cursor} IS NULL)") }
}

fn bounded(cursor: &str, upper: Option<String>, lower: Lower) -> String {
    let upper = upper.map(|u| format!("{cursor} <= {u}"));
    let lower = match lower {
        Lower::Everything => {
            return match upper {
                Some(u) => format!("({u} OR {cursor} IS NULL)"),
                None => "TRUE".into(),
            };
        }
        Lower::From(v) => format!("{cursor} >= {v}"),
        Lower::After { columns, values } => format!("({}) > ({})", columns.join(", "), values.join(", ")),
    };
    match upper {
        Some(u) => format!("{lower} AND {u}"),
        None => lower,
    }
}

/// The query for the largest (cursor, key) of a window: `selects` are the output
/// expressions (cursor first), `order` the quoted cursor and key columns. Outputs are
/// aliased so ORDER BY names the table's columns, not them.
pub fn watermark_query(from: &str, condition: &str, selects: &[String], order: &[String]) -> String {
    let selects: Vec<String> = selects.iter().enumerate().map(|(i, s)| format!("{s} AS _a2b_w{i}")).collect();
    let order: Vec<String> = order.iter().map(|c| format!("{c} DESC")).collect();
    format!(
        "SELECT {} FROM {from} WHERE {condition} AND {} IS NOT NULL ORDER BY {} LIMIT 1",
        selects.join(", "),
        order[0].trim_end_matches(" DESC"),
        order.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_round_trip_losslessly() {
        let w = Watermark {
            cursor: CursorValue::Timestamp(1_700_000_000_123_457),
            key: vec![KeyValue { ty: "int8".into(), text: "9223372036854775807".into(), column: Some("id".into()) }],
        };
        let back = Watermark::from_json(&w.to_json()).unwrap();
        assert_eq!(back, w);
        assert!(Watermark::from_json("{").is_err());
    }

    #[test]
    fn a_watermark_resumes_by_key_only_under_the_same_key() {
        let w = Window {
            cursor: "c".into(),
            key: vec!["id".into()],
            after: None,
            lookback: None,
            null_cursors: NullCursors::Reread,
        };
        let kv = |ty: &str, column: Option<&str>| KeyValue {
            ty: ty.into(),
            text: "1".into(),
            column: column.map(Into::into),
        };
        let mark = |key| Watermark { cursor: CursorValue::Int(5), key };
        let types = ["bigint".to_string()];
        assert!(w.resumes_by_key(&mark(vec![kv("bigint", Some("id"))]), &types));
        assert!(w.resumes_by_key(&mark(vec![kv("bigint", None)]), &types), "older watermarks name no column");
        assert!(!w.resumes_by_key(&mark(vec![kv("bigint", Some("other_id"))]), &types));
        assert!(!w.resumes_by_key(&mark(vec![kv("varchar(40)", Some("code"))]), &types));
        assert!(!w.resumes_by_key(&mark(vec![]), &types));
    }

    #[test]
    fn merge_windows_reread_null_cursors_and_append_windows_do_not() {
        let after = || Lower::After { columns: vec!["c".into(), "k".into()], values: vec!["5".into(), "7".into()] };
        assert_eq!(
            condition("c", Some("9".into()), after(), NullCursors::Reread),
            "(((c, k) > (5, 7) AND c <= 9) OR c IS NULL)"
        );
        assert_eq!(condition("c", Some("9".into()), after(), NullCursors::Refuse), "(c, k) > (5, 7) AND c <= 9");
        assert_eq!(condition("c", None, Lower::Everything, NullCursors::Reread), "TRUE");
        assert_eq!(condition("c", Some("9".into()), Lower::Everything, NullCursors::Reread), "(c <= 9 OR c IS NULL)");
    }

    #[test]
    fn guards_check_keys_in_the_window_and_cursors_for_append() {
        let w = |nulls| Window {
            cursor: "c".into(),
            key: vec!["k".into()],
            after: None,
            lookback: Some(0),
            null_cursors: nulls,
        };
        let g = w(NullCursors::Reread).guards("t", "X", "\"c\"", &["\"k\"".into()]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].sql, "SELECT 1 FROM t WHERE (X) AND (\"k\" IS NULL) LIMIT 1");
        let g = w(NullCursors::Refuse).guards("t", "X", "\"c\"", &["\"k\"".into()]);
        assert_eq!(g[1].sql, "SELECT 1 FROM t WHERE \"c\" IS NULL LIMIT 1");
        assert!(g[1].fix.contains("merge"));
    }
}
