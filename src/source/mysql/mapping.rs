//! The one BigQuery type for each MySQL type (docs/types.md; MySQL 8.0 semantics, MariaDB
//! stands in for it in tests), and how each column is selected and decoded.

use crate::bq_model::{BqField, BqType};
use crate::config::Cast;
use crate::source::Column;
use crate::source::plan::PlanError;

/// How a value's text (the text protocol) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyKind {
    Int,
    /// BIGINT UNSIGNED: can exceed INT64, so NUMERIC.
    UnsignedBig,
    /// tinyint(1) / BOOL: 0 or 1 (anything else is refused).
    Bool,
    Float32,
    Float64,
    Numeric,
    BigNumeric,
    Text,
    Bytes,
    /// BIT(n): a big-endian bit string of up to 8 bytes.
    Bit,
    Date,
    Datetime,
    Timestamp,
    Time,
}

/// A column from information_schema (or a query's result metadata).
#[derive(Debug, Clone)]
pub struct MyColumn {
    pub name: String,
    /// `DATA_TYPE`, lowercase: `int`, `decimal`, `varchar`, ...
    pub data_type: String,
    /// `COLUMN_TYPE`: `tinyint(1)`, `bigint(20) unsigned`, `decimal(12,2)`, ...
    pub column_type: String,
    pub precision: Option<u64>,
    pub scale: Option<u64>,
    /// `None` for binary strings.
    pub charset: Option<String>,
    pub collation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub column: Column,
    pub expr: String,
    pub kind: MyKind,
    pub collation: Option<String>,
}

impl crate::source::plan::Planned for ColumnPlan {
    fn column(&self) -> &Column {
        &self.column
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn decimal(precision: Option<u64>, scale: Option<u64>) -> (MyKind, BqType) {
    // A query's DECIMAL without precision (result metadata only): BIGNUMERIC, with values
    // beyond it refused.
    let Some(p) = precision.map(|p| p as i64) else { return (MyKind::BigNumeric, BqType::BigNumeric) };
    let s = scale.unwrap_or(30) as i64;
    if s <= 9 && p - s <= 29 {
        (MyKind::Numeric, BqType::Numeric)
    } else if p - s <= 38 {
        (MyKind::BigNumeric, BqType::BigNumeric)
    } else {
        // More than BIGNUMERIC's 38 integer digits (e.g. DECIMAL(65,0)): the exact text, as
        // PostgreSQL's wide numerics.
        (MyKind::Text, BqType::String)
    }
}

fn scalar(c: &MyColumn) -> Option<(MyKind, BqType)> {
    let unsigned = c.column_type.contains("unsigned");
    Some(match c.data_type.as_str() {
        "tinyint" if c.column_type.starts_with("tinyint(1)") && !unsigned => (MyKind::Bool, BqType::Bool),
        "bool" | "boolean" => (MyKind::Bool, BqType::Bool),
        "bigint" if unsigned => (MyKind::UnsignedBig, BqType::Numeric),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => (MyKind::Int, BqType::Int64),
        "decimal" | "numeric" => decimal(c.precision, c.scale),
        "float" => (MyKind::Float32, BqType::Float64),
        "double" | "real" => (MyKind::Float64, BqType::Float64),
        "bit" if c.precision.is_some_and(|p| p <= 63) => (MyKind::Bit, BqType::Int64),
        // BIT(64), or a query's BIT whose width the result metadata does not give: read as
        // CAST(... AS UNSIGNED) (see `plan`), exact up to 2^64 - 1.
        "bit" => (MyKind::UnsignedBig, BqType::Numeric),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            if c.charset.is_none() { (MyKind::Bytes, BqType::Bytes) } else { (MyKind::Text, BqType::String) }
        }
        "json" => (MyKind::Text, BqType::Json),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => (MyKind::Bytes, BqType::Bytes),
        "date" => (MyKind::Date, BqType::Date),
        "datetime" => (MyKind::Datetime, BqType::Datetime),
        "timestamp" => (MyKind::Timestamp, BqType::Timestamp),
        "time" => (MyKind::Time, BqType::Time),
        _ => return None,
    })
}

impl crate::source::plan::NamedColumn for MyColumn {
    fn name(&self) -> &str {
        &self.name
    }
    fn declared(&self) -> &str {
        &self.column_type
    }
}

/// Plans a column, or says why it cannot be copied.
pub fn plan(c: &MyColumn, cast: Option<Cast>) -> Result<ColumnPlan, PlanError> {
    let q = quote_ident(&c.name);
    let make = |kind, ty, expr| ColumnPlan {
        column: Column {
            name: c.name.clone(),
            source_type: c.column_type.clone(),
            field: BqField { name: c.name.clone(), ty, repeated: false },
        },
        expr,
        kind,
        collation: c.collation.clone(),
    };
    let is_decimal = matches!(c.data_type.as_str(), "decimal" | "numeric");
    Ok(match cast {
        Some(Cast::Text) => make(MyKind::Text, BqType::String, format!("CAST({q} AS CHAR CHARACTER SET utf8mb4)")),
        Some(Cast::Numeric | Cast::BigNumeric) if !is_decimal => {
            return Err(PlanError::Invalid(
                "cast to numeric or bignumeric applies to decimal columns only; use \"text\"".into(),
            ));
        }
        Some(Cast::Numeric) => make(MyKind::Numeric, BqType::Numeric, q),
        Some(Cast::BigNumeric) => make(MyKind::BigNumeric, BqType::BigNumeric, q),
        None => {
            let (kind, ty) = scalar(c).ok_or(PlanError::Unsupported)?;
            let expr = match (kind, c.data_type.as_str()) {
                // The text protocol prints a FLOAT with 6 significant digits (16777216 as
                // 16777200); as DOUBLE it prints the stored float32 exactly.
                (MyKind::Float32, _) => format!("CAST({q} AS DOUBLE)"),
                (MyKind::UnsignedBig, "bit") => format!("CAST({q} AS UNSIGNED)"),
                _ => q,
            };
            make(kind, ty, expr)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str) -> MyColumn {
        MyColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            precision: None,
            scale: None,
            charset: Some("utf8mb4".into()),
            collation: None,
        }
    }

    #[test]
    fn integer_flavours() {
        let k = |d, t| plan(&col(d, t), None).unwrap().column.field.ty;
        assert_eq!(k("tinyint", "tinyint(1)"), BqType::Bool);
        assert_eq!(k("tinyint", "tinyint(4)"), BqType::Int64);
        assert_eq!(k("tinyint", "tinyint(1) unsigned"), BqType::Int64);
        assert_eq!(k("bigint", "bigint(20) unsigned"), BqType::Numeric);
        assert_eq!(k("int", "int(10) unsigned"), BqType::Int64);
        assert_eq!(k("year", "year(4)"), BqType::Int64);
        assert!(plan(&col("geometry", "geometry"), None).is_err());
    }

    #[test]
    fn decimals_and_binary_strings() {
        let mut c = col("decimal", "decimal(12,2)");
        c.precision = Some(12);
        c.scale = Some(2);
        assert_eq!(plan(&c, None).unwrap().kind, MyKind::Numeric);
        c.precision = Some(65);
        c.scale = Some(30);
        assert_eq!(plan(&c, None).unwrap().kind, MyKind::BigNumeric);
        c.scale = Some(0);
        assert_eq!(plan(&c, None).unwrap().column.field.ty, BqType::String, "65 integer digits: exact text");
        let mut bit = col("bit", "bit(63)");
        bit.precision = Some(63);
        assert_eq!(plan(&bit, None).unwrap().column.field.ty, BqType::Int64);
        bit.precision = Some(64);
        let p = plan(&bit, None).unwrap();
        assert_eq!((p.column.field.ty, p.expr.as_str()), (BqType::Numeric, "CAST(`c` AS UNSIGNED)"));
        bit.precision = None;
        assert_eq!(plan(&bit, None).unwrap().column.field.ty, BqType::Numeric, "a query's BIT of unknown width");
        assert_eq!(plan(&col("float", "float"), None).unwrap().expr, "CAST(`c` AS DOUBLE)");
        let mut b = col("varchar", "varbinary(10)");
        b.charset = None;
        assert_eq!(plan(&b, None).unwrap().kind, MyKind::Bytes);
    }
}
