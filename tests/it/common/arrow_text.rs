//! Reads a source through the library and renders each Arrow value as canonical text, so
//! tests can state expected values literally.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float64Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use aurora2bq::config::{Engine, SourceConfig, TableConfig, UrlFrom, ZeroDates};
use aurora2bq::source::window::Window;
use aurora2bq::source::{self, BatchLimits, ReadStats, SourceError, TableSchema};

pub fn source_config(engine: Engine, url: &str, dir: &Path, zero_dates: ZeroDates) -> SourceConfig {
    let file = dir.join(format!("url-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, url).unwrap();
    SourceConfig {
        engine,
        url: UrlFrom::File(file),
        application_name: "aurora2bq-test".into(),
        statement_timeout: None,
        connect_timeout: std::time::Duration::from_secs(10),
        ca_file: None,
        zero_dates,
        auth: aurora2bq::config::SourceAuth::Password,
    }
}

pub struct Read {
    pub schema: TableSchema,
    pub batches: Vec<RecordBatch>,
    pub stats: ReadStats,
}

impl Read {
    /// Column `name` of every row, in read order, as canonical text (`None` for NULL).
    pub fn column(&self, name: &str) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for b in &self.batches {
            let i = b.schema().index_of(name).unwrap_or_else(|_| panic!("no column {name}"));
            let a = b.column(i);
            for r in 0..a.len() {
                out.push(cell(a, r));
            }
        }
        out
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

pub async fn read(
    config: &SourceConfig,
    table: &TableConfig,
    window: Option<&Window>,
    limits: BatchLimits,
) -> Result<Read, SourceError> {
    let src = source::connect(config, limits).await?;
    let r = src.open(table, window).await?;
    let schema = r.schema().clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(r.read_into(tx));
    let mut batches = Vec::new();
    while let Some(b) = rx.recv().await {
        batches.push(b);
    }
    let stats = task.await.unwrap()?;
    Ok(Read { schema, batches, stats })
}

fn scaled(digits: String, scale: usize) -> String {
    let (neg, d) = digits.strip_prefix('-').map(|d| (true, d.to_string())).unwrap_or((false, digits));
    let d = format!("{}{d}", "0".repeat((scale + 1).saturating_sub(d.len())));
    let (i, f) = d.split_at(d.len() - scale);
    let f = f.trim_end_matches('0');
    let s = if f.is_empty() { i.to_string() } else { format!("{i}.{f}") };
    if neg && s != "0" { format!("-{s}") } else { s }
}

/// Canonical text of one Arrow value.
pub fn cell(a: &ArrayRef, r: usize) -> Option<String> {
    if a.is_null(r) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().value(r).to_string(),
        DataType::Float64 => format!("{:?}", a.as_primitive::<Float64Type>().value(r)),
        DataType::Boolean => a.as_boolean().value(r).to_string(),
        DataType::Utf8 => a.as_string::<i32>().value(r).to_string(),
        DataType::Binary => a.as_binary::<i32>().value(r).iter().map(|b| format!("{b:02x}")).collect(),
        DataType::Decimal128(_, s) => scaled(a.as_primitive::<Decimal128Type>().value(r).to_string(), *s as usize),
        DataType::Decimal256(_, s) => scaled(a.as_primitive::<Decimal256Type>().value(r).to_string(), *s as usize),
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(r);
            (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d as i64)).to_string()
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(r);
            chrono::DateTime::from_timestamp_micros(us).unwrap().naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
        }
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(r);
            chrono::DateTime::from_timestamp_micros(us).unwrap().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let us = a.as_primitive::<Time64MicrosecondType>().value(r);
            let t = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                (us % 1_000_000) as u32 * 1000,
            )
            .unwrap();
            t.format("%H:%M:%S%.6f").to_string()
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(r);
            let items: Vec<String> = (0..l.len()).map(|i| cell(&l, i).unwrap_or_else(|| "NULL".into())).collect();
            format!("[{}]", items.join(", "))
        }
        other => panic!("no canonical text for {other}"),
    })
}

/// A row too large for one Storage Write request (table `big`, column `huge` over 10 MiB in
/// the row with id 1, and a second row) is refused naming its column, key and the fix, and
/// the fix (`exclude_columns`) loads both rows.
pub async fn assert_oversized_row_refused_then_excluded(cfg: &SourceConfig) {
    let limits = BatchLimits { rows: 2, bytes: 1 << 20 };
    let mut t = TableConfig::simple(None, "big");
    match read(cfg, &t, None, limits).await.err().expect("a 10 MiB row is refused") {
        SourceError::Value { column, key, detail, .. } => {
            assert_eq!((column.as_str(), key.as_str()), ("huge", "(id=1)"));
            assert!(detail.contains("exclude_columns = [\"huge\"]"), "{detail}");
        }
        other => panic!("{other}"),
    }
    t.exclude_columns = vec!["huge".into()];
    assert_eq!(read(cfg, &t, None, limits).await.expect("the fix loads it").rows(), 2);
}
