//! SQL for incremental windows on PostgreSQL: the WHERE clause that resumes strictly after
//! the stored (cursor, key) pair (or re-reads a look-back before it), bounded above by the
//! database clock at the start of the run; and the query that finds the new watermark
//! inside the same snapshot. COPY takes no parameters, so values are written as literals.

use super::catalog::quote_ident;
use super::mapping::ColumnPlan;
use crate::bq_model::BqType;
use crate::source::window::{CursorValue, Guard, KeyValue, Lower, Watermark, Window, condition, watermark_query};

/// The cursor column's kind of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    Int,
    Timestamp,
    Datetime,
    Date,
}

impl CursorKind {
    pub fn of(plan: &ColumnPlan) -> Option<CursorKind> {
        if plan.array || plan.expr != quote_ident(&plan.column.name) {
            return None;
        }
        match plan.column.field.ty {
            BqType::Int64 => Some(CursorKind::Int),
            BqType::Timestamp => Some(CursorKind::Timestamp),
            BqType::Datetime => Some(CursorKind::Datetime),
            BqType::Date => Some(CursorKind::Date),
            _ => None,
        }
    }

    /// SQL giving the column's value as an int8 (µs, days or the integer), exactly, on
    /// every PostgreSQL version (EXTRACT(EPOCH) is a double before 14).
    fn as_int8(self, col: &str) -> String {
        match self {
            CursorKind::Int => format!("{col}::int8"),
            CursorKind::Date => format!("({col} - date '1970-01-01')::int8"),
            CursorKind::Timestamp | CursorKind::Datetime => format!(
                "(extract(epoch from date_trunc('minute', {col}))::int8 * 1000000 + extract(microseconds from {col})::int8)"
            ),
        }
    }

    /// The clock value that bounds the window from above, or `None` for integer cursors.
    pub fn upper_bound_sql(self) -> Option<String> {
        match self {
            CursorKind::Int => None,
            CursorKind::Timestamp => Some(CursorKind::Timestamp.as_int8("now()")),
            CursorKind::Datetime => Some(CursorKind::Datetime.as_int8("localtimestamp")),
            CursorKind::Date => Some(CursorKind::Date.as_int8("current_date")),
        }
    }

    fn value(self, n: i64) -> CursorValue {
        match self {
            CursorKind::Int => CursorValue::Int(n),
            CursorKind::Timestamp => CursorValue::Timestamp(n),
            CursorKind::Datetime => CursorValue::Datetime(n),
            CursorKind::Date => CursorValue::Date(n as i32),
        }
    }

    /// A literal of the column's type for an int8 value as `as_int8` gives it.
    fn literal(self, n: i64) -> String {
        match self {
            CursorKind::Int => n.to_string(),
            CursorKind::Date => format!("(date '1970-01-01' + {n})"),
            CursorKind::Timestamp => format!("(timestamptz 'epoch' + {n} * interval '1 microsecond')"),
            CursorKind::Datetime => format!("(timestamp 'epoch' + {n} * interval '1 microsecond')"),
        }
    }

    /// Look-back units: seconds for times, days for dates, values for integers.
    fn lookback(self, n: i64, back: i64) -> i64 {
        match self {
            CursorKind::Timestamp | CursorKind::Datetime => n.saturating_sub(back.saturating_mul(1_000_000)),
            _ => n.saturating_sub(back),
        }
    }
}

fn raw(v: &CursorValue) -> i64 {
    match v {
        CursorValue::Int(n) | CursorValue::Timestamp(n) | CursorValue::Datetime(n) => *n,
        CursorValue::Date(d) => *d as i64,
    }
}

/// A text literal cast to the key column's declared type.
fn key_literal(k: &KeyValue) -> String {
    format!("'{}'::{}", k.text.replace('\'', "''"), k.ty)
}

/// The window's columns, resolved against the table.
pub struct WindowSql {
    pub cursor: String,
    pub kind: CursorKind,
    /// (quoted column, declared type) of each key column.
    pub keys: Vec<(String, String)>,
    pub window: Window,
    /// The upper bound, as `as_int8` gives it, fixed when the snapshot opened.
    pub upper: Option<i64>,
}

impl WindowSql {
    /// The WHERE condition selecting the window's rows.
    pub fn condition(&self) -> String {
        let lower = match &self.window.after {
            None => Lower::Everything,
            Some(w) if self.window.lookback.unwrap_or(0) > 0 => {
                let back = self.window.lookback.unwrap_or(0);
                Lower::From(self.kind.literal(self.kind.lookback(raw(&w.cursor), back)))
            }
            Some(w) if !self.window.resumes_by_key(w, &self.key_types()) => {
                Lower::From(self.kind.literal(raw(&w.cursor)))
            }
            Some(w) => Lower::After {
                columns: std::iter::once(self.cursor.clone()).chain(self.keys.iter().map(|(c, _)| c.clone())).collect(),
                values: std::iter::once(self.kind.literal(raw(&w.cursor)))
                    .chain(w.key.iter().map(key_literal))
                    .collect(),
            },
        };
        condition(&self.cursor, self.upper.map(|u| self.kind.literal(u)), lower, self.window.null_cursors)
    }

    fn key_types(&self) -> Vec<String> {
        self.keys.iter().map(|(_, ty)| ty.clone()).collect()
    }

    /// The checks to run in the snapshot before reading.
    pub fn guards(&self, from: &str) -> Vec<Guard> {
        let keys: Vec<String> = self.keys.iter().map(|(k, _)| k.clone()).collect();
        self.window.guards(from, &self.condition(), &self.cursor, &keys)
    }

    /// The largest (cursor, key) in the window, in the same snapshot.
    pub fn watermark_query(&self, from: &str) -> String {
        let selects: Vec<String> = std::iter::once(self.kind.as_int8(&self.cursor))
            .chain(self.keys.iter().map(|(k, _)| format!("{k}::text")))
            .collect();
        let order: Vec<String> =
            std::iter::once(self.cursor.clone()).chain(self.keys.iter().map(|(k, _)| k.clone())).collect();
        watermark_query(from, &self.condition(), &selects, &order)
    }

    pub fn watermark(&self, cursor: i64, keys: Vec<String>) -> Watermark {
        Watermark {
            cursor: self.kind.value(cursor),
            key: self
                .keys
                .iter()
                .zip(&self.window.key)
                .zip(keys)
                .map(|(((_, ty), name), text)| KeyValue { ty: ty.clone(), text, column: Some(name.clone()) })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::window::NullCursors;

    fn ws(after: Option<Watermark>, lookback: i64) -> WindowSql {
        WindowSql {
            cursor: "\"updated_at\"".into(),
            kind: CursorKind::Timestamp,
            keys: vec![("\"id\"".into(), "bigint".into()), ("\"name\"".into(), "text".into())],
            window: Window {
                cursor: "updated_at".into(),
                key: vec!["id".into(), "name".into()],
                after,
                lookback: Some(lookback),
                null_cursors: NullCursors::Refuse,
            },
            upper: Some(1_000_000_000),
        }
    }

    #[test]
    fn first_load_takes_everything_up_to_the_clock_and_null_cursors() {
        assert_eq!(
            ws(None, 0).condition(),
            "(\"updated_at\" <= (timestamptz 'epoch' + 1000000000 * interval '1 microsecond') OR \"updated_at\" IS NULL)"
        );
    }

    #[test]
    fn resumes_strictly_after_the_pair_with_quoted_keys() {
        let w = Watermark {
            cursor: CursorValue::Timestamp(5),
            key: vec![
                KeyValue { ty: "bigint".into(), text: "7".into(), column: None },
                KeyValue { ty: "text".into(), text: "o'k".into(), column: None },
            ],
        };
        let c = ws(Some(w), 0).condition();
        assert!(c.starts_with("(\"updated_at\", \"id\", \"name\") > ((timestamptz 'epoch' + 5 * interval '1 microsecond'), '7'::bigint, 'o''k'::text)"), "{c}");
        assert!(c.ends_with("<= (timestamptz 'epoch' + 1000000000 * interval '1 microsecond')"), "{c}");
    }

    #[test]
    fn lookback_rereads_before_the_watermark() {
        let w = Watermark { cursor: CursorValue::Timestamp(10_000_000), key: vec![] };
        let c = ws(Some(w), 3).condition();
        assert!(c.starts_with("\"updated_at\" >= (timestamptz 'epoch' + 7000000 * interval '1 microsecond')"), "{c}");
    }
}
