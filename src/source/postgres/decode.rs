//! Decodes one field of PostgreSQL's binary COPY format into its Arrow builder, exactly,
//! or says why the value has no BigQuery counterpart.

use super::numeric::PgNumeric;
use crate::bq_model::limits;
use crate::source::batch::ColumnBuilder;

/// How a column's bytes are read. The BigQuery type is fixed by the mapping alongside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// numeric → NUMERIC (scale 9).
    Numeric,
    /// numeric → BIGNUMERIC (scale 38).
    BigNumeric,
    /// numeric → STRING, its exact decimal text.
    NumericText,
    /// text, varchar, char, name, json, and anything cast to text.
    Text,
    /// jsonb: a version byte, then the JSON text.
    Jsonb,
    Bool,
    Date,
    /// time: µs since midnight.
    Time,
    /// timestamp and timestamptz: both are µs since 2000-01-01 on the wire.
    Timestamp,
    Bytea,
    Uuid,
}

/// PostgreSQL counts from 2000-01-01, Arrow from 1970-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400_000_000;

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into().map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| format!("text is not valid UTF-8: {e}"))
}

impl PgKind {
    /// Appends one non-NULL value.
    #[inline]
    pub fn decode(self, raw: &[u8], out: &mut ColumnBuilder) -> Result<(), String> {
        match self {
            PgKind::Int2 => out.push_i64(i16::from_be_bytes(fixed(raw)?) as i64),
            PgKind::Int4 => out.push_i64(i32::from_be_bytes(fixed(raw)?) as i64),
            PgKind::Int8 => out.push_i64(i64::from_be_bytes(fixed(raw)?)),
            PgKind::Float4 => out.push_f64(f32::from_be_bytes(fixed(raw)?) as f64),
            PgKind::Float8 => out.push_f64(f64::from_be_bytes(fixed(raw)?)),
            PgKind::Numeric => out.push_i128(PgNumeric::parse(raw)?.to_i128(9)?),
            PgKind::BigNumeric => {
                out.push_i256(PgNumeric::parse(raw)?.to_i256(38).map_err(|e| {
                    format!("{e}; read this column as text instead with `cast = {{ COLUMN = \"text\" }}`")
                })?)
            }
            PgKind::NumericText => out.push_str(&PgNumeric::parse(raw)?.to_text()),
            PgKind::Text => out.push_str(utf8(raw)?),
            PgKind::Jsonb => match raw.split_first() {
                Some((1, json)) => out.push_str(utf8(json)?),
                _ => return Err("unknown jsonb wire version".into()),
            },
            PgKind::Bool => out.push_bool(fixed::<1>(raw)?[0] != 0),
            PgKind::Date => out.push_date(date_days(i32::from_be_bytes(fixed(raw)?))?),
            PgKind::Time => {
                let us = i64::from_be_bytes(fixed(raw)?);
                if !(0..86_400_000_000).contains(&us) {
                    return Err("time 24:00:00 has no BigQuery TIME value (the largest is 23:59:59.999999)".into());
                }
                out.push_time(us);
            }
            PgKind::Timestamp => out.push_micros(micros(i64::from_be_bytes(fixed(raw)?))?),
            PgKind::Bytea => out.push_bytes(raw),
            PgKind::Uuid => {
                let mut buf = [0u8; 36];
                let id = uuid::Uuid::from_bytes(fixed(raw)?);
                out.push_str(id.hyphenated().encode_lower(&mut buf));
            }
        }
        Ok(())
    }

    /// Appends one non-NULL one-dimensional array of this element kind as a list.
    pub fn decode_array(self, raw: &[u8], out: &mut ColumnBuilder) -> Result<(), String> {
        let int = |at: usize| -> Result<i32, String> {
            raw.get(at..at + 4)
                .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| "truncated array".to_string())
        };
        let ndim = int(0)?;
        if ndim == 0 {
            out.end_list(0);
            return Ok(());
        }
        if ndim != 1 {
            return Err(format!(
                "a {ndim}-dimensional array has no BigQuery type (arrays of arrays are not allowed); \
                 read the column as text with `cast = {{ COLUMN = \"text\" }}`"
            ));
        }
        let len = int(12)?.max(0) as usize;
        let mut pos = 20;
        for i in 0..len {
            let elen = int(pos)?;
            pos += 4;
            if elen < 0 {
                return Err(format!(
                    "array element {} is NULL, and BigQuery arrays cannot hold NULLs; read the column as \
                     text with `cast = {{ COLUMN = \"text\" }}`",
                    i + 1
                ));
            }
            let end = pos + elen as usize;
            let elem = raw.get(pos..end).ok_or("truncated array element")?;
            self.decode(elem, out.child())?;
            pos = end;
        }
        out.end_list(len);
        Ok(())
    }

    /// A readable rendering of a key value for error messages.
    pub fn render(self, raw: &[u8]) -> String {
        let text = match self {
            PgKind::Int2 => fixed(raw).map(|b| i16::from_be_bytes(b).to_string()),
            PgKind::Int4 => fixed(raw).map(|b| i32::from_be_bytes(b).to_string()),
            PgKind::Int8 => fixed(raw).map(|b| i64::from_be_bytes(b).to_string()),
            PgKind::Text => utf8(raw).map(|s| format!("{s:?}")),
            PgKind::Uuid => fixed(raw).map(|b| uuid::Uuid::from_bytes(b).to_string()),
            PgKind::Numeric | PgKind::BigNumeric | PgKind::NumericText => PgNumeric::parse(raw).map(|n| n.to_text()),
            PgKind::Date => fixed(raw).map(|b| format!("date {}", i32::from_be_bytes(b))),
            PgKind::Timestamp => fixed(raw).map(|b| format!("µs {}", i64::from_be_bytes(b))),
            _ => Err(String::new()),
        };
        text.unwrap_or_else(|_| format!("0x{}", raw.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }
}

/// Days since 2000-01-01 to days since 1970-01-01, within BigQuery's DATE range.
fn date_days(pg: i32) -> Result<i32, String> {
    match pg {
        i32::MAX => return Err("date 'infinity' has no BigQuery value".into()),
        i32::MIN => return Err("date '-infinity' has no BigQuery value".into()),
        _ => {}
    }
    let days = pg as i64 + PG_EPOCH_DAYS;
    if !(limits::MIN_DATE_DAYS..=limits::MAX_DATE_DAYS).contains(&days) {
        return Err(format!("date {} is outside BigQuery's range 0001-01-01 to 9999-12-31", fmt_days(days)));
    }
    Ok(days as i32)
}

/// µs since 2000-01-01 to µs since 1970-01-01, within BigQuery's range.
fn micros(pg: i64) -> Result<i64, String> {
    match pg {
        i64::MAX => return Err("timestamp 'infinity' has no BigQuery value".into()),
        i64::MIN => return Err("timestamp '-infinity' has no BigQuery value".into()),
        _ => {}
    }
    let us = pg
        .checked_add(PG_EPOCH_MICROS)
        .filter(|us| (limits::MIN_MICROS..=limits::MAX_MICROS).contains(us))
        .ok_or_else(|| {
            format!(
                "timestamp on {} is outside BigQuery's range 0001-01-01 to 9999-12-31",
                fmt_days(pg.div_euclid(86_400_000_000) + PG_EPOCH_DAYS)
            )
        })?;
    Ok(us)
}

fn fmt_days(days: i64) -> String {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(days)))
        .map(|d| d.to_string())
        .unwrap_or_else(|| format!("{days} days from 1970-01-01"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bq_model::BqType;
    use arrow_array::{Array, Date32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray};

    /// An int8[] in PostgreSQL's binary array form.
    fn int8_array(values: &[Option<i64>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(1i32.to_be_bytes());
        out.extend((values.iter().any(|v| v.is_none()) as i32).to_be_bytes());
        out.extend(20i32.to_be_bytes());
        out.extend((values.len() as i32).to_be_bytes());
        out.extend(1i32.to_be_bytes());
        for v in values {
            match v {
                Some(v) => {
                    out.extend(8i32.to_be_bytes());
                    out.extend(v.to_be_bytes());
                }
                None => out.extend((-1i32).to_be_bytes()),
            }
        }
        out
    }

    #[test]
    fn arrays_become_lists_and_null_elements_are_refused() {
        let mut b = ColumnBuilder::list(BqType::Int64, 4, 0);
        PgKind::Int8.decode_array(&int8_array(&[Some(1), Some(-2)]), &mut b).unwrap();
        b.append_null();
        PgKind::Int8.decode_array(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20], &mut b).unwrap();
        PgKind::Int8.decode_array(&int8_array(&[Some(7)]), &mut b).unwrap();
        let a = b.finish();
        let l = a.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(l.len(), 4);
        let v = |i: usize| l.value(i).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec();
        assert_eq!((v(0), v(1), v(2), v(3)), (vec![1, -2], vec![], vec![], vec![7]));
        let mut b = ColumnBuilder::list(BqType::Int64, 4, 0);
        let e = PgKind::Int8.decode_array(&int8_array(&[Some(1), None]), &mut b).unwrap_err();
        assert!(e.contains("element 2 is NULL"), "{e}");
    }

    #[test]
    fn dates_and_timestamps_shift_to_the_unix_epoch() {
        let mut b = ColumnBuilder::new(BqType::Date);
        PgKind::Date.decode(&0i32.to_be_bytes(), &mut b).unwrap();
        let a = b.finish();
        assert_eq!(a.as_any().downcast_ref::<Date32Array>().unwrap().value(0), 10_957);

        let mut b = ColumnBuilder::new(BqType::Timestamp);
        PgKind::Timestamp.decode(&(-PG_EPOCH_MICROS - 1).to_be_bytes(), &mut b).unwrap();
        let a = b.finish();
        let ts = a.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(ts.value(0), -1);
    }

    #[test]
    fn infinity_and_out_of_range_are_refused() {
        let mut b = ColumnBuilder::new(BqType::Datetime);
        let e = PgKind::Timestamp.decode(&i64::MAX.to_be_bytes(), &mut b).unwrap_err();
        assert!(e.contains("infinity"), "{e}");
        let year_10000 = (limits::MAX_MICROS - PG_EPOCH_MICROS + 1).to_be_bytes();
        let e = PgKind::Timestamp.decode(&year_10000, &mut b).unwrap_err();
        assert!(e.contains("10000-01-01"), "{e}");
        let mut d = ColumnBuilder::new(BqType::Date);
        let e = PgKind::Date.decode(&i32::MIN.to_be_bytes(), &mut d).unwrap_err();
        assert!(e.contains("-infinity"), "{e}");
    }

    #[test]
    fn uuid_and_jsonb_become_text() {
        let mut b = ColumnBuilder::new(BqType::String);
        let id = uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        PgKind::Uuid.decode(id.as_bytes(), &mut b).unwrap();
        PgKind::Jsonb.decode(b"\x01{\"a\": 1}", &mut b).unwrap();
        assert!(PgKind::Jsonb.decode(b"\x02{}", &mut b).is_err());
        let a = b.finish();
        let s = a.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.value(0), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        assert_eq!(s.value(1), "{\"a\": 1}");
    }
}
