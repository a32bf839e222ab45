//! The BigQuery column model shared by sources and the sink: each source type maps to one
//! [`BqType`], and each `BqType` has exactly one Arrow type on the wire (docs/architecture.md, "Storage Write rules").

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// A BigQuery column type this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BqType {
    Int64,
    Float64,
    Bool,
    String,
    Json,
    Bytes,
    /// NUMERIC: 38 digits, 9 after the point.
    Numeric,
    /// BIGNUMERIC: here 76 digits, 38 after the point.
    BigNumeric,
    Date,
    /// Wall-clock date and time, no zone (PostgreSQL `timestamp`, MySQL `DATETIME`).
    Datetime,
    /// An instant (PostgreSQL `timestamptz`).
    Timestamp,
    Time,
}

pub const NUMERIC_SCALE: i8 = 9;
pub const BIGNUMERIC_SCALE: i8 = 38;

impl BqType {
    /// The name used in BigQuery's REST table schema.
    pub fn rest_name(self) -> &'static str {
        match self {
            BqType::Int64 => "INT64",
            BqType::Float64 => "FLOAT64",
            BqType::Bool => "BOOL",
            BqType::String => "STRING",
            BqType::Json => "JSON",
            BqType::Bytes => "BYTES",
            BqType::Numeric => "NUMERIC",
            BqType::BigNumeric => "BIGNUMERIC",
            BqType::Date => "DATE",
            BqType::Datetime => "DATETIME",
            BqType::Timestamp => "TIMESTAMP",
            BqType::Time => "TIME",
        }
    }

    /// Parses a REST type name, including BigQuery's legacy aliases.
    pub fn from_rest_name(name: &str) -> Option<BqType> {
        Some(match name {
            "INT64" | "INTEGER" => BqType::Int64,
            "FLOAT64" | "FLOAT" => BqType::Float64,
            "BOOL" | "BOOLEAN" => BqType::Bool,
            "STRING" => BqType::String,
            "JSON" => BqType::Json,
            "BYTES" => BqType::Bytes,
            "NUMERIC" | "DECIMAL" => BqType::Numeric,
            "BIGNUMERIC" | "BIGDECIMAL" => BqType::BigNumeric,
            "DATE" => BqType::Date,
            "DATETIME" => BqType::Datetime,
            "TIMESTAMP" => BqType::Timestamp,
            "TIME" => BqType::Time,
            _ => return None,
        })
    }

    /// The Arrow type the Storage Write API expects for this column.
    pub fn arrow(self) -> DataType {
        match self {
            BqType::Int64 => DataType::Int64,
            BqType::Float64 => DataType::Float64,
            BqType::Bool => DataType::Boolean,
            BqType::String | BqType::Json => DataType::Utf8,
            BqType::Bytes => DataType::Binary,
            BqType::Numeric => DataType::Decimal128(38, NUMERIC_SCALE),
            BqType::BigNumeric => DataType::Decimal256(76, BIGNUMERIC_SCALE),
            BqType::Date => DataType::Date32,
            BqType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
            BqType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            BqType::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }
}

/// One destination column. Every column is NULLABLE in BigQuery: a NOT NULL constraint
/// upstream can be dropped at any time, and relaxing REQUIRED later needs a schema change
/// on every target, so it is not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BqField {
    pub name: String,
    pub ty: BqType,
    pub repeated: bool,
}

impl BqField {
    /// A column of one value per row (not an ARRAY).
    pub fn scalar(name: impl Into<String>, ty: BqType) -> Self {
        BqField { name: name.into(), ty, repeated: false }
    }
}

/// The Arrow schema of the batches a source produces for these columns.
pub fn arrow_schema(fields: &[BqField]) -> Arc<Schema> {
    let fields: Vec<Field> = fields
        .iter()
        .map(|f| {
            let dt = if f.repeated {
                DataType::List(Arc::new(Field::new("item", f.ty.arrow(), true)))
            } else {
                f.ty.arrow()
            };
            Field::new(&f.name, dt, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Limits of BigQuery's DATE, DATETIME and TIMESTAMP: 0001-01-01 to 9999-12-31.
pub mod limits {
    /// Days from 1970-01-01 to 0001-01-01.
    pub const MIN_DATE_DAYS: i64 = -719_162;
    /// Days from 1970-01-01 to 9999-12-31.
    pub const MAX_DATE_DAYS: i64 = 2_932_896;
    /// Microseconds from the epoch to 0001-01-01T00:00:00.
    pub const MIN_MICROS: i64 = -62_135_596_800_000_000;
    /// Microseconds from the epoch to 9999-12-31T23:59:59.999999.
    pub const MAX_MICROS: i64 = 253_402_300_799_999_999;
}

/// Prefixes BigQuery reserves for its own pseudo-columns, and ours for metadata columns.
const RESERVED_PREFIXES: &[&str] =
    &["_table_", "_file_", "_partition", "_row_timestamp", "__root__", "_colidentifier", "_change_", "_aurora2bq_"];

/// Why `name` cannot be a BigQuery column name, if it cannot: the one rule for every column
/// aurora2bq writes, checked by the source before anything is read and by the sink again.
pub fn column_name_problem(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let mut chars = name.chars();
    if !matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') {
        return Some("it must start with a letter or an underscore".into());
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("it may hold only letters, digits and underscores".into());
    }
    if name.len() > 300 {
        return Some("it is longer than 300 characters".into());
    }
    RESERVED_PREFIXES
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| format!("names starting with {p:?} are reserved (by BigQuery, or by aurora2bq's metadata columns)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_bigquery_refuses() {
        for bad in [
            "1st",
            "a b",
            "é",
            "_TABLE_x",
            "_file_name",
            "_PARTITIONTIME",
            "_row_timestamp",
            "__root__",
            "_COLIDENTIFIER_1",
            "_CHANGE_TYPE",
            "_aurora2bq_run_id",
        ] {
            assert!(column_name_problem(bad).is_some(), "{bad}");
        }
        for good in ["a", "_x", "Order_Date2", "change_type", "_table"] {
            assert_eq!(column_name_problem(good), None, "{good}");
        }
    }

    #[test]
    fn every_type_round_trips_its_rest_name() {
        use BqType::*;
        for t in [Int64, Float64, Bool, String, Json, Bytes, Numeric, BigNumeric, Date, Datetime, Timestamp, Time] {
            assert_eq!(BqType::from_rest_name(t.rest_name()), Some(t));
        }
        assert_eq!(BqType::from_rest_name("INTEGER"), Some(Int64));
        assert_eq!(BqType::from_rest_name("GEOGRAPHY"), None);
    }

    #[test]
    fn date_limits_match_the_calendar() {
        use chrono::NaiveDate;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let min = NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let max = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        assert_eq!((min - epoch).num_days(), limits::MIN_DATE_DAYS);
        assert_eq!((max - epoch).num_days(), limits::MAX_DATE_DAYS);
        assert_eq!(limits::MIN_MICROS, limits::MIN_DATE_DAYS * 86_400_000_000);
        assert_eq!(limits::MAX_MICROS, (limits::MAX_DATE_DAYS + 1) * 86_400_000_000 - 1);
    }
}
