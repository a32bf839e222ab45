//! PostgreSQL (and Aurora PostgreSQL): one connection per table, a REPEATABLE READ READ
//! ONLY snapshot, and `COPY (SELECT …) TO STDOUT (FORMAT binary)` decoded straight into
//! Arrow builders. COPY is the server's fastest way out, and the binary form carries every
//! value exactly (no text round trip for numbers or times).

mod copy_binary;
mod decode;
mod introspect;
mod numeric;

use std::str::FromStr;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use futures_util::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::mpsc;

pub use decode::PgKind;
pub use introspect::{map_type, quote_ident};

use self::copy_binary::{Framer, Next};
use super::batch::BatchAssembler;
use super::{BatchLimits, ReadStats, Source, SourceError, TableRead, TableSchema};
use crate::config::{SourceConfig, TableConfig};
use crate::secret::Secret;

pub struct PgSource {
    options: PgConnectOptions,
    target: String,
    connect_timeout: std::time::Duration,
    limits: BatchLimits,
}

impl PgSource {
    pub async fn connect(
        config: &SourceConfig,
        url: &Secret,
        limits: BatchLimits,
    ) -> Result<Self, SourceError> {
        let target = super::describe_url(url);
        let mut options = PgConnectOptions::from_str(url.expose()).map_err(|e| {
            SourceError::Url(format!("the PostgreSQL URL for {target} is not valid: {e}"))
        })?;
        options = options.application_name(&config.application_name);
        if let Some(ca) = &config.ca_file {
            options = options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(ca);
        }
        if let Some(t) = config.statement_timeout {
            options = options.options([("statement_timeout", format!("{}ms", t.as_millis()))]);
        }
        let source = Self { options, target, connect_timeout: config.connect_timeout, limits };
        // Connect once now so a wrong URL or password fails before anything else happens.
        source.new_connection().await?.close().await.ok();
        Ok(source)
    }

    async fn new_connection(&self) -> Result<PgConnection, SourceError> {
        let err = |source| SourceError::Connect { engine: "PostgreSQL", target: self.target.clone(), source };
        match tokio::time::timeout(self.connect_timeout, self.options.connect()).await {
            Ok(r) => r.map_err(err),
            Err(_) => Err(err(sqlx::Error::PoolTimedOut)),
        }
    }
}

#[async_trait]
impl Source for PgSource {
    async fn open(&self, table: &TableConfig) -> Result<Box<dyn TableRead>, SourceError> {
        let mut conn = self.new_connection().await?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(|source| SourceError::Query {
                table: table.source_name(),
                what: "starting the read snapshot",
                source,
            })?;
        let mapped = introspect::describe(&mut conn, table).await?;
        let copy_sql = format!(
            "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
            mapped.select_list, mapped.relation
        );
        Ok(Box::new(PgTableRead {
            conn,
            schema: mapped.schema,
            kinds: mapped.kinds,
            copy_sql,
            limits: self.limits,
        }))
    }
}

struct PgTableRead {
    conn: PgConnection,
    schema: TableSchema,
    kinds: Vec<PgKind>,
    copy_sql: String,
    limits: BatchLimits,
}

#[async_trait]
impl TableRead for PgTableRead {
    fn schema(&self) -> &TableSchema {
        &self.schema
    }

    async fn read_into(
        self: Box<Self>,
        out: mpsc::Sender<RecordBatch>,
    ) -> Result<ReadStats, SourceError> {
        let PgTableRead { mut conn, schema, kinds, copy_sql, limits } = *self;
        let table = schema.display_name.clone();
        let mut decoder = RowDecoder::new(&schema, kinds, limits);
        let mut stream = conn.copy_out_raw(&copy_sql).await.map_err(|source| {
            SourceError::Query { table: table.clone(), what: "starting COPY", source }
        })?;
        // Bytes of a tuple split across chunks wait here; whole tuples are decoded in place.
        let mut carry: Vec<u8> = Vec::new();
        let mut ended = false;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| SourceError::Query {
                table: table.clone(),
                what: "reading rows",
                source,
            })?;
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
                        let batch = decoder.assembler.finish();
                        out.send(batch)
                            .await
                            .map_err(|_| SourceError::Cancelled { table: table.clone() })?;
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
            let batch = decoder.assembler.finish();
            out.send(batch).await.map_err(|_| SourceError::Cancelled { table: table.clone() })?;
        }
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.map_err(|source| SourceError::Query {
            table: table.clone(),
            what: "ending the read snapshot",
            source,
        })?;
        conn.close().await.ok();
        Ok(decoder.stats)
    }
}

/// Turns COPY tuples into batches.
struct RowDecoder {
    table: String,
    names: Vec<String>,
    kinds: Vec<PgKind>,
    key_columns: Vec<usize>,
    framer: Framer,
    fields: Vec<Option<std::ops::Range<usize>>>,
    assembler: BatchAssembler,
    stats: ReadStats,
}

impl RowDecoder {
    fn new(schema: &TableSchema, kinds: Vec<PgKind>, limits: BatchLimits) -> Self {
        let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        let key_columns =
            schema.primary_key.iter().filter_map(|k| names.iter().position(|n| n == k)).collect();
        Self {
            table: schema.display_name.clone(),
            assembler: BatchAssembler::new(&schema.fields(), limits.rows, limits.bytes),
            names,
            kinds,
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
                .next_tuple(&data[pos..], self.kinds.len(), &mut self.fields)
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
        for (i, field) in self.fields.iter().enumerate() {
            let column = &mut self.assembler.columns[i];
            match field {
                None => column.append_null(),
                Some(r) => self.kinds[i].decode(&tuple[r.clone()], column).map_err(|detail| {
                    SourceError::Value {
                        table: self.table.clone(),
                        column: self.names[i].clone(),
                        key: self.render_key(tuple),
                        detail: detail.replace("COLUMN", &self.names[i]),
                    }
                })?,
            }
        }
        self.stats.rows += 1;
        self.stats.source_bytes += tuple.len() as u64;
        self.assembler.row_done(tuple.len());
        Ok(())
    }

    fn render_key(&self, tuple: &[u8]) -> String {
        if self.key_columns.is_empty() {
            return format!("(no primary key; row {})", self.stats.rows + 1);
        }
        let parts: Vec<String> = self
            .key_columns
            .iter()
            .map(|&i| {
                let v = match &self.fields[i] {
                    None => "NULL".to_string(),
                    Some(r) => self.kinds[i].render(&tuple[r.clone()]),
                };
                format!("{}={v}", self.names[i])
            })
            .collect();
        format!("({})", parts.join(", "))
    }
}

enum Stop {
    Full,
    NeedMore,
    End,
}
