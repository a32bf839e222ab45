//! Arrow IPC encoding for `AppendRowsRequest.arrow_rows`: the schema once per connection,
//! then each batch as one IPC record-batch message, split so that every request stays
//! under the Storage Write API's 10 MB limit.

use arrow_array::RecordBatch;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions, write_message};
use arrow_schema::Schema;

/// The API refuses requests of 10,485,760 bytes or more; leave room for the envelope
/// (stream name, offset, writer schema on the first request).
pub const MAX_ROWS_BYTES: usize = 9 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("Arrow IPC encoding failed")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error(
        "row {row} of this batch encodes to {bytes} bytes, more than the {max} bytes one Storage \
         Write request may carry; exclude or shorten the large column"
    )]
    RowTooLarge { row: usize, bytes: usize, max: usize },
}

/// The IPC-serialized schema message (`ArrowSchema.serialized_schema`).
pub fn schema_bytes(schema: &Schema) -> Vec<u8> {
    let options = IpcWriteOptions::default();
    let data = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        &options,
    );
    let mut out = Vec::new();
    write_message(&mut out, data, &options).expect("writing to a Vec cannot fail");
    out
}

/// One IPC record-batch message (`ArrowRecordBatch.serialized_record_batch`).
pub fn batch_bytes(batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
    let options = IpcWriteOptions::default();
    let (_dicts, data) = IpcDataGenerator::default().encode(
        batch,
        &mut DictionaryTracker::new(false),
        &options,
        &mut IpcWriteContext::default(),
    )?;
    let mut out = Vec::with_capacity(data.ipc_message.len() + data.arrow_data.len() + 16);
    write_message(&mut out, data, &options)?;
    Ok(out)
}

/// Encodes `batch` as one or more messages of at most `max` bytes each, halving slices
/// that come out too large. Each item is (rows in it, bytes).
pub fn split_encode(batch: &RecordBatch, max: usize) -> Result<Vec<(usize, Vec<u8>)>, EncodeError> {
    let mut out = Vec::new();
    let mut todo = vec![(0usize, batch.num_rows())];
    while let Some((offset, len)) = todo.pop() {
        let bytes = batch_bytes(&batch.slice(offset, len))?;
        if bytes.len() <= max {
            out.push((offset, len, bytes));
        } else if len == 1 {
            return Err(EncodeError::RowTooLarge { row: offset, bytes: bytes.len(), max });
        } else {
            // Push the second half first so the first half is encoded (and sent) first.
            let half = len / 2;
            todo.push((offset + half, len - half));
            todo.push((offset, half));
        }
    }
    out.sort_by_key(|(offset, _, _)| *offset);
    Ok(out.into_iter().map(|(_, len, b)| (len, b)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use std::sync::Arc;

    fn batch(rows: usize, text_len: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            arrow_schema::Field::new("id", arrow_schema::DataType::Int64, true),
            arrow_schema::Field::new("t", arrow_schema::DataType::Utf8, true),
        ]));
        let ids = Int64Array::from_iter_values(0..rows as i64);
        let text: StringArray = (0..rows).map(|_| Some("x".repeat(text_len))).collect();
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(text)]).unwrap()
    }

    #[test]
    fn large_batches_split_in_order_under_the_limit() {
        let b = batch(1000, 1000);
        let parts = split_encode(&b, 100_000).unwrap();
        assert!(parts.len() > 10);
        assert!(parts.iter().all(|(_, bytes)| bytes.len() <= 100_000));
        assert_eq!(parts.iter().map(|(n, _)| n).sum::<usize>(), 1000);
        // Decode every part back and check the ids run 0..1000 in order.
        let schema = schema_bytes(&b.schema());
        let mut next = 0i64;
        for (_, bytes) in parts {
            let mut stream = schema.clone();
            stream.extend(bytes);
            let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None).unwrap();
            for rb in reader {
                let rb = rb.unwrap();
                let ids = rb.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                for v in ids.values() {
                    assert_eq!(*v, next);
                    next += 1;
                }
            }
        }
        assert_eq!(next, 1000);
    }

    #[test]
    fn a_single_oversized_row_is_a_clear_error() {
        let b = batch(3, 50_000);
        match split_encode(&b, 20_000) {
            Err(EncodeError::RowTooLarge { row: 0, .. }) => {}
            other => panic!("{:?}", other.map(|v| v.len())),
        }
    }
}
