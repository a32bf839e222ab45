//! SQL for incremental windows on MySQL: as for PostgreSQL (window_sql.rs there), with
//! MySQL literals. Text keys are written as hex in the column's own collation, so the
//! comparison means what the ORDER BY means whatever the SQL mode.

use super::decode::cursor_int;
use super::mapping::{ColumnPlan, MyKind};
use crate::source::window::{CursorValue, Guard, KeyValue, Lower, Watermark, Window, condition, watermark_query};

pub struct WindowSql {
    pub cursor: String,
    pub kind: MyKind,
    /// (quoted column, how its literal is written) per key column.
    pub keys: Vec<(String, KeyType)>,
    pub window: Window,
    /// The upper bound as text (`NOW(6)` in UTC, `CURDATE()`), fixed at the start.
    pub upper: Option<String>,
}

#[derive(Debug, Clone)]
pub enum KeyType {
    Number,
    /// A string in this collation (or binary when `None`).
    Text(Option<String>),
}

impl KeyType {
    pub fn of(p: &ColumnPlan) -> KeyType {
        match p.kind {
            MyKind::Int | MyKind::UnsignedBig | MyKind::Numeric | MyKind::BigNumeric | MyKind::Bool => KeyType::Number,
            MyKind::Bytes | MyKind::Bit => KeyType::Text(None),
            _ => KeyType::Text(p.collation.clone()),
        }
    }

    fn name(&self) -> String {
        match self {
            KeyType::Number => "number".into(),
            KeyType::Text(None) => "binary".into(),
            KeyType::Text(Some(c)) => c.clone(),
        }
    }

    fn literal(ty: &str, text: &str) -> String {
        let hex: String = text.bytes().map(|b| format!("{b:02X}")).collect();
        match ty {
            "number" => text.chars().filter(|c| c.is_ascii_digit() || *c == '-' || *c == '.').collect(),
            // Binary keys are stored as the hex that HEX() gave.
            "binary" => format!("X'{}'", text.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>()),
            coll => {
                let coll: String = coll.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                // The stored text is UTF-8 (read as CHAR over a utf8mb4 connection); a
                // collation only applies to its own character set, which every MySQL
                // collation name starts with (latin1_swedish_ci, utf8mb3_general_ci, ...).
                let charset = coll.split('_').next().unwrap_or("utf8mb4");
                if charset == "utf8mb4" {
                    format!("CONVERT(X'{hex}' USING utf8mb4) COLLATE {coll}")
                } else {
                    format!("CONVERT(CONVERT(X'{hex}' USING utf8mb4) USING {charset}) COLLATE {coll}")
                }
            }
        }
    }
}

pub fn cursor_ok(kind: MyKind) -> bool {
    matches!(kind, MyKind::Int | MyKind::Date | MyKind::Datetime | MyKind::Timestamp)
}

/// The upper bound's SQL for a cursor kind (the session time zone is UTC).
pub fn upper_sql(kind: MyKind) -> Option<&'static str> {
    match kind {
        MyKind::Datetime | MyKind::Timestamp => Some("SELECT CAST(NOW(6) AS CHAR)"),
        MyKind::Date => Some("SELECT CAST(CURDATE() AS CHAR)"),
        _ => None,
    }
}

/// An upper bound given as an integer (µs, days or the integer, as `cursor_int` reads it),
/// as the text `upper` holds: made from the number, so it never carries anything else.
pub fn bound_text(kind: MyKind, n: i64) -> String {
    let v = match kind {
        MyKind::Date => CursorValue::Date(n as i32),
        MyKind::Datetime | MyKind::Timestamp => CursorValue::Datetime(n),
        _ => CursorValue::Int(n),
    };
    text_of(kind, &v).trim_matches('\'').to_owned()
}

fn text_of(kind: MyKind, v: &CursorValue) -> String {
    match (kind, v) {
        (_, CursorValue::Int(n)) => n.to_string(),
        (_, CursorValue::Date(d)) => {
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(*d as i64);
            format!("'{}'", date.format("%Y-%m-%d"))
        }
        (_, CursorValue::Timestamp(us) | CursorValue::Datetime(us)) => {
            let t = chrono::DateTime::from_timestamp_micros(*us).expect("in range").naive_utc();
            format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f"))
        }
    }
}

fn minus(kind: MyKind, v: &CursorValue, back: i64) -> CursorValue {
    match v {
        CursorValue::Int(n) => CursorValue::Int(n.saturating_sub(back)),
        CursorValue::Date(d) => CursorValue::Date(d.saturating_sub(back as i32)),
        CursorValue::Timestamp(us) if kind == MyKind::Timestamp => {
            CursorValue::Timestamp(us.saturating_sub(back * 1_000_000))
        }
        CursorValue::Timestamp(us) | CursorValue::Datetime(us) => {
            CursorValue::Datetime(us.saturating_sub(back * 1_000_000))
        }
    }
}

impl WindowSql {
    pub fn condition(&self) -> String {
        let lower = match &self.window.after {
            None => Lower::Everything,
            Some(w) if self.window.lookback.unwrap_or(0) > 0 => {
                let back = self.window.lookback.unwrap_or(0);
                Lower::From(text_of(self.kind, &minus(self.kind, &w.cursor, back)))
            }
            Some(w) if !self.window.resumes_by_key(w, &self.keys.iter().map(|(_, t)| t.name()).collect::<Vec<_>>()) => {
                Lower::From(text_of(self.kind, &w.cursor))
            }
            Some(w) => Lower::After {
                columns: std::iter::once(self.cursor.clone()).chain(self.keys.iter().map(|(c, _)| c.clone())).collect(),
                values: std::iter::once(text_of(self.kind, &w.cursor))
                    .chain(w.key.iter().map(|k| KeyType::literal(&k.ty, &k.text)))
                    .collect(),
            },
        };
        let upper = self.upper.as_ref().map(|u| format!("'{}'", u.replace('\'', "")));
        condition(&self.cursor, upper, lower, self.window.null_cursors)
    }

    /// The checks to run in the snapshot before reading.
    pub fn guards(&self, from: &str) -> Vec<Guard> {
        let keys: Vec<String> = self.keys.iter().map(|(k, _)| k.clone()).collect();
        self.window.guards(from, &self.condition(), &self.cursor, &keys)
    }

    pub fn watermark_query(&self, from: &str) -> String {
        let c = &self.cursor;
        let selects: Vec<String> = std::iter::once(format!("CAST({c} AS CHAR)"))
            .chain(self.keys.iter().map(|(k, ty)| match ty {
                KeyType::Text(None) => format!("HEX({k})"),
                _ => format!("CAST({k} AS CHAR)"),
            }))
            .collect();
        let order: Vec<String> = std::iter::once(c.clone()).chain(self.keys.iter().map(|(k, _)| k.clone())).collect();
        watermark_query(from, &self.condition(), &selects, &order)
    }

    /// The watermark from the watermark query's text values.
    pub fn watermark(&self, cursor: &str, keys: Vec<String>) -> Result<Watermark, String> {
        let n = cursor_int(self.kind, cursor)?;
        let cursor = match self.kind {
            MyKind::Int => CursorValue::Int(n),
            MyKind::Date => CursorValue::Date(n as i32),
            MyKind::Timestamp => CursorValue::Timestamp(n),
            _ => CursorValue::Datetime(n),
        };
        let key = self
            .keys
            .iter()
            .zip(&self.window.key)
            .zip(keys)
            .map(|(((_, ty), name), text)| KeyValue { ty: ty.name(), text, column: Some(name.clone()) })
            .collect();
        Ok(Watermark { cursor, key })
    }
}
