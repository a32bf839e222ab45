//! PostgreSQL (and Aurora PostgreSQL): a REPEATABLE READ READ ONLY snapshot per table and
//! `COPY (SELECT …) TO STDOUT (FORMAT binary)` decoded straight into Arrow builders. COPY is
//! the server's fastest way out, and the binary form carries every value exactly. A large
//! table can be read in key-range chunks over several connections sharing the snapshot
//! (`pg_export_snapshot`).

mod catalog;
mod copy_binary;
mod decode;
mod mapping;
mod numeric;
mod reader;
mod window_sql;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, Row};

pub use catalog::quote_ident;
pub use decode::PgKind;

use self::catalog::Catalog;
use self::mapping::ColumnPlan;
use self::reader::PgTableRead;
use self::window_sql::{CursorKind, WindowSql};
use super::names::check_merge_keys;
use super::plan::{Chunks, no_split_key, plan_columns, table_schema, window_columns};
use super::window::Window;
use super::{BatchLimits, Source, SourceError, TableRead};
use crate::config::{SourceConfig, TableConfig};
use crate::secret::Secret;

/// Connection settings shared by a table's connections.
pub(crate) struct PgInner {
    /// The connection made to check the settings, kept for the first table: each new
    /// connection costs a TLS handshake.
    spare: std::sync::Mutex<Option<PgConnection>>,
    options: PgConnectOptions,
    target: String,
    connect_timeout: std::time::Duration,
    limits: BatchLimits,
    /// RDS IAM: each connection's password is a token signed for it.
    iam: Option<super::iam::DbIam>,
}

#[derive(Clone)]
pub struct PgSource {
    inner: Arc<PgInner>,
}

impl PgSource {
    pub(crate) async fn connect(
        config: &SourceConfig,
        url: &Secret,
        iam: Option<super::iam::DbIam>,
        limits: BatchLimits,
    ) -> Result<Self, SourceError> {
        let target = super::describe_url(url);
        let mut options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| SourceError::Url(format!("the PostgreSQL URL for {target} is not valid: {e}")))?;
        // Long COPYs are expected; sqlx would log each as a slow statement.
        options = options.application_name(&config.application_name).disable_statement_logging();
        if let Some(ca) = &config.ca_file {
            options = options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(ca);
        } else if iam.is_some() {
            // A token is a password for 15 minutes: it only travels over verified TLS.
            options =
                options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert_from_pem(super::iam::RDS_CA_BUNDLE.to_vec());
        }
        let mut settings = vec![("standard_conforming_strings".to_string(), "on".to_string())];
        if let Some(t) = config.statement_timeout {
            settings.push(("statement_timeout".into(), format!("{}ms", t.as_millis())));
        }
        options = options.options(settings);
        let inner = PgInner {
            spare: std::sync::Mutex::new(None),
            options,
            target,
            connect_timeout: config.connect_timeout,
            limits,
            iam,
        };
        // Connect once now so a wrong URL or password fails before anything else happens.
        let first = inner.connection().await?;
        *inner.spare.lock().expect("spare lock") = Some(first);
        Ok(Self { inner: Arc::new(inner) })
    }
}

impl PgInner {
    pub(crate) async fn connection(&self) -> Result<PgConnection, SourceError> {
        if let Some(c) = self.spare.lock().expect("spare lock").take() {
            return Ok(c);
        }
        let err = |source| SourceError::Connect {
            engine: crate::config::Engine::Postgres,
            target: self.target.clone(),
            source,
        };
        let connect = super::iam::connect(self.iam.as_ref(), &self.options, |o, p| o.password(p), &self.target, err);
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(r) => r,
            Err(_) => Err(err(sqlx::Error::PoolTimedOut)),
        }
    }
}

#[async_trait]
impl Source for PgSource {
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
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(q("starting a snapshot"))?;
        let catalog = catalog::describe(&mut conn, table).await?;
        let plans = plan_columns(table, &catalog.display_name, &catalog.columns, mapping::plan)?;
        let k = reader::integer_key(&catalog, &plans).ok_or_else(|| no_split_key(&catalog.display_name))?;
        let sql = format!("SELECT coalesce(min({k}), 0)::int8, coalesce(max({k}), 0)::int8 FROM {}", catalog.from);
        let row = sqlx::query(&sql).fetch_one(&mut conn).await.map_err(q("finding the key's range"))?;
        let (lo, hi) = (row.get::<i64, _>(0), row.get::<i64, _>(1));
        let until = match window {
            None => None,
            Some(w) => {
                let w = window_sql(&mut conn, &catalog, &plans, w).await?;
                match w.upper {
                    Some(clock) => Some(clock),
                    // An integer cursor has no clock: the largest value now bounds every
                    // shard's window, so a row numbered after the plan waits for the next run.
                    None => {
                        let sql = format!("SELECT max({})::int8 FROM {}", w.cursor, catalog.from);
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
        (&mut conn).execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(|source| {
            SourceError::Query { table: label.clone(), what: "starting the read snapshot", source }
        })?;
        let catalog = catalog::describe(&mut conn, table).await?;
        let plans = plan_columns(table, &catalog.display_name, &catalog.columns, mapping::plan)?;
        let mut window = match window {
            Some(w) => Some(window_sql(&mut conn, &catalog, &plans, w).await?),
            None => None,
        };
        // A split table's shards all read up to the bound its plan fixed.
        let plan = table.part.as_ref().and_then(|p| p.plan.as_ref());
        if let (Some(w), Some(until)) = (window.as_mut(), plan.and_then(|p| p.until)) {
            w.upper = Some(until);
        }
        let mut schema = table_schema(&catalog.display_name, &plans, &catalog.primary_key);
        schema.estimate = catalog.estimate;
        crate::source::names::apply_target_names(table, &mut schema)?;
        if let Some(w) = &window {
            let column = |k: &str| catalog.columns.iter().find(|c| c.name == k);
            check_merge_keys(table, &catalog.display_name, &w.window.key, |k| {
                column(k).and_then(|c| c.loose_equality.clone())
            })?;
        }
        let chunks = Chunks::of(table);
        Ok(Box::new(PgTableRead::new(self.inner.clone(), conn, schema, plans, catalog, window, chunks)))
    }
}

/// Resolves the window's cursor and key columns, and fixes the upper bound from the
/// database clock now, at the start of the snapshot.
async fn window_sql(
    conn: &mut PgConnection,
    catalog: &Catalog,
    plans: &[ColumnPlan],
    w: &Window,
) -> Result<WindowSql, SourceError> {
    let table = catalog.display_name.clone();
    let cols = window_columns(&table, plans, &catalog.primary_key, w)?;
    let kind = CursorKind::of(cols.cursor).ok_or_else(|| SourceError::Config {
        table: table.clone(),
        detail: format!(
            "cursor column {:?} is {}; a cursor must be a timestamp, timestamptz, date or integer column",
            w.cursor, cols.cursor.column.source_type
        ),
    })?;
    let keys = cols.keys.iter().map(|(k, p)| (quote_ident(k), p.column.source_type.clone())).collect();
    let mut window = cols.window;
    use crate::source::window::CursorClock;
    let clock = match kind {
        CursorKind::Timestamp | CursorKind::Datetime => CursorClock::Time,
        CursorKind::Date => CursorClock::Date,
        CursorKind::Int => CursorClock::Counter,
    };
    window.lookback = Some(crate::source::window::resolve_lookback(&window, clock, &table)?);
    let upper = match kind.upper_bound_sql() {
        None => None,
        Some(sql) => Some(
            sqlx::query(&format!("SELECT {sql}"))
                .fetch_one(&mut *conn)
                .await
                .map_err(|source| SourceError::Query {
                    table: table.clone(),
                    what: "reading the database clock",
                    source,
                })?
                .get::<i64, _>(0),
        ),
    };
    Ok(WindowSql { cursor: quote_ident(&w.cursor), kind, keys, window, upper })
}
