//! Streams one MySQL table's rows (text protocol) into bounded Arrow batches.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::{Connection, Executor, MySqlConnection, Row};
use tokio::sync::mpsc;

use super::MyInner;
use super::decode::Bad;
use super::mapping::ColumnPlan;
use super::window_sql::WindowSql;
use crate::config::ZeroDates;
use crate::source::batch::BatchAssembler;
use crate::source::plan::Chunks;
use crate::source::{ReadStats, SourceError, TableRead, TableSchema};

pub struct MyTableRead {
    inner: Arc<MyInner>,
    conn: MySqlConnection,
    schema: TableSchema,
    plans: Vec<ColumnPlan>,
    from: String,
    window: Option<WindowSql>,
    chunks: Chunks,
}

impl MyTableRead {
    pub fn new(
        inner: Arc<MyInner>,
        conn: MySqlConnection,
        schema: TableSchema,
        plans: Vec<ColumnPlan>,
        from: String,
        window: Option<WindowSql>,
        chunks: Chunks,
    ) -> Self {
        Self { inner, conn, schema, plans, from, window, chunks }
    }

    fn q(&self, what: &'static str) -> impl Fn(sqlx::Error) -> SourceError + use<> {
        let table = self.schema.display_name.clone();
        move |source| SourceError::Query { table: table.clone(), what, source }
    }

    /// Key ranges for parallel chunks, when the primary key is one signed integer column; a
    /// split table's own chunks by its plan's range.
    async fn ranges(&mut self, condition: &str) -> Result<Vec<String>, SourceError> {
        let Some(k) = integer_key(&self.schema.primary_key, &self.plans) else {
            return self.chunks.without_key(&self.schema.display_name);
        };
        let now = match self.chunks {
            Chunks::Whole(n) if n > 1 => {
                let sql = format!(
                    "SELECT CAST(MIN({k}) AS SIGNED), CAST(MAX({k}) AS SIGNED) FROM {} WHERE {condition}",
                    self.from
                );
                let row = sqlx::query(&sql).fetch_one(&mut self.conn).await.map_err(self.q("finding key ranges"))?;
                row.try_get::<Option<i64>, _>(0).ok().flatten().zip(row.try_get::<Option<i64>, _>(1).ok().flatten())
            }
            _ => None,
        };
        Ok(self.chunks.ranges(&k, now))
    }

    /// One snapshot for every chunk, as far as MySQL allows: `LOCK TABLES … READ` on a
    /// connection of its own waits for the table's writing transactions to end and holds off
    /// new ones, while this connection and each chunk's start their consistent snapshots;
    /// then the lock goes. Writers wait for that moment only (milliseconds).
    async fn synchronized_snapshots(&mut self, n: usize) -> Result<Vec<MySqlConnection>, SourceError> {
        let table = self.schema.display_name.clone();
        let mut lock = self.inner.connection().await?;
        (&mut lock).execute("SET SESSION lock_wait_timeout = 60").await.map_err(self.q("locking the table"))?;
        if let Err(e) = (&mut lock).execute(format!("LOCK TABLES {} READ", self.from).as_str()).await {
            let denied = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42000" || c == "1044" || c == "1142");
            if denied {
                return Err(SourceError::Refused {
                    table,
                    problem: format!("parallel_chunks needs LOCK TABLES to start every chunk in one snapshot: {e}"),
                    fix: "GRANT LOCK TABLES ON <database>.* TO '<user>'@'%'; or read the table over one connection \
                          (parallel_chunks = 1)"
                        .into(),
                });
            }
            return Err(self.q("locking the table")(e));
        }
        let start = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
        let begun = async {
            (&mut self.conn).execute("COMMIT").await.map_err(self.q("restarting the read snapshot"))?;
            (&mut self.conn).execute(start).await.map_err(self.q("restarting the read snapshot"))?;
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                let mut c = self.inner.connection().await?;
                (&mut c).execute(start).await.map_err(self.q("starting a chunk's snapshot"))?;
                conns.push(c);
            }
            Ok::<_, SourceError>(conns)
        }
        .await;
        let unlocked = (&mut lock).execute("UNLOCK TABLES").await.map_err(self.q("unlocking the table"));
        lock.close().await.ok();
        let conns = begun?;
        unlocked?;
        Ok(conns)
    }
}

#[async_trait]
impl TableRead for MyTableRead {
    fn schema(&self) -> &TableSchema {
        &self.schema
    }

    async fn check(&mut self) -> Result<(), SourceError> {
        let table = self.schema.display_name.clone();
        for g in self.window.as_ref().map(|w| w.guards(&self.from)).unwrap_or_default() {
            let hit = (&mut self.conn).fetch_optional(g.sql.as_str()).await.map_err(|source| SourceError::Query {
                table: table.clone(),
                what: "checking the window",
                source,
            })?;
            if hit.is_some() {
                return Err(SourceError::Refused { table: table.clone(), problem: g.problem, fix: g.fix });
            }
        }
        Ok(())
    }

    async fn read_into(mut self: Box<Self>, out: mpsc::Sender<RecordBatch>) -> Result<ReadStats, SourceError> {
        self.check().await?;
        let table = self.schema.display_name.clone();
        let q = |what| {
            let table = table.clone();
            move |source| SourceError::Query { table, what, source }
        };
        let condition = self.window.as_ref().map(|w| w.condition()).unwrap_or_else(|| "TRUE".into());
        let select: Vec<&str> = self.plans.iter().map(|p| p.expr.as_str()).collect();
        let sql = format!("SELECT {} FROM {} WHERE {condition}", select.join(", "), self.from);
        let ranges = self.ranges(&condition).await?;
        let reader =
            Arc::new(Rows { inner: self.inner.clone(), schema: self.schema.clone(), plans: self.plans.clone() });
        let mut stats = if ranges.len() <= 1 {
            // One range only for a split table's single chunk: the rest are other shards'.
            let only = ranges.first().map(|r| format!("{sql} AND {r}")).unwrap_or_else(|| sql.clone());
            reader.stream(&mut self.conn, &only, &out).await?
        } else {
            let conns = self.synchronized_snapshots(ranges.len()).await?;
            // The window's guards again, in the new snapshot.
            self.check().await?;
            let mut tasks = tokio::task::JoinSet::new();
            for (mut conn, range) in conns.into_iter().zip(&ranges) {
                let (reader, out, sql) = (reader.clone(), out.clone(), format!("{sql} AND {range}"));
                tasks.spawn(async move {
                    let stats = reader.stream(&mut conn, &sql, &out).await?;
                    (&mut conn).execute("COMMIT").await.map_err(|source| SourceError::Query {
                        table: reader.schema.display_name.clone(),
                        what: "ending a chunk",
                        source,
                    })?;
                    conn.close().await.ok();
                    Ok::<_, SourceError>(stats)
                });
            }
            let mut total = ReadStats::default();
            while let Some(r) = tasks.join_next().await {
                let r =
                    r.map_err(|e| SourceError::Protocol { table: table.clone(), detail: format!("chunk task: {e}") })?;
                // The first failure stops the others (dropping the set aborts them).
                total.add(&r?);
            }
            total
        };
        if let Some(w) = &self.window {
            let row = (&mut self.conn)
                .fetch_optional(w.watermark_query(&self.chunks.watermark_from(&self.from, &ranges)).as_str())
                .await
                .map_err(q("finding the new watermark"))?;
            if let Some(r) = row {
                let text = |i: usize| -> Result<String, SourceError> {
                    let raw: Option<&[u8]> = r.try_get_unchecked(i).map_err(q("reading the watermark"))?;
                    // The guards keep NULL keys out of the window; an empty key would resume wrongly.
                    let raw = raw.ok_or_else(|| SourceError::Protocol {
                        table: table.clone(),
                        detail: "the new watermark has a NULL key column".into(),
                    })?;
                    Ok(String::from_utf8_lossy(raw).into_owned())
                };
                let keys = (1..=w.keys.len()).map(text).collect::<Result<Vec<_>, _>>()?;
                let wm = w
                    .watermark(&text(0)?, keys)
                    .map_err(|detail| SourceError::Protocol { table: table.clone(), detail })?;
                stats.watermark = Some(wm);
            }
        }
        (&mut self.conn).execute("COMMIT").await.map_err(q("ending the read snapshot"))?;
        let MyTableRead { conn, .. } = *self;
        conn.close().await.ok();
        Ok(stats)
    }
}

/// What decoding rows needs, shared by the chunks of one read.
struct Rows {
    inner: Arc<MyInner>,
    schema: TableSchema,
    plans: Vec<ColumnPlan>,
}

impl Rows {
    /// Streams the rows of `sql` on `conn` into bounded batches on `out`.
    async fn stream(
        &self,
        conn: &mut MySqlConnection,
        sql: &str,
        out: &mpsc::Sender<RecordBatch>,
    ) -> Result<ReadStats, SourceError> {
        let table = &self.schema.display_name;
        let q = |what| move |source| SourceError::Query { table: table.clone(), what, source };
        let limits = self.inner.limits;
        let mut assembler = BatchAssembler::new(&self.schema.fields(), limits.rows, limits.bytes);
        let keys: Vec<usize> = self
            .schema
            .primary_key
            .iter()
            .filter_map(|k| self.plans.iter().position(|p| &p.column.name == k))
            .collect();
        let mut stats = ReadStats::default();
        let mut rows = conn.fetch(sql);
        while let Some(row) = rows.try_next().await.map_err(q("reading rows"))? {
            let mut bytes = 0;
            for (i, plan) in self.plans.iter().enumerate() {
                let col = &mut assembler.columns[i];
                let raw: Option<&[u8]> = row.try_get_unchecked(i).map_err(q("reading a value"))?;
                let Some(raw) = raw else {
                    col.append_null();
                    continue;
                };
                bytes += raw.len() + 1;
                match plan.kind.decode(raw, col) {
                    Ok(()) => {}
                    Err(Bad::ZeroDate) if self.inner.zero_dates == ZeroDates::Null => {
                        col.append_null();
                        stats.zero_dates += 1;
                    }
                    Err(bad) => {
                        let detail = match bad {
                            Bad::ZeroDate => format!(
                                "{} is a zero date, which has no BigQuery value; set `zero_dates = \"null\"` under \
                                 [source] to load zero dates as NULL (they are counted in the summary)",
                                String::from_utf8_lossy(raw)
                            ),
                            Bad::Other(m) => crate::source::value_detail(&m, &plan.column.name),
                        };
                        let key = render_key(&row, &self.plans, &keys, stats.rows);
                        return Err(SourceError::Value {
                            table: table.clone(),
                            column: plan.column.name.clone(),
                            key,
                            detail,
                        });
                    }
                }
            }
            if bytes > crate::source::MAX_ROW_BYTES {
                let widest = (0..self.plans.len())
                    .max_by_key(|&i| row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten().map_or(0, <[u8]>::len))
                    .unwrap_or_default();
                let key = render_key(&row, &self.plans, &keys, stats.rows);
                return Err(crate::source::row_too_large(table, &self.plans[widest].column.name, key, bytes));
            }
            stats.rows += 1;
            stats.source_bytes += bytes as u64;
            assembler.row_done(bytes);
            if assembler.is_full() {
                out.send(assembler.finish()).await.map_err(|_| SourceError::Cancelled { table: table.clone() })?;
            }
        }
        if assembler.rows() > 0 {
            out.send(assembler.finish()).await.map_err(|_| SourceError::Cancelled { table: table.clone() })?;
        }
        Ok(stats)
    }
}

fn render_key(row: &sqlx::mysql::MySqlRow, plans: &[ColumnPlan], keys: &[usize], n: u64) -> String {
    if keys.is_empty() {
        return format!("(no primary key; row {} of this read)", n + 1);
    }
    let parts: Vec<String> = keys
        .iter()
        .map(|&i| {
            let raw: Option<&[u8]> = row.try_get_unchecked(i).ok().flatten();
            let v = raw.map(|r| plans[i].kind.render(r)).unwrap_or_else(|| "NULL".into());
            format!("{}={v}", plans[i].column.name)
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// The primary key, quoted, when it is one signed integer column: what key ranges split by.
pub fn integer_key(primary_key: &[String], plans: &[ColumnPlan]) -> Option<String> {
    let int = |t: &str| {
        ["tinyint", "smallint", "mediumint", "int", "bigint"].iter().any(|i| t.starts_with(i))
            && !(t.starts_with("bigint") && t.contains("unsigned"))
    };
    match primary_key {
        [one] if plans.iter().any(|p| &p.column.name == one && int(&p.column.source_type)) => {
            Some(super::mapping::quote_ident(one))
        }
        _ => None,
    }
}
