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
use crate::source::{ReadStats, SourceError, TableRead, TableSchema};

pub struct MyTableRead {
    inner: Arc<MyInner>,
    conn: MySqlConnection,
    schema: TableSchema,
    plans: Vec<ColumnPlan>,
    from: String,
    window: Option<WindowSql>,
}

impl MyTableRead {
    pub fn new(
        inner: Arc<MyInner>,
        conn: MySqlConnection,
        schema: TableSchema,
        plans: Vec<ColumnPlan>,
        from: String,
        window: Option<WindowSql>,
    ) -> Self {
        Self { inner, conn, schema, plans, from, window }
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
        let limits = self.inner.limits;
        let mut assembler = BatchAssembler::new(&self.schema.fields(), limits.rows, limits.bytes);
        let keys: Vec<usize> = self
            .schema
            .primary_key
            .iter()
            .filter_map(|k| self.plans.iter().position(|p| &p.column.name == k))
            .collect();
        let mut stats = ReadStats::default();
        {
            let mut rows = (&mut self.conn).fetch(sql.as_str());
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
                        .max_by_key(|&i| {
                            row.try_get_unchecked::<Option<&[u8]>, _>(i).ok().flatten().map_or(0, <[u8]>::len)
                        })
                        .unwrap_or_default();
                    let key = render_key(&row, &self.plans, &keys, stats.rows);
                    return Err(crate::source::row_too_large(&table, &self.plans[widest].column.name, key, bytes));
                }
                stats.rows += 1;
                stats.source_bytes += bytes as u64;
                assembler.row_done(bytes);
                if assembler.is_full() {
                    out.send(assembler.finish()).await.map_err(|_| SourceError::Cancelled { table: table.clone() })?;
                }
            }
        }
        if assembler.rows() > 0 {
            out.send(assembler.finish()).await.map_err(|_| SourceError::Cancelled { table: table.clone() })?;
        }
        if let Some(w) = &self.window {
            let row = (&mut self.conn)
                .fetch_optional(w.watermark_query(&self.from).as_str())
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
