//! Column builders that turn decoded values into Arrow arrays, and the assembler that cuts
//! the stream into bounded RecordBatches (by rows and by bytes) so memory stays flat
//! however large the table is.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::i256;
use arrow_schema::SchemaRef;

use crate::bq_model::{BIGNUMERIC_SCALE, BqField, BqType, NUMERIC_SCALE};

/// One Arrow builder per destination column, typed by its [`BqType`].
pub enum ColumnBuilder {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Numeric(Decimal128Builder),
    BigNumeric(Decimal256Builder),
    Date(Date32Builder),
    Datetime(TimestampMicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
    /// A REPEATED column: the element values, and where each row's list ends. BigQuery has
    /// no NULL arrays, so a NULL list is written as an empty one.
    List {
        child: Box<ColumnBuilder>,
        offsets: Vec<i32>,
        item: arrow_schema::FieldRef,
    },
}

impl ColumnBuilder {
    pub fn new(ty: BqType) -> Self {
        Self::with_capacity(ty, 1024, 16 * 1024)
    }

    /// A builder sized for `rows` values and, for text and bytes, `data` bytes of them.
    pub fn with_capacity(ty: BqType, rows: usize, data: usize) -> Self {
        match ty {
            BqType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            BqType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            BqType::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
            BqType::String | BqType::Json => Self::Utf8(StringBuilder::with_capacity(rows, data)),
            BqType::Bytes => Self::Binary(BinaryBuilder::with_capacity(rows, data)),
            BqType::Numeric => Self::Numeric(
                Decimal128Builder::with_capacity(rows).with_precision_and_scale(38, NUMERIC_SCALE).expect("valid"),
            ),
            BqType::BigNumeric => Self::BigNumeric(
                Decimal256Builder::with_capacity(rows).with_precision_and_scale(76, BIGNUMERIC_SCALE).expect("valid"),
            ),
            BqType::Date => Self::Date(Date32Builder::with_capacity(rows)),
            BqType::Datetime => Self::Datetime(TimestampMicrosecondBuilder::with_capacity(rows)),
            BqType::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")),
            BqType::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(rows)),
        }
    }

    pub fn append_null(&mut self) {
        match self {
            Self::Int64(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Numeric(b) => b.append_null(),
            Self::BigNumeric(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Datetime(b) | Self::Timestamp(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::List { offsets, .. } => offsets.push(*offsets.last().expect("starts with 0")),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Numeric(b) => Arc::new(b.finish()),
            Self::BigNumeric(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Datetime(b) | Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::List { child, offsets, item } => {
                let values = child.finish();
                let offsets = std::mem::replace(offsets, vec![0]);
                Arc::new(arrow_array::ListArray::new(
                    item.clone(),
                    arrow_buffer::OffsetBuffer::new(offsets.into()),
                    values,
                    None,
                ))
            }
        }
    }

    /// A builder for a REPEATED column of `ty`.
    pub fn list(ty: BqType, rows: usize, data: usize) -> Self {
        Self::List {
            child: Box::new(Self::with_capacity(ty, rows * 4, data)),
            offsets: {
                let mut v = Vec::with_capacity(rows + 1);
                v.push(0);
                v
            },
            item: Arc::new(arrow_schema::Field::new("item", ty.arrow(), true)),
        }
    }

    /// The element builder of a REPEATED column.
    pub fn child(&mut self) -> &mut ColumnBuilder {
        match self {
            Self::List { child, .. } => child,
            _ => unreachable!("child() on a scalar builder"),
        }
    }

    /// Ends the current row's list after `n` elements were pushed to the child.
    pub fn end_list(&mut self, n: usize) {
        match self {
            Self::List { offsets, .. } => {
                let last = *offsets.last().expect("starts with 0");
                offsets.push(last + n as i32);
            }
            _ => unreachable!("end_list() on a scalar builder"),
        }
    }
}

/// Typed appends. A decoder always matches its builder (both come from the same column
/// mapping), so a mismatch is a bug in this crate, not bad data.
macro_rules! push {
    ($name:ident, $variant:ident, $t:ty) => {
        #[inline]
        pub fn $name(&mut self, v: $t) {
            match self {
                Self::$variant(b) => b.append_value(v),
                _ => unreachable!(concat!(stringify!($name), " on a builder of another type")),
            }
        }
    };
}

impl ColumnBuilder {
    push!(push_i64, Int64, i64);
    push!(push_f64, Float64, f64);
    push!(push_bool, Bool, bool);
    push!(push_str, Utf8, &str);
    push!(push_bytes, Binary, &[u8]);
    push!(push_i128, Numeric, i128);
    push!(push_i256, BigNumeric, i256);
    push!(push_date, Date, i32);
    push!(push_time, Time, i64);

    /// Microseconds since the epoch, for DATETIME and TIMESTAMP columns alike.
    #[inline]
    pub fn push_micros(&mut self, v: i64) {
        match self {
            Self::Datetime(b) | Self::Timestamp(b) => b.append_value(v),
            _ => unreachable!("push_micros on a builder of another type"),
        }
    }
}

/// Collects rows into builders and hands out a RecordBatch when it is full.
pub struct BatchAssembler {
    schema: SchemaRef,
    types: Vec<(BqType, bool)>,
    pub columns: Vec<ColumnBuilder>,
    rows: usize,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl BatchAssembler {
    pub fn new(fields: &[BqField], max_rows: usize, max_bytes: usize) -> Self {
        Self {
            schema: crate::bq_model::arrow_schema(fields),
            types: fields.iter().map(|f| (f.ty, f.repeated)).collect(),
            columns: fields
                .iter()
                .map(|f| if f.repeated { ColumnBuilder::list(f.ty, 1024, 16 * 1024) } else { ColumnBuilder::new(f.ty) })
                .collect(),
            rows: 0,
            bytes: 0,
            max_rows,
            max_bytes,
        }
    }

    /// Records that one whole row of about `bytes` bytes was appended to every column.
    #[inline]
    pub fn row_done(&mut self, bytes: usize) {
        self.rows += 1;
        self.bytes += bytes;
    }

    pub fn is_full(&self) -> bool {
        self.rows >= self.max_rows || self.bytes >= self.max_bytes
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows so far as a batch; the assembler starts over empty.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish()).collect();
        // Size the next batch's builders like this one (plus an eighth): one allocation per
        // buffer instead of doubling from empty, which reallocates and leaves up to half of
        // every buffer unused while the batch waits in the pipeline.
        let rows = self.rows + self.rows / 8;
        for ((col, (ty, repeated)), array) in self.columns.iter_mut().zip(&self.types).zip(&arrays) {
            if *repeated {
                *col = ColumnBuilder::list(*ty, rows, 16 * 1024);
                continue;
            }
            let data = array.to_data().buffers().get(1).map_or(0, |b| b.len());
            *col = ColumnBuilder::with_capacity(*ty, rows, data + data / 8);
        }
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).expect("builders follow the schema they were made from")
    }
}
