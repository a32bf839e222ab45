//! Reads a PostgreSQL table's columns, types and primary key from the catalog, inside the
//! read snapshot, and maps each type onto BigQuery.

use sqlx::{PgConnection, Row};

use super::decode::PgKind;
use crate::config::TableConfig;
use crate::source::{Column, SourceError, TableSchema};
use crate::types::{BqField, BqType};

/// What the reader needs to know per column besides its schema.
pub struct Mapped {
    pub schema: TableSchema,
    pub kinds: Vec<PgKind>,
    /// The `SELECT` list for the COPY, in column order.
    pub select_list: String,
    pub relation: String,
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub async fn describe(conn: &mut PgConnection, table: &TableConfig) -> Result<Mapped, SourceError> {
    let name = table.source_name();
    let q = |what, source| SourceError::Query { table: name.clone(), what, source };
    let relation = match &table.source_schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&table.source_table)),
        None => quote_ident(&table.source_table),
    };
    let row = sqlx::query(
        "SELECT c.oid::int8, c.oid::regclass::text, has_table_privilege(c.oid, 'SELECT'), \
         current_user::text FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(&relation)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| q("looking the table up", e))?
    .ok_or_else(|| SourceError::NotFound { table: name.clone() })?;
    let oid: i64 = row.get(0);
    let display_name: String = row.get(1);
    if !row.get::<bool, _>(2) {
        return Err(SourceError::NoSelect { table: display_name, user: row.get(3) });
    }

    // Domains are read as their base type: COPY sends the base type's binary form.
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END::text, \
                CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END \
         FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| q("reading its columns", e))?;

    let pk: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i \
         JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON true \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| q("reading its primary key", e))?;

    let mut columns = Vec::new();
    let mut kinds = Vec::new();
    let mut select = Vec::new();
    for r in rows {
        let col: String = r.get(0);
        let declared: String = r.get(1);
        let typname: String = r.get(2);
        let typmod: i32 = r.get(3);
        if table.exclude_columns.iter().any(|c| c == &col) {
            continue;
        }
        let (kind, ty, expr) = if table.cast_to_text.iter().any(|c| c == &col) {
            (PgKind::Text, BqType::String, format!("{}::text", quote_ident(&col)))
        } else {
            let (kind, ty) = map_type(&typname, typmod).ok_or_else(|| SourceError::Unsupported {
                table: display_name.clone(),
                column: col.clone(),
                ty: declared.clone(),
            })?;
            (kind, ty, quote_ident(&col))
        };
        select.push(expr);
        kinds.push(kind);
        columns.push(Column {
            name: col.clone(),
            source_type: declared,
            field: BqField { name: col, ty, repeated: false },
        });
    }
    if columns.is_empty() {
        return Err(SourceError::Protocol {
            table: display_name,
            detail: "no columns left to copy (all excluded?)".into(),
        });
    }
    Ok(Mapped {
        schema: TableSchema { display_name, columns, primary_key: pk },
        kinds,
        select_list: select.join(", "),
        relation,
    })
}

/// The one BigQuery type for each supported PostgreSQL type (docs/types.md).
pub fn map_type(typname: &str, typmod: i32) -> Option<(PgKind, BqType)> {
    Some(match typname {
        "int2" => (PgKind::Int2, BqType::Int64),
        "int4" => (PgKind::Int4, BqType::Int64),
        "int8" => (PgKind::Int8, BqType::Int64),
        "float4" => (PgKind::Float4, BqType::Float64),
        "float8" => (PgKind::Float8, BqType::Float64),
        "numeric" => numeric(typmod),
        "text" | "varchar" | "bpchar" | "name" => (PgKind::Text, BqType::String),
        "json" => (PgKind::Text, BqType::Json),
        "jsonb" => (PgKind::Jsonb, BqType::Json),
        "bool" => (PgKind::Bool, BqType::Bool),
        "date" => (PgKind::Date, BqType::Date),
        "timestamp" => (PgKind::Timestamp, BqType::Datetime),
        "timestamptz" => (PgKind::Timestamp, BqType::Timestamp),
        "bytea" => (PgKind::Bytea, BqType::Bytes),
        "uuid" => (PgKind::Uuid, BqType::String),
        _ => return None,
    })
}

/// NUMERIC holds 29 integer and 9 fractional digits, BIGNUMERIC (as written here) 38 and
/// 38; a declared type wider than that is carried exactly as decimal text. An undeclared
/// `numeric` goes to BIGNUMERIC, and a value that does not fit it is an error that names
/// the override (`cast` to text), never a rounding.
fn numeric(typmod: i32) -> (PgKind, BqType) {
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

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
