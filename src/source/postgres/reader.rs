//! Reading one table: COPY in binary, tuples decoded into bounded Arrow batches, in one
//! chunk or in key-range chunks on several connections that import the same snapshot.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use futures_util::StreamExt;
use sqlx::{Connection, Executor, PgConnection, Row};
use tokio::sync::mpsc;

use super::PgInner;
use super::catalog::{Catalog, quote_ident};
use super::copy_binary::{Framer, Next};
use super::mapping::ColumnPlan;
use super::window_sql::WindowSql;
use crate::source::batch::BatchAssembler;
use crate::source::plan::Chunks;
use crate::source::{BatchLimits, ReadStats, SourceError, TableRead, TableSchema};

pub struct PgTableRead {
    inner: Arc<PgInner>,
    conn: PgConnection,
    schema: TableSchema,
    plans: Arc<Vec<ColumnPlan>>,
    catalog: Catalog,
    window: Option<WindowSql>,
    chunks: Chunks,
}

/// The primary key, quoted, when it is one integer column: what key ranges split by.
pub fn integer_key(catalog: &Catalog, plans: &[ColumnPlan]) -> Option<String> {
    match catalog.primary_key.as_slice() {
        [one]
            if plans.iter().any(|p| {
                &p.column.name == one && matches!(p.column.source_type.as_str(), "smallint" | "integer" | "bigint")
            }) =>
        {
            Some(quote_ident(one))
        }
        _ => None,
    }
}

impl PgTableRead {
    pub fn new(
        inner: Arc<PgInner>,
        conn: PgConnection,
        schema: TableSchema,
        plans: Vec<ColumnPlan>,
        catalog: Catalog,
        window: Option<WindowSql>,
        chunks: Chunks,
    ) -> Self {
        Self { inner, conn, schema, plans: Arc::new(plans), catalog, window, chunks }
    }

    fn q(&self, what: &'static str) -> impl Fn(sqlx::Error) -> SourceError + '_ {
        move |source| SourceError::Query { table: self.schema.display_name.clone(), what, source }
    }

    /// Key ranges for parallel chunks, when the primary key is one integer column; a split
    /// table's own chunks by its plan's range.
    async fn ranges(&mut self, condition: &str) -> Result<Vec<String>, SourceError> {
        let Some(k) = integer_key(&self.catalog, &self.plans) else {
            return self.chunks.without_key(&self.schema.display_name);
        };
        let now = match self.chunks {
            Chunks::Whole(n) if n > 1 => {
                let sql = format!("SELECT min({k})::int8, max({k})::int8 FROM {} WHERE {condition}", self.catalog.from);
                let row = sqlx::query(&sql).fetch_one(&mut self.conn).await.map_err(self.q("finding key ranges"))?;
                row.get::<Option<i64>, _>(0).zip(row.get::<Option<i64>, _>(1))
            }
            _ => None,
        };
        Ok(self.chunks.ranges(&k, now))
    }
}

#[async_trait]
impl TableRead for PgTableRead {
    fn schema(&self) -> &TableSchema {
        &self.schema
    }

    async fn check(&mut self) -> Result<(), SourceError> {
        for g in self.window.as_ref().map(|w| w.guards(&self.catalog.from)).unwrap_or_default() {
            let hit =
                sqlx::query(&g.sql).fetch_optional(&mut self.conn).await.map_err(self.q("checking the window"))?;
            if hit.is_some() {
                return Err(SourceError::Refused {
                    table: self.schema.display_name.clone(),
                    problem: g.problem,
                    fix: g.fix,
                });
            }
        }
        Ok(())
    }

    async fn read_into(mut self: Box<Self>, out: mpsc::Sender<RecordBatch>) -> Result<ReadStats, SourceError> {
        self.check().await?;
        let condition = self.window.as_ref().map(|w| w.condition()).unwrap_or_else(|| "TRUE".into());
        let select: Vec<&str> = self.plans.iter().map(|p| p.expr.as_str()).collect();
        let base = format!("SELECT {} FROM {} WHERE {condition}", select.join(", "), self.catalog.from);
        let ranges = self.ranges(&condition).await?;
        let limits = self.inner.limits;
        let mut stats = if ranges.len() <= 1 {
            // One range only for a split table's single chunk: the rest are other shards'.
            let only = ranges.first().map(|r| format!(" AND {r}")).unwrap_or_default();
            let sql = format!("COPY ({base}{only}) TO STDOUT (FORMAT binary)");
            copy(&mut self.conn, &sql, &self.schema, &self.plans, limits, &out).await?
        } else {
            let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut self.conn)
                .await
                .map_err(self.q("exporting the snapshot"))?;
            let mut tasks = tokio::task::JoinSet::new();
            for range in &ranges {
                let (inner, plans, schema, out, snapshot) =
                    (self.inner.clone(), self.plans.clone(), self.schema.clone(), out.clone(), snapshot.clone());
                let sql = format!("COPY ({base} AND {range}) TO STDOUT (FORMAT binary)");
                tasks.spawn(async move { chunk(&inner, &snapshot, &sql, &schema, &plans, &out).await });
            }
            let mut total = ReadStats::default();
            while let Some(r) = tasks.join_next().await {
                let r = r.map_err(|e| SourceError::Protocol {
                    table: self.schema.display_name.clone(),
                    detail: format!("chunk task: {e}"),
                })?;
                // The first failure stops the others (dropping the set aborts them).
                total.add(&r?);
            }
            total
        };
        if let Some(w) = &self.window {
            // A split table's part has the watermark of its own chunks.
            let from = self.chunks.watermark_from(&self.catalog.from, &ranges);
            let row = sqlx::query(&w.watermark_query(&from))
                .fetch_optional(&mut self.conn)
                .await
                .map_err(self.q("finding the new watermark"))?;
            stats.watermark = match row {
                None => None,
                Some(r) => {
                    // The guards keep NULL keys out of the window; never panic if one slips in.
                    let keys = (1..=w.keys.len())
                        .map(|i| r.try_get::<String, _>(i))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(self.q("reading the new watermark"))?;
                    Some(w.watermark(r.try_get(0).map_err(self.q("reading the new watermark"))?, keys))
                }
            };
        }
        (&mut self.conn).execute("COMMIT").await.map_err(self.q("ending the read snapshot"))?;
        let PgTableRead { conn, .. } = *self;
        conn.close().await.ok();
        Ok(stats)
    }
}

/// One chunk on its own connection, inside the exported snapshot.
async fn chunk(
    inner: &PgInner,
    snapshot: &str,
    sql: &str,
    schema: &TableSchema,
    plans: &[ColumnPlan],
    out: &mpsc::Sender<RecordBatch>,
) -> Result<ReadStats, SourceError> {
    let q = |what| move |source| SourceError::Query { table: schema.display_name.clone(), what, source };
    let mut conn = inner.connection().await?;
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        snapshot.replace('\'', "")
    );
    (&mut conn).execute(begin.as_str()).await.map_err(q("importing the snapshot"))?;
    let stats = copy(&mut conn, sql, schema, plans, inner.limits, out).await?;
    (&mut conn).execute("COMMIT").await.map_err(q("ending a chunk"))?;
    conn.close().await.ok();
    Ok(stats)
}

/// Runs one COPY and sends its rows as batches.
async fn copy(
    conn: &mut PgConnection,
    sql: &str,
    schema: &TableSchema,
    plans: &[ColumnPlan],
    limits: BatchLimits,
    out: &mpsc::Sender<RecordBatch>,
) -> Result<ReadStats, SourceError> {
    let table = schema.display_name.clone();
    let mut decoder = RowDecoder::new(schema, plans, limits);
    let mut stream = conn.copy_out_raw(sql).await.map_err(|source| SourceError::Query {
        table: table.clone(),
        what: "starting COPY",
        source,
    })?;
    let cancelled = || SourceError::Cancelled { table: table.clone() };
    // Bytes of a tuple split across chunks wait here; whole tuples are decoded in place.
    let mut carry: Vec<u8> = Vec::new();
    let mut ended = false;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|source| SourceError::Query { table: table.clone(), what: "reading rows", source })?;
        let data: &[u8] = if carry.is_empty() {
            &chunk
        } else {
            carry.extend_from_slice(&chunk);
            &carry
        };
        let mut pos = 0;
        loop {
            let (used, stop) = decoder.decode_some(&data[pos..])?;
            pos += used;
            match stop {
                Stop::Full => {
                    out.send(decoder.assembler.finish()).await.map_err(|_| cancelled())?;
                    crate::failpoint::hit("after-read-batch");
                }
                Stop::NeedMore => break,
                Stop::End => {
                    ended = true;
                    break;
                }
            }
        }
        let rest = data[pos..].to_vec();
        carry = rest;
    }
    drop(stream);
    if !ended || !carry.is_empty() {
        return Err(SourceError::Protocol { table, detail: "COPY stream ended early".into() });
    }
    if decoder.assembler.rows() > 0 {
        out.send(decoder.assembler.finish()).await.map_err(|_| cancelled())?;
    }
    Ok(decoder.stats)
}

enum Stop {
    Full,
    NeedMore,
    End,
}

/// Turns COPY tuples into batches.
struct RowDecoder<'a> {
    table: String,
    plans: &'a [ColumnPlan],
    key_columns: Vec<usize>,
    framer: Framer,
    fields: Vec<Option<std::ops::Range<usize>>>,
    assembler: BatchAssembler,
    stats: ReadStats,
}

impl<'a> RowDecoder<'a> {
    fn new(schema: &TableSchema, plans: &'a [ColumnPlan], limits: BatchLimits) -> Self {
        let key_columns =
            schema.primary_key.iter().filter_map(|k| plans.iter().position(|p| &p.column.name == k)).collect();
        Self {
            table: schema.display_name.clone(),
            assembler: BatchAssembler::new(&schema.fields(), limits.rows, limits.bytes),
            plans,
            key_columns,
            framer: Framer::default(),
            fields: Vec::new(),
            stats: ReadStats::default(),
        }
    }

    /// Decodes whole tuples from the start of `data` until a batch is full, more bytes are
    /// needed, or the stream's trailer is reached; returns the bytes used and why it stopped.
    fn decode_some(&mut self, data: &[u8]) -> Result<(usize, Stop), SourceError> {
        let mut pos = 0;
        loop {
            let next = self
                .framer
                .next_tuple(&data[pos..], self.plans.len(), &mut self.fields)
                .map_err(|detail| SourceError::Protocol { table: self.table.clone(), detail })?;
            match next {
                Next::Incomplete => return Ok((pos, Stop::NeedMore)),
                Next::End { consumed } => return Ok((pos + consumed, Stop::End)),
                Next::Tuple { consumed } => {
                    self.decode_row(&data[pos..pos + consumed])?;
                    pos += consumed;
                    if self.assembler.is_full() {
                        return Ok((pos, Stop::Full));
                    }
                }
            }
        }
    }

    fn decode_row(&mut self, tuple: &[u8]) -> Result<(), SourceError> {
        if tuple.len() > crate::source::MAX_ROW_BYTES {
            let widest = (0..self.fields.len())
                .max_by_key(|&i| self.fields[i].as_ref().map_or(0, |r| r.len()))
                .unwrap_or_default();
            let name = self.plans[widest].column.name.clone();
            return Err(crate::source::row_too_large(&self.table, &name, self.render_key(tuple), tuple.len()));
        }
        for (i, field) in self.fields.iter().enumerate() {
            let column = &mut self.assembler.columns[i];
            let plan = &self.plans[i];
            let Some(r) = field else {
                column.append_null();
                continue;
            };
            let raw = &tuple[r.clone()];
            let decoded = if plan.array { plan.kind.decode_array(raw, column) } else { plan.kind.decode(raw, column) };
            decoded.map_err(|detail| SourceError::Value {
                table: self.table.clone(),
                column: plan.column.name.clone(),
                key: self.render_key(tuple),
                detail: crate::source::value_detail(&detail, &plan.column.name),
            })?;
        }
        self.stats.rows += 1;
        self.stats.source_bytes += tuple.len() as u64;
        self.assembler.row_done(tuple.len());
        Ok(())
    }

    fn render_key(&self, tuple: &[u8]) -> String {
        if self.key_columns.is_empty() {
            return format!("(no primary key; row {} of this read)", self.stats.rows + 1);
        }
        let parts: Vec<String> = self
            .key_columns
            .iter()
            .map(|&i| {
                let v = match &self.fields[i] {
                    None => "NULL".to_string(),
                    Some(r) => self.plans[i].kind.render(&tuple[r.clone()]),
                };
                format!("{}={v}", self.plans[i].column.name)
            })
            .collect();
        format!("({})", parts.join(", "))
    }
}
