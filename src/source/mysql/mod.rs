//! MySQL (Aurora MySQL 3, i.e. MySQL 8.0; MariaDB stands in for it in tests): one
//! connection per table, `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`, the
//! session time zone set to UTC (so TIMESTAMP values are instants), rows streamed over the
//! text protocol and decoded straight into Arrow builders. A large table can be read in
//! key-range chunks over several connections whose snapshots start together under a brief
//! `LOCK TABLES … READ` (MySQL cannot export a snapshot).

mod catalog;
mod decode;
mod mapping;
mod reader;
mod window_sql;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, Executor, MySqlConnection};

use self::mapping::ColumnPlan;
use self::window_sql::{KeyType, WindowSql};
use super::names::check_merge_keys;
use super::plan::{Chunks, no_split_key, plan_columns, table_schema, window_columns};
use super::window::Window;
use super::{BatchLimits, Source, SourceError, TableRead};
use crate::config::{SourceConfig, TableConfig, ZeroDates};
use crate::secret::Secret;

pub(crate) struct MyInner {
    /// The connection made to check the settings, kept for the first table.
    spare: std::sync::Mutex<Option<MySqlConnection>>,
    options: MySqlConnectOptions,
    target: String,
    connect_timeout: std::time::Duration,
    statement_timeout: Option<std::time::Duration>,
    limits: BatchLimits,
    zero_dates: ZeroDates,
    /// RDS IAM: each connection's password is a token signed for it.
    iam: Option<super::iam::DbIam>,
}

#[derive(Clone)]
pub struct MySqlSource {
    inner: Arc<MyInner>,
}

impl MySqlSource {
    pub(crate) async fn connect(
        config: &SourceConfig,
        url: &Secret,
        iam: Option<super::iam::DbIam>,
        limits: BatchLimits,
    ) -> Result<Self, SourceError> {
        let target = super::describe_url(url);
        let mut options = MySqlConnectOptions::from_str(url.expose())
            .map_err(|e| SourceError::Url(format!("the MySQL URL for {target} is not valid: {e}")))?;
        // Long reads are expected; sqlx would log each as a slow statement.
        options = options.charset("utf8mb4").timezone(Some("+00:00".into())).disable_statement_logging();
        if let Some(ca) = &config.ca_file {
            options = options.ssl_mode(MySqlSslMode::VerifyIdentity).ssl_ca(ca);
        } else if iam.is_some() {
            // A token is a password for 15 minutes: it only travels over verified TLS.
            options =
                options.ssl_mode(MySqlSslMode::VerifyIdentity).ssl_ca_from_pem(super::iam::RDS_CA_BUNDLE.to_vec());
        }
        if iam.is_some() {
            // RDS asks for IAM tokens through mysql_clear_password; safe only over the TLS above.
            options = options.ssl_mode(MySqlSslMode::VerifyIdentity).enable_cleartext_plugin(true);
        }
        let inner = MyInner {
            spare: std::sync::Mutex::new(None),
            options,
            target,
            connect_timeout: config.connect_timeout,
            statement_timeout: config.statement_timeout,
            limits,
            zero_dates: config.zero_dates,
            iam,
        };
        let first = inner.connection().await?;
        *inner.spare.lock().expect("spare lock") = Some(first);
        Ok(Self { inner: Arc::new(inner) })
    }
}

impl MyInner {
    async fn connection(&self) -> Result<MySqlConnection, SourceError> {
        if let Some(c) = self.spare.lock().expect("spare lock").take() {
            return Ok(c);
        }
        let err =
            |source| SourceError::Connect { engine: crate::config::Engine::Mysql, target: self.target.clone(), source };
        let connect = super::iam::connect(self.iam.as_ref(), &self.options, |o, p| o.password(p), &self.target, err);
        let mut conn = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(r) => r?,
            Err(_) => return Err(err(sqlx::Error::PoolTimedOut)),
        };
        // UTC makes TIMESTAMP text an instant; set explicitly, whatever the server default.
        let mut setup = "SET time_zone = '+00:00'; SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".to_string();
        if let Some(t) = self.statement_timeout {
            let version: String =
                sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)").fetch_one(&mut conn).await.map_err(err)?;
            if version.contains("MariaDB") {
                setup.push_str(&format!("; SET SESSION max_statement_time = {}", t.as_secs_f64()));
            } else {
                setup.push_str(&format!("; SET SESSION max_execution_time = {}", t.as_millis()));
            }
        }
        (&mut conn).execute(setup.as_str()).await.map_err(err)?;
        Ok(conn)
    }
}

#[async_trait]
impl Source for MySqlSource {
    async fn list_tables(&self, schema: Option<&str>) -> Result<Vec<String>, SourceError> {
        let mut conn = self.inner.connection().await?;
        catalog::list_tables(&mut conn, schema).await
    }

    async fn split_bounds(
        &self,
        table: &TableConfig,
        window: Option<&Window>,
    ) -> Result<(i64, i64, Option<i64>), SourceError> {
        let label = table.source_name();
        let q = |what| {
            let table = label.clone();
            move |source| SourceError::Query { table, what, source }
        };
        let mut conn = self.inner.connection().await?;
        (&mut conn)
            .execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(q("starting a snapshot"))?;
        let catalog = catalog::describe(&mut conn, table, None).await?;
        let plans = plan_columns(table, &catalog.display_name, &catalog.columns, mapping::plan)?;
        let k = reader::integer_key(&catalog.primary_key, &plans).ok_or_else(|| no_split_key(&catalog.display_name))?;
        let sql = format!(
            "SELECT CAST(COALESCE(MIN({k}), 0) AS SIGNED), CAST(COALESCE(MAX({k}), 0) AS SIGNED) FROM {}",
            catalog.from
        );
        let (lo, hi): (i64, i64) =
            sqlx::query_as(&sql).fetch_one(&mut conn).await.map_err(q("finding the key's range"))?;
        let until = match window {
            None => None,
            Some(w) => {
                let w = window_sql(&mut conn, &catalog, &plans, w).await?;
                match &w.upper {
                    Some(clock) => Some(
                        decode::cursor_int(w.kind, clock)
                            .map_err(|detail| SourceError::Protocol { table: label.clone(), detail })?,
                    ),
                    // An integer cursor has no clock: the largest value now bounds every
                    // shard's window, so a row numbered after the plan waits for the next run.
                    None => {
                        let sql = format!("SELECT CAST(MAX({}) AS SIGNED) FROM {}", w.cursor, catalog.from);
                        let max: Option<i64> = sqlx::query_scalar(&sql)
                            .fetch_one(&mut conn)
                            .await
                            .map_err(q("finding the cursor's end"))?;
                        Some(max.unwrap_or(i64::MIN))
                    }
                }
            }
        };
        (&mut conn).execute("COMMIT").await.map_err(q("ending the snapshot"))?;
        conn.close().await.ok();
        Ok((lo, hi, until))
    }

    async fn open(&self, table: &TableConfig, window: Option<&Window>) -> Result<Box<dyn TableRead>, SourceError> {
        let label = table.source_name();
        let mut conn = self.inner.connection().await?;
        let exact = match &table.source {
            crate::config::TableSource::Query(sql) => catalog::query_columns(&mut conn, sql).await,
            crate::config::TableSource::Table { .. } | crate::config::TableSource::Pattern { .. } => None,
        };
        (&mut conn).execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await.map_err(|source| {
            SourceError::Query { table: label.clone(), what: "starting the read snapshot", source }
        })?;
        let catalog = catalog::describe(&mut conn, table, exact).await?;
        let plans = plan_columns(table, &catalog.display_name, &catalog.columns, mapping::plan)?;
        let mut window = match window {
            Some(w) => Some(window_sql(&mut conn, &catalog, &plans, w).await?),
            None => None,
        };
        // A split table's shards all read up to the bound its plan fixed.
        let plan = table.part.as_ref().and_then(|p| p.plan.as_ref());
        if let (Some(w), Some(until)) = (window.as_mut(), plan.and_then(|p| p.until)) {
            w.upper = Some(window_sql::bound_text(w.kind, until));
        }
        let mut schema = table_schema(&catalog.display_name, &plans, &catalog.primary_key);
        schema.estimate = catalog.estimate;
        crate::source::names::apply_target_names(table, &mut schema)?;
        if let Some(w) = &window {
            let column = |k: &str| catalog.columns.iter().find(|c| c.name == k);
            check_merge_keys(table, &catalog.display_name, &w.window.key, |k| column(k).and_then(loose))?;
        }
        Ok(Box::new(reader::MyTableRead::new(
            self.inner.clone(),
            conn,
            schema,
            plans,
            catalog.from,
            window,
            Chunks::of(table),
        )))
    }
}

/// Why equal values of a MySQL column may be different bytes: its collation, unless that
/// compares bytes.
fn loose(c: &mapping::MyColumn) -> Option<String> {
    let Some(coll) = c.collation.as_deref() else {
        // A query's text column: the result metadata gives no collation, and MySQL's
        // default ones ignore case.
        let text = matches!(
            c.data_type.as_str(),
            "char"
                | "varchar"
                | "tinytext"
                | "text"
                | "mediumtext"
                | "longtext"
                | "enum"
                | "set"
                | "string"
                | "var_string"
        );
        return (text && c.charset.is_some()).then(|| "an unknown collation (a query's column)".into());
    };
    (!crate::source::names::mysql_collation_is_bytewise(coll, &c.data_type)).then(|| format!("collation {coll}"))
}

async fn window_sql(
    conn: &mut MySqlConnection,
    catalog: &catalog::Catalog,
    plans: &[ColumnPlan],
    w: &Window,
) -> Result<WindowSql, SourceError> {
    let table = catalog.display_name.as_str();
    let cols = window_columns(table, plans, &catalog.primary_key, w)?;
    let cursor = cols.cursor;
    if !window_sql::cursor_ok(cursor.kind) || cursor.expr != mapping::quote_ident(&w.cursor) {
        return Err(SourceError::Config {
            table: table.to_owned(),
            detail: format!(
                "cursor column {:?} is {}; a cursor must be a DATETIME, TIMESTAMP, DATE or integer column",
                w.cursor, cursor.column.source_type
            ),
        });
    }
    let keys = cols.keys.iter().map(|(k, p)| (mapping::quote_ident(k), KeyType::of(p))).collect();
    let mut window = cols.window;
    use crate::source::window::CursorClock;
    let clock = match cursor.kind {
        mapping::MyKind::Datetime | mapping::MyKind::Timestamp => CursorClock::Time,
        mapping::MyKind::Date => CursorClock::Date,
        _ => CursorClock::Counter,
    };
    window.lookback = Some(crate::source::window::resolve_lookback(&window, clock, table)?);
    let upper = match window_sql::upper_sql(cursor.kind) {
        None => None,
        Some(sql) => Some(sqlx::query_scalar::<_, String>(sql).fetch_one(&mut *conn).await.map_err(|source| {
            SourceError::Query { table: table.to_owned(), what: "reading the database clock", source }
        })?),
    };
    Ok(WindowSql { cursor: mapping::quote_ident(&w.cursor), kind: cursor.kind, keys, window, upper })
}
