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

/// One key column's value, as text the database casts back to the column's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The database type name used in the cast (`int8`, `text`, `uuid`, ...).
    pub ty: String,
    pub text: String,
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
    /// Re-read this much before the watermark's cursor (seconds, days or values by type).
    pub lookback: i64,
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
/// literal `upper` (the database clock at the start) when there is one.
pub fn condition(cursor: &str, upper: Option<String>, lower: Lower) -> String {
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
            key: vec![KeyValue { ty: "int8".into(), text: "9223372036854775807".into() }],
        };
        let back = Watermark::from_json(&w.to_json()).unwrap();
        assert_eq!(back, w);
        assert!(Watermark::from_json("{").is_err());
    }
}
