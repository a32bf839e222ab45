//! The one BigQuery type for each PostgreSQL type (docs/types.md), and how each column is
//! selected and decoded. Types with no exact binary counterpart are selected as text.

use super::catalog::{PgColumn, quote_ident};
use super::decode::PgKind;
use crate::bq_model::{BqField, BqType};
use crate::config::Cast;
use crate::source::Column;
use crate::source::plan::PlanError;

/// How one column is read.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub column: Column,
    /// The SELECT expression (the column, or a cast of it).
    pub expr: String,
    pub kind: PgKind,
    pub array: bool,
}

impl crate::source::plan::Planned for ColumnPlan {
    fn column(&self) -> &Column {
        &self.column
    }
}

/// How a scalar type is read: the decoder, the BigQuery type, and a cast to apply in SQL.
fn scalar(typname: &str, typtype: &str, typmod: i32) -> Option<(PgKind, BqType, Option<&'static str>)> {
    Some(match typname {
        "int2" => (PgKind::Int2, BqType::Int64, None),
        "int4" => (PgKind::Int4, BqType::Int64, None),
        "int8" => (PgKind::Int8, BqType::Int64, None),
        "float4" => (PgKind::Float4, BqType::Float64, None),
        "float8" => (PgKind::Float8, BqType::Float64, None),
        "numeric" => {
            let (k, t) = numeric(typmod);
            (k, t, None)
        }
        // money's binary form is in the locale's minor unit; numeric gives the exact amount.
        "money" => (PgKind::Numeric, BqType::Numeric, Some("numeric")),
        "text" | "varchar" | "bpchar" | "name" | "citext" => (PgKind::Text, BqType::String, None),
        "json" => (PgKind::Text, BqType::Json, None),
        "jsonb" => (PgKind::Jsonb, BqType::Json, None),
        "bool" => (PgKind::Bool, BqType::Bool, None),
        "date" => (PgKind::Date, BqType::Date, None),
        "time" => (PgKind::Time, BqType::Time, None),
        "timestamp" => (PgKind::Timestamp, BqType::Datetime, None),
        "timestamptz" => (PgKind::Timestamp, BqType::Timestamp, None),
        "bytea" => (PgKind::Bytea, BqType::Bytes, None),
        "uuid" => (PgKind::Uuid, BqType::String, None),
        // No exact BigQuery type (or none the Storage Write API takes): their text form.
        "interval" | "timetz" | "inet" | "cidr" | "macaddr" | "macaddr8" | "bit" | "varbit" | "xml" | "tsvector"
        | "tsquery" | "point" | "line" | "lseg" | "box" | "path" | "polygon" | "circle" => {
            (PgKind::Text, BqType::String, Some("text"))
        }
        _ if typtype == "e" => (PgKind::Text, BqType::String, None),
        _ if typtype == "r" || typtype == "m" => (PgKind::Text, BqType::String, Some("text")),
        _ => return None,
    })
}

/// NUMERIC holds 29 integer and 9 fractional digits, BIGNUMERIC (as written here) 38 and
/// 38; a declared type wider than that is carried exactly as decimal text. An undeclared
/// `numeric` goes to BIGNUMERIC; a value that does not fit it is an error that names the
/// override (`cast` to text), never a rounding.
pub fn numeric(typmod: i32) -> (PgKind, BqType) {
    if typmod < 4 {
        return (PgKind::BigNumeric, BqType::BigNumeric);
    }
    let precision = ((typmod - 4) >> 16) & 0xffff;
    // The scale is an 11-bit signed field since PostgreSQL 15 (negative scales).
    let raw_scale = (typmod - 4) & 0x7ff;
    let scale = if raw_scale & 0x400 != 0 { raw_scale - 0x800 } else { raw_scale };
    let int_digits = precision - scale;
    if scale <= 9 && int_digits <= 29 {
        (PgKind::Numeric, BqType::Numeric)
    } else if scale <= 38 && int_digits <= 38 {
        (PgKind::BigNumeric, BqType::BigNumeric)
    } else {
        (PgKind::NumericText, BqType::String)
    }
}

/// Plans one column, or says why it cannot be copied.
pub fn plan(c: &PgColumn, cast: Option<Cast>) -> Result<ColumnPlan, PlanError> {
    let q = quote_ident(&c.name);
    let field = |ty, repeated| Column {
        name: c.name.clone(),
        source_type: c.declared.clone(),
        field: BqField { name: c.name.clone(), ty, repeated },
    };
    let is_numeric = c.typname == "numeric";
    match cast {
        // One STRING, arrays included (their text form, `{1,NULL,3}`): the way around what an
        // array cannot be in BigQuery (NULL elements, more dimensions).
        Some(Cast::Text) => {
            return Ok(ColumnPlan {
                column: field(BqType::String, false),
                expr: format!("{q}::text"),
                kind: PgKind::Text,
                array: false,
            });
        }
        Some(Cast::Numeric) | Some(Cast::BigNumeric) if !is_numeric => {
            return Err(PlanError::Invalid(
                "cast to numeric or bignumeric applies to numeric columns only; use \"text\"".into(),
            ));
        }
        Some(Cast::Numeric) => {
            return Ok(ColumnPlan {
                column: field(BqType::Numeric, false),
                expr: q,
                kind: PgKind::Numeric,
                array: false,
            });
        }
        Some(Cast::BigNumeric) => {
            return Ok(ColumnPlan {
                column: field(BqType::BigNumeric, false),
                expr: q,
                kind: PgKind::BigNumeric,
                array: false,
            });
        }
        None => {}
    }
    // inet's cast to text always shows the netmask; abbrev() is its output form ("::1").
    if c.typname == "inet" {
        return Ok(ColumnPlan {
            column: field(BqType::String, false),
            expr: format!("abbrev({q})"),
            kind: PgKind::Text,
            array: false,
        });
    }
    if c.elem.as_ref().is_some_and(|(e, _)| e == "inet") {
        let expr = format!("ARRAY(SELECT abbrev(e) FROM unnest({q}) WITH ORDINALITY AS u(e, n) ORDER BY n)");
        return Ok(ColumnPlan { column: field(BqType::String, true), expr, kind: PgKind::Text, array: true });
    }
    if let Some((etyp, etype)) = &c.elem {
        // The element's numeric modifier is the column's.
        let (kind, ty, sql_cast) = scalar(etyp, etype, c.typmod).ok_or_else(unsupported)?;
        let expr = match sql_cast {
            Some(t) => format!("{q}::{t}[]"),
            None => q,
        };
        return Ok(ColumnPlan { column: field(ty, true), expr, kind, array: true });
    }
    if c.typname == "hstore" {
        return Ok(ColumnPlan {
            column: field(BqType::Json, false),
            expr: format!("hstore_to_json({q})"),
            kind: PgKind::Text,
            array: false,
        });
    }
    let (kind, ty, sql_cast) = scalar(&c.typname, &c.typtype, c.typmod).ok_or_else(unsupported)?;
    let expr = match sql_cast {
        Some(t) => format!("{q}::{t}"),
        None => q,
    };
    Ok(ColumnPlan { column: field(ty, false), expr, kind, array: false })
}

fn unsupported() -> PlanError {
    PlanError::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typmod(p: i32, s: i32) -> i32 {
        ((p << 16) | (s & 0x7ff)) + 4
    }

    #[test]
    fn numeric_picks_the_narrowest_exact_type() {
        let cases = [
            (typmod(12, 2), BqType::Numeric),
            (typmod(38, 9), BqType::Numeric),
            (typmod(29, 0), BqType::Numeric),
            (typmod(30, 0), BqType::BigNumeric),
            (typmod(38, 0), BqType::BigNumeric),
            (typmod(20, 10), BqType::BigNumeric),
            (typmod(76, 38), BqType::BigNumeric),
            (typmod(39, 0), BqType::String),
            (typmod(50, 40), BqType::String),
            (typmod(5, -2), BqType::Numeric),
            (-1, BqType::BigNumeric),
        ];
        for (m, want) in cases {
            assert_eq!(numeric(m).1, want, "typmod {m}");
        }
    }

    fn col(typname: &str, typtype: &str, elem: Option<&str>) -> PgColumn {
        PgColumn {
            name: "c".into(),
            declared: typname.into(),
            typname: typname.into(),
            typmod: -1,
            typtype: typtype.into(),
            elem: elem.map(|e| (e.to_string(), "b".to_string())),
            loose_equality: None,
        }
    }

    #[test]
    fn arrays_casts_and_text_forms() {
        let p = plan(&col("_int4", "b", Some("int4")), None).unwrap();
        assert!(p.array && p.column.field.repeated && p.column.field.ty == BqType::Int64);
        let p = plan(&col("_cidr", "b", Some("cidr")), None).unwrap();
        assert_eq!(p.expr, "\"c\"::text[]");
        let p = plan(&col("interval", "b", None), None).unwrap();
        assert_eq!((p.expr.as_str(), p.column.field.ty), ("\"c\"::text", BqType::String));
        let p = plan(&col("mood", "e", None), None).unwrap();
        assert_eq!((p.expr.as_str(), p.kind), ("\"c\"", PgKind::Text));
        let p = plan(&col("money", "b", None), None).unwrap();
        assert_eq!((p.expr.as_str(), p.column.field.ty), ("\"c\"::numeric", BqType::Numeric));
        assert!(plan(&col("tsrange_custom_thing", "c", None), None).is_err());
        let p = plan(&col("tsrange_custom_thing", "c", None), Some(Cast::Text)).unwrap();
        assert_eq!(p.column.field.ty, BqType::String);
        assert!(plan(&col("text", "b", None), Some(Cast::Numeric)).is_err());
        let p = plan(&col("numeric", "b", None), Some(Cast::Numeric)).unwrap();
        assert_eq!(p.column.field.ty, BqType::Numeric);
    }
}
