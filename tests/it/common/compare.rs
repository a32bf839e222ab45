//! Value-by-value comparison of a PostgreSQL table with its BigQuery copy. Both sides are
//! reduced to one canonical text per cell, each by its own route: the source through sqlx's
//! typed decoding (and PostgreSQL's own numeric text), the destination through BigQuery's
//! REST values. Nothing here shares code with aurora2bq's decoders.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;
use sqlx::Row;

/// How a column is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float32,
    Float64,
    /// Read from PostgreSQL as text; trailing fractional zeros do not count.
    Decimal,
    Text,
    Bool,
    Date,
    Datetime,
    Timestamp,
    Bytes,
    Uuid,
    Json,
}

pub type Rows = BTreeMap<i64, Vec<Option<String>>>;

/// The SELECT expression that reads a column for comparison.
fn select_expr(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Decimal => format!("\"{name}\"::text"),
        Kind::Int => format!("\"{name}\"::int8"),
        _ => format!("\"{name}\""),
    }
}

/// Plain decimal text without trailing fractional zeros; `1E-9` (Python's Decimal, which
/// bqemulator uses, prints small values so) becomes `0.000000001`.
pub fn trim_decimal(s: &str) -> String {
    let plain;
    let s = match s.split_once(['E', 'e']) {
        None => s,
        Some((mantissa, exp)) => {
            let exp: i64 = exp.parse().expect("decimal exponent");
            let (neg, m) = mantissa.strip_prefix('-').map(|m| (true, m)).unwrap_or((false, mantissa));
            let (int, frac) = m.split_once('.').unwrap_or((m, ""));
            let digits = format!("{int}{frac}");
            let point = int.len() as i64 + exp;
            let body = if point <= 0 {
                format!("0.{}{digits}", "0".repeat((-point) as usize))
            } else if point as usize >= digits.len() {
                format!("{digits}{}", "0".repeat(point as usize - digits.len()))
            } else {
                format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
            };
            plain = format!("{}{body}", if neg { "-" } else { "" });
            &plain
        }
    };
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" { "0".into() } else { t.to_owned() }
    } else {
        s.to_owned()
    }
}

/// Every row of `table`, keyed by its first (integer key) column.
pub async fn source_rows(conn: &mut sqlx::PgConnection, table: &str, cols: &[(&str, Kind)]) -> Rows {
    let list: Vec<String> = cols.iter().map(|(n, k)| select_expr(n, *k)).collect();
    let sql = format!("SELECT {} FROM {table}", list.join(", "));
    let rows = sqlx::query(&sql).fetch_all(conn).await.expect("read the source");
    let mut out = Rows::new();
    for r in rows {
        let key: i64 = r.get(0);
        let mut cells = Vec::new();
        for (i, (_, kind)) in cols.iter().enumerate() {
            let cell = match kind {
                Kind::Int => r.get::<Option<i64>, _>(i).map(|v| v.to_string()),
                Kind::Float32 => r.get::<Option<f32>, _>(i).map(|v| format!("{:?}", v as f64)),
                Kind::Float64 => r.get::<Option<f64>, _>(i).map(|v| format!("{v:?}")),
                Kind::Decimal => r.get::<Option<String>, _>(i).map(|v| trim_decimal(&v)),
                Kind::Text => r.get::<Option<String>, _>(i),
                Kind::Bool => r.get::<Option<bool>, _>(i).map(|v| v.to_string()),
                Kind::Date => r.get::<Option<chrono::NaiveDate>, _>(i).map(|v| v.format("%Y-%m-%d").to_string()),
                Kind::Datetime => {
                    r.get::<Option<chrono::NaiveDateTime>, _>(i).map(|v| v.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
                }
                Kind::Timestamp => {
                    r.get::<Option<chrono::DateTime<chrono::Utc>>, _>(i).map(|v| v.timestamp_micros().to_string())
                }
                Kind::Bytes => {
                    r.get::<Option<Vec<u8>>, _>(i).map(|v| base64::engine::general_purpose::STANDARD.encode(v))
                }
                Kind::Uuid => r.get::<Option<uuid::Uuid>, _>(i).map(|v| v.to_string()),
                Kind::Json => r.get::<Option<Value>, _>(i).map(|v| v.to_string()),
            };
            cells.push(cell);
        }
        out.insert(key, cells);
    }
    out
}

/// The same canonical form from BigQuery's REST values (`useInt64Timestamp`).
pub fn bq_rows(rows: Vec<Vec<Value>>, cols: &[(&str, Kind)]) -> Rows {
    let mut out = Rows::new();
    for r in rows {
        let key: i64 = r[0].as_str().expect("key").parse().expect("integer key");
        let cells = r.iter().zip(cols).map(|(v, (_, kind))| v.as_str().map(|s| bq_cell(s, *kind))).collect();
        assert!(out.insert(key, cells).is_none(), "key {key} appears twice in BigQuery");
    }
    out
}

fn bq_cell(s: &str, kind: Kind) -> String {
    match kind {
        Kind::Float32 | Kind::Float64 => format!("{:?}", s.parse::<f64>().unwrap_or_else(|_| panic!("float {s}"))),
        Kind::Decimal => trim_decimal(s),
        Kind::Datetime => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("DATETIME {s}: {e}"))
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        Kind::Json => serde_json::from_str::<Value>(s).unwrap_or_else(|e| panic!("JSON {s}: {e}")).to_string(),
        _ => s.to_owned(),
    }
}

/// Panics with the first differences if the two sides differ in any row or cell.
pub fn assert_same(source: &Rows, dest: &Rows, cols: &[(&str, Kind)]) {
    let mut problems = Vec::new();
    for (k, row) in source {
        match dest.get(k) {
            None => problems.push(format!("key {k}: missing in BigQuery")),
            Some(d) => {
                for (i, (name, _)) in cols.iter().enumerate() {
                    if row[i] != d[i] {
                        problems.push(format!("key {k}, {name}: source {:?}, BigQuery {:?}", row[i], d[i]));
                    }
                }
            }
        }
    }
    for k in dest.keys().filter(|k| !source.contains_key(k)) {
        problems.push(format!("key {k}: in BigQuery but not in the source"));
    }
    assert!(
        problems.is_empty(),
        "{} differences (source {} rows, BigQuery {} rows); first ones:\n{}",
        problems.len(),
        source.len(),
        dest.len(),
        problems.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}
