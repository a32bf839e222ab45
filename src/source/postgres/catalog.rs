//! What PostgreSQL's catalog says about a table's or a query's columns: names, declared
//! types, domains resolved to their base type, array element types, and the primary key.
//! Read inside the read snapshot.

use sqlx::postgres::PgRow;
use sqlx::{Column, Executor, PgConnection, Row, Statement};

use crate::config::{TableConfig, TableSource};
use crate::source::{Estimate, SourceError};

/// One column as the catalog describes it.
#[derive(Debug, Clone)]
pub struct PgColumn {
    pub name: String,
    /// As PostgreSQL prints it, e.g. `numeric(12,2)`, for messages.
    pub declared: String,
    /// The type, through domains to the base type (`int8`, `_text` for text[], ...).
    pub typname: String,
    pub typmod: i32,
    /// `b` base, `e` enum, `c` composite, `r` range, `m` multirange, `p` pseudo.
    pub typtype: String,
    /// For arrays: the element's type name and kind, through domains.
    pub elem: Option<(String, String)>,
    /// Set when equal values need not be equal bytes: `citext`, or a nondeterministic
    /// collation's name.
    pub loose_equality: Option<String>,
}

impl crate::source::plan::NamedColumn for PgColumn {
    fn name(&self) -> &str {
        &self.name
    }
    fn declared(&self) -> &str {
        &self.declared
    }
}

pub struct Catalog {
    /// The quoted, qualified name used in messages.
    pub display_name: String,
    /// What goes after FROM: a relation, or the query as a subselect.
    pub from: String,
    pub columns: Vec<PgColumn>,
    pub primary_key: Vec<String>,
    /// The catalog's statistics (tables only).
    pub estimate: Estimate,
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The type columns of a row from either catalog query below, from position 1 on.
fn column(name: String, r: &PgRow) -> PgColumn {
    let elem: Option<String> = r.get(5);
    PgColumn {
        name,
        declared: r.get(1),
        typname: r.get(2),
        typmod: r.get(3),
        typtype: r.get(4),
        elem: elem.map(|e| (e, r.get::<Option<String>, _>(6).unwrap_or_default())),
        loose_equality: r.get(7),
    }
}

/// Column 7 of both catalog queries: why equal values of the column may differ in bytes.
const LOOSE_EQUALITY: &str = "CASE WHEN bt.typname = 'citext' THEN 'citext' \
     WHEN NOT co.collisdeterministic THEN 'collation ' || co.collname::text END";

/// Resolves the type `T` (an expression giving a type OID) through a domain, and arrays to
/// their element type (one domain level deep each).
const TYPE_JOINS: &str = "JOIN pg_type t ON t.oid = T \
     JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
     LEFT JOIN pg_type e0 ON e0.oid = bt.typelem AND bt.typcategory = 'A' \
     LEFT JOIN pg_type et ON et.oid = CASE WHEN e0.typtype = 'd' THEN e0.typbasetype ELSE e0.oid END";

/// The tables, views and partitioned tables of `schema` (default: the first on the search path).
pub async fn list_tables(conn: &mut PgConnection, schema: Option<&str>) -> Result<Vec<String>, SourceError> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = COALESCE($1, current_schema()) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
         AND NOT c.relispartition ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .map_err(|source| SourceError::Query {
        table: format!("{}.*", schema.unwrap_or("(default schema)")),
        what: "listing the schema's tables",
        source,
    })
}

pub async fn describe(conn: &mut PgConnection, table: &TableConfig) -> Result<Catalog, SourceError> {
    match &table.source {
        TableSource::Table { schema, name } => describe_table(conn, table, schema.as_deref(), name).await,
        TableSource::Query(sql) => describe_query(conn, table, sql).await,
        TableSource::Pattern { .. } => Err(SourceError::unexpanded(table)),
    }
}

async fn describe_table(
    conn: &mut PgConnection,
    table: &TableConfig,
    schema: Option<&str>,
    name: &str,
) -> Result<Catalog, SourceError> {
    let label = table.source_name();
    let q = |what, source| SourceError::Query { table: label.clone(), what, source };
    let relation = match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(name)),
        None => quote_ident(name),
    };
    let row = sqlx::query(
        "SELECT c.oid::int8, c.oid::regclass::text, has_table_privilege(c.oid, 'SELECT'), \
         current_user::text, CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8 END, \
         pg_total_relation_size(c.oid) \
         FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(&relation)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| q("looking the table up", e))?
    .ok_or_else(|| SourceError::NotFound { table: label.clone(), engine: crate::config::Engine::Postgres })?;
    let oid: i64 = row.get(0);
    let display_name: String = row.get(1);
    if !row.get::<bool, _>(2) {
        return Err(SourceError::NoSelect { table: display_name, user: row.get(3) });
    }
    let sql = format!(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), bt.typname::text, \
                CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, bt.typtype::text, \
                et.typname::text, et.typtype::text, {LOOSE_EQUALITY} \
         FROM pg_attribute a {} LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        TYPE_JOINS.replace("= T ", "= a.atttypid ")
    );
    let rows = sqlx::query(&sql).bind(oid).fetch_all(&mut *conn).await.map_err(|e| q("reading its columns", e))?;
    let columns = rows.iter().map(|r| column(r.get(0), r)).collect();
    let primary_key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i \
         JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON true \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.ord",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| q("reading its primary key", e))?;
    // -1 until the table is first analyzed (PostgreSQL 14 and later).
    let size = |i| row.get::<Option<i64>, _>(i).and_then(|n| u64::try_from(n).ok());
    Ok(Catalog {
        display_name,
        from: relation,
        columns,
        primary_key,
        estimate: Estimate { rows: size(4), bytes: size(5) },
    })
}

/// A query's columns from the server's description of its result; types that come
/// straight from a table column keep that column's modifier (e.g. numeric precision).
async fn describe_query(conn: &mut PgConnection, table: &TableConfig, sql: &str) -> Result<Catalog, SourceError> {
    let label = table.source_name();
    let described = conn.prepare(sql).await.map_err(|source| SourceError::Query {
        table: label.clone(),
        what: "describing the query",
        source,
    })?;
    let (mut types, mut rels, mut atts, mut names) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for c in described.columns() {
        use sqlx::TypeInfo as _;
        let oid = c.type_info().oid().map(|o| o.0 as i64).ok_or_else(|| SourceError::Config {
            table: label.clone(),
            detail: format!("column {} has type {} whose OID is unknown", c.name(), c.type_info().name()),
        })?;
        names.push(c.name().to_owned());
        types.push(oid);
        rels.push(c.relation_id().map(|o| o.0 as i64).unwrap_or(0));
        atts.push(c.relation_attribute_no().unwrap_or(0));
    }
    let sql_types = format!(
        "SELECT u.ord, format_type(u.typ, COALESCE(a.atttypmod, -1)), bt.typname::text, \
                COALESCE(CASE WHEN t.typtype = 'd' THEN t.typtypmod END, a.atttypmod, -1), bt.typtype::text, \
                et.typname::text, et.typtype::text, {LOOSE_EQUALITY} \
         FROM unnest($1::int8[]::oid[], $2::int8[]::oid[], $3::int2[]) WITH ORDINALITY AS u(typ, rel, att, ord) \
         {} LEFT JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.att \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         ORDER BY u.ord",
        TYPE_JOINS.replace("= T ", "= u.typ ")
    );
    let rows =
        sqlx::query(&sql_types).bind(&types).bind(&rels).bind(&atts).fetch_all(&mut *conn).await.map_err(|source| {
            SourceError::Query { table: label.clone(), what: "reading the query's column types", source }
        })?;
    let columns = rows.iter().zip(names).map(|(r, n)| column(n, r)).collect();
    Ok(Catalog {
        display_name: label,
        from: format!("({sql}) AS q"),
        columns,
        primary_key: Vec::new(),
        estimate: Estimate::default(),
    })
}
