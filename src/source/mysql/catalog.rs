//! What MySQL says about a table's or a query's columns: information_schema for tables
//! (exact types, precision, character set, collation, primary key), the prepared
//! statement's metadata for queries.

use sqlx::{Column, Executor, MySqlConnection, Row, Statement, TypeInfo};

use super::mapping::{MyColumn, quote_ident};
use crate::config::{TableConfig, TableSource};
use crate::source::{Estimate, SourceError};

pub struct Catalog {
    pub display_name: String,
    pub from: String,
    pub columns: Vec<MyColumn>,
    pub primary_key: Vec<String>,
    /// The catalog's statistics (tables only).
    pub estimate: Estimate,
}

/// The tables and views of `database` (default: the connection's).
pub async fn list_tables(conn: &mut MySqlConnection, database: Option<&str>) -> Result<Vec<String>, SourceError> {
    sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) \
         ORDER BY 1",
    )
    .bind(database)
    .fetch_all(&mut *conn)
    .await
    .map_err(|source| SourceError::Query {
        table: format!("{}.*", database.unwrap_or("(default database)")),
        what: "listing the database's tables",
        source,
    })
}

/// `exact`: a query's columns from [`query_columns`], when they could be had.
pub async fn describe(
    conn: &mut MySqlConnection,
    table: &TableConfig,
    exact: Option<Vec<MyColumn>>,
) -> Result<Catalog, SourceError> {
    match &table.source {
        TableSource::Table { schema, name } => describe_table(conn, table, schema.as_deref(), name).await,
        TableSource::Query(sql) => match exact {
            Some(columns) => Ok(Catalog {
                display_name: table.source_name(),
                from: format!("({sql}) AS q"),
                columns,
                primary_key: Vec::new(),
                estimate: Estimate::default(),
            }),
            None => describe_query(conn, table, sql).await,
        },
        TableSource::Pattern { .. } => Err(SourceError::unexpanded(table)),
    }
}

/// A query's columns as exactly as a table's: an empty temporary table made from it tells
/// precision, scale, BIT width, character set and collation, which the result metadata does
/// not (a VARCHAR in a `_bin` collation would look binary, a DECIMAL would lose its
/// precision). Run before the read snapshot starts, since MariaDB refuses temporary tables in
/// a READ ONLY transaction. `None` when the user may not create temporary tables (then the
/// result metadata is used).
pub async fn query_columns(conn: &mut MySqlConnection, sql: &str) -> Option<Vec<MyColumn>> {
    const TMP: &str = "_aurora2bq_describe";
    let create = format!("CREATE TEMPORARY TABLE {TMP} AS SELECT * FROM ({sql}) AS q LIMIT 0");
    if let Err(e) = (&mut *conn).execute(create.as_str()).await {
        tracing::warn!(
            error = %e,
            "cannot describe the query through a temporary table (grant CREATE TEMPORARY TABLES for exact types); \
             using the result metadata"
        );
        return None;
    }
    let rows = sqlx::query(&format!("SHOW FULL COLUMNS FROM {TMP}")).fetch_all(&mut *conn).await;
    let _ = (&mut *conn).execute(format!("DROP TEMPORARY TABLE IF EXISTS {TMP}").as_str()).await;
    let text = |r: &sqlx::mysql::MySqlRow, i: usize| -> Option<String> {
        let raw: Option<&[u8]> = r.try_get_unchecked(i).ok().flatten();
        raw.map(|b| String::from_utf8_lossy(b).into_owned())
    };
    rows.ok()?.iter().map(|r| from_show(text(r, 0).unwrap_or_default(), &text(r, 1)?, text(r, 2))).collect()
}

/// A column from `SHOW FULL COLUMNS`: `Type` as information_schema's COLUMN_TYPE, with the
/// precision and scale that planning reads.
fn from_show(name: String, ty: &str, collation: Option<String>) -> Option<MyColumn> {
    let column_type = ty.to_ascii_lowercase();
    let data_type: String = column_type.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let args: Vec<u64> = column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default();
    let (precision, scale) = match data_type.as_str() {
        "decimal" | "numeric" => (args.first().copied(), args.get(1).copied().or(Some(0))),
        "bit" => (args.first().copied().or(Some(1)), None),
        "datetime" | "timestamp" | "time" => (args.first().copied().or(Some(0)), None),
        _ => (None, None),
    };
    let charset = collation.as_deref().and_then(|c| c.split('_').next()).map(str::to_owned);
    Some(MyColumn { name, data_type, column_type, precision, scale, charset, collation })
}

async fn describe_table(
    conn: &mut MySqlConnection,
    table: &TableConfig,
    schema: Option<&str>,
    name: &str,
) -> Result<Catalog, SourceError> {
    let label = table.source_name();
    let q = |what, source| SourceError::Query { table: label.clone(), what, source };
    let db: String = match schema {
        Some(s) => s.to_owned(),
        None => sqlx::query_scalar::<_, Option<String>>("SELECT DATABASE()")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| q("finding the default database", e))?
            .ok_or_else(|| SourceError::Config {
                table: label.clone(),
                detail: "no database in the URL: write the table as `database.table`".into(),
            })?,
    };
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(LOWER(DATA_TYPE) AS CHAR), CAST(LOWER(COLUMN_TYPE) AS CHAR), \
                CAST(COALESCE(NUMERIC_PRECISION, DATETIME_PRECISION) AS UNSIGNED), CAST(NUMERIC_SCALE AS UNSIGNED), \
                CAST(CHARACTER_SET_NAME AS CHAR), CAST(COLLATION_NAME AS CHAR), CAST(COLUMN_KEY AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(&db)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| q("reading its columns", e))?;
    if rows.is_empty() {
        return Err(SourceError::NotFound { table: label, engine: crate::config::Engine::Mysql });
    }
    let display_name = format!("{db}.{name}");
    let from = format!("{}.{}", quote_ident(&db), quote_ident(name));
    let columns: Vec<MyColumn> = rows
        .iter()
        .map(|r| MyColumn {
            name: r.get(0),
            data_type: r.get(1),
            column_type: r.get(2),
            precision: r.get(3),
            scale: r.get(4),
            charset: r.get(5),
            collation: r.get(6),
        })
        .collect();
    let primary_key: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.KEY_COLUMN_USAGE \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
    )
    .bind(&db)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| q("reading its primary key", e))?;
    // information_schema lists tables the user has any privilege on; reading needs SELECT.
    let probe = format!("SELECT 1 FROM {from} LIMIT 0");
    if let Err(e) = (&mut *conn).execute(probe.as_str()).await {
        // 1142: SELECT command denied; 1143: on some column.
        let denied = e
            .as_database_error()
            .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
            .is_some_and(|m| matches!(m.number(), 1142 | 1143));
        let user: String =
            sqlx::query_scalar("SELECT CAST(CURRENT_USER() AS CHAR)").fetch_one(&mut *conn).await.unwrap_or_default();
        // CURRENT_USER() is user@host; a GRANT names them quoted apart.
        let user = match user.rsplit_once('@') {
            Some((u, h)) => format!("'{u}'@'{h}'"),
            None => format!("'{user}'"),
        };
        return Err(if denied { SourceError::NoSelect { table: display_name, user } } else { q("reading it", e) });
    }
    // InnoDB's estimate (it can be off by half); a statistic for progress and plans only.
    let estimate: Option<(Option<u64>, Option<u64>)> = sqlx::query_as(
        "SELECT CAST(TABLE_ROWS AS UNSIGNED), CAST(DATA_LENGTH + INDEX_LENGTH AS UNSIGNED) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
    )
    .bind(&db)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| q("reading its size estimate", e))?;
    let (rows, bytes) = estimate.unwrap_or_default();
    Ok(Catalog { display_name, from, columns, primary_key, estimate: Estimate { rows, bytes } })
}

async fn describe_query(conn: &mut MySqlConnection, table: &TableConfig, sql: &str) -> Result<Catalog, SourceError> {
    let label = table.source_name();
    let stmt = conn.prepare(sql).await.map_err(|source| SourceError::Query {
        table: label.clone(),
        what: "describing the query",
        source,
    })?;
    let columns = stmt.columns().iter().map(|c| from_type_name(c.name(), c.type_info().name())).collect();
    Ok(Catalog {
        display_name: label,
        from: format!("({sql}) AS q"),
        columns,
        primary_key: Vec::new(),
        estimate: Estimate::default(),
    })
}

/// A column from a result's type name (no precision: a DECIMAL goes to BIGNUMERIC, which
/// holds every MySQL DECIMAL).
fn from_type_name(name: &str, ty: &str) -> MyColumn {
    let lower = ty.to_ascii_lowercase();
    let (data_type, column_type) = match lower.as_str() {
        "boolean" => ("tinyint".to_string(), "tinyint(1)".to_string()),
        other => (other.split(' ').next().unwrap_or(other).to_string(), other.to_string()),
    };
    let binary = matches!(data_type.as_str(), "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob");
    MyColumn {
        name: name.to_owned(),
        data_type,
        column_type,
        precision: None,
        scale: None,
        charset: (!binary).then(|| "utf8mb4".to_string()),
        collation: None,
    }
}
