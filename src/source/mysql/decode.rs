//! Decodes one value of MySQL's text protocol into its Arrow builder, exactly, or says why
//! the value has no BigQuery counterpart. Zero dates are reported separately so the reader
//! can apply `zero_dates` and count them.

use super::mapping::MyKind;
use crate::bq_model::{BIGNUMERIC_SCALE, NUMERIC_SCALE, limits};
use crate::source::batch::ColumnBuilder;
use crate::source::decimal_text;

#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// `0000-00-00` or a date with a zero month or day: no BigQuery value.
    ZeroDate,
    Other(String),
}

impl From<String> for Bad {
    fn from(s: String) -> Self {
        Bad::Other(s)
    }
}

fn text(raw: &[u8]) -> Result<&str, Bad> {
    std::str::from_utf8(raw).map_err(|e| Bad::Other(format!("text is not valid UTF-8: {e}")))
}

/// A signed integer's text, without going through `str`.
fn int(b: &[u8]) -> Result<i64, Bad> {
    let (neg, d) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return Err(not_a(b, "an integer"));
    }
    // Accumulate negatively so that i64::MIN fits.
    let mut v: i64 = 0;
    for c in d {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_sub((c - b'0') as i64))
            .ok_or_else(|| not_a(b, "a 64-bit integer"))?;
    }
    if neg { Ok(v) } else { v.checked_neg().ok_or_else(|| not_a(b, "a 64-bit integer")) }
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, Bad> {
    s.parse().map_err(|_| Bad::Other(format!("{s:?} is not {what}")))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The unsigned decimal number in `b`, which must be all ASCII digits.
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    b.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64))
}

fn not_a(b: &[u8], what: &str) -> Bad {
    Bad::Other(format!("{:?} is not {what}", String::from_utf8_lossy(b)))
}

/// Days since 1970-01-01 of `YYYY-MM-DD`; a zero month or day is a zero date.
fn days(b: &[u8]) -> Result<i64, Bad> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(not_a(b, "a date"));
    }
    let (y, m, d) = match (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(not_a(b, "a date")),
    };
    if m == 0 || d == 0 {
        return Err(Bad::ZeroDate);
    }
    if m > 12 || d > days_in_month(y, m) || y == 0 {
        return Err(not_a(b, "a calendar date"));
    }
    Ok(days_from_civil(y, m, d))
}

/// µs of `HH:MM:SS[.ffffff]` (TIME can also be negative or past 24h: refused).
fn time_micros(b: &[u8]) -> Result<i64, Bad> {
    let s = || String::from_utf8_lossy(b).into_owned();
    if b.first() == Some(&b'-') {
        return Err(Bad::Other(format!(
            "TIME {} is negative: BigQuery TIME is a time of day; read it as text with `cast = {{ COLUMN = \"text\" }}`",
            s()
        )));
    }
    let (hms, frac) = match b.iter().position(|c| *c == b'.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    let mut parts = hms.split(|c| *c == b':');
    let (h, m, sec) = match (
        parts.next().and_then(digits),
        parts.next().and_then(digits),
        parts.next().and_then(digits),
        parts.next(),
    ) {
        (Some(h), Some(m), Some(sec), None) if m < 60 && sec < 60 => (h, m, sec),
        _ => return Err(not_a(b, "a time")),
    };
    if h >= 24 {
        return Err(Bad::Other(format!(
            "TIME {} is 24 hours or more: BigQuery TIME is a time of day; read it as text with `cast = {{ COLUMN = \"text\" }}`",
            s()
        )));
    }
    if frac.len() > 6 || !frac.iter().all(u8::is_ascii_digit) {
        return Err(not_a(b, "a time"));
    }
    let mut us = 0;
    for (i, c) in frac.iter().enumerate() {
        us += (c - b'0') as i64 * 10i64.pow(5 - i as u32);
    }
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000 + us)
}

/// µs since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn datetime_micros(b: &[u8]) -> Result<i64, Bad> {
    if b.len() < 19 || b[10] != b' ' {
        return Err(not_a(b, "a date and time"));
    }
    let days = days(&b[..10])?;
    if !(limits::MIN_DATE_DAYS..=limits::MAX_DATE_DAYS).contains(&days) {
        return Err(Bad::Other(format!("{} is outside BigQuery's range", String::from_utf8_lossy(b))));
    }
    Ok(days * 86_400_000_000 + time_micros(&b[11..])?)
}

impl MyKind {
    #[inline]
    pub fn decode(self, raw: &[u8], out: &mut ColumnBuilder) -> Result<(), Bad> {
        match self {
            MyKind::Int => out.push_i64(int(raw)?),
            MyKind::UnsignedBig => out.push_i128(decimal_text::to_i128(text(raw)?, NUMERIC_SCALE as u32)?),
            MyKind::Bool => match raw {
                b"0" => out.push_bool(false),
                b"1" => out.push_bool(true),
                other => {
                    return Err(Bad::Other(format!(
                        "tinyint(1) holds {}, which is not a boolean; read it as text with `cast = {{ COLUMN = \"text\" }}`",
                        String::from_utf8_lossy(other)
                    )));
                }
            },
            MyKind::Float32 => out.push_f64(num::<f32>(text(raw)?, "a number")? as f64),
            MyKind::Float64 => out.push_f64(num(text(raw)?, "a number")?),
            MyKind::Numeric => out.push_i128(decimal_text::to_i128(text(raw)?, NUMERIC_SCALE as u32)?),
            MyKind::BigNumeric => out.push_i256(decimal_text::to_i256(text(raw)?, BIGNUMERIC_SCALE as u32)?),
            MyKind::Text => out.push_str(text(raw)?),
            MyKind::Bytes => out.push_bytes(raw),
            MyKind::Bit => {
                // Planned only for BIT(n ≤ 63); a wider value must never wrap negative.
                let significant = raw.iter().skip_while(|b| **b == 0).count();
                if significant > 8 || (significant == 8 && raw[raw.len() - 8] & 0x80 != 0) {
                    return Err(Bad::Other(
                        "this BIT value is above INT64's maximum; read the column as CAST(col AS UNSIGNED) \
                         (it loads as NUMERIC)"
                            .into(),
                    ));
                }
                out.push_i64(raw.iter().fold(0i64, |acc, b| (acc << 8) | *b as i64))
            }
            MyKind::Date => {
                let d = days(raw)?;
                if !(limits::MIN_DATE_DAYS..=limits::MAX_DATE_DAYS).contains(&d) {
                    return Err(Bad::Other(format!(
                        "{} is outside BigQuery's range 0001-01-01 to 9999-12-31",
                        String::from_utf8_lossy(raw)
                    )));
                }
                out.push_date(d as i32)
            }
            MyKind::Datetime | MyKind::Timestamp => out.push_micros(datetime_micros(raw)?),
            MyKind::Time => out.push_time(time_micros(raw)?),
        }
        Ok(())
    }

    /// A readable rendering of a key value for error messages.
    pub fn render(self, raw: &[u8]) -> String {
        match self {
            MyKind::Bytes | MyKind::Bit => format!("0x{}", raw.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            MyKind::Text => format!("{:?}", String::from_utf8_lossy(raw)),
            _ => String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

/// The watermark's integer form of a cursor value read as text.
pub fn cursor_int(kind: MyKind, s: &str) -> Result<i64, String> {
    let r = match kind {
        MyKind::Int => int(s.as_bytes()),
        MyKind::Date => days(s.as_bytes()),
        MyKind::Datetime | MyKind::Timestamp => datetime_micros(s.as_bytes()),
        _ => Err(Bad::Other("not a cursor type".into())),
    };
    r.map_err(|e| match e {
        Bad::ZeroDate => format!("cursor value {s} is a zero date"),
        Bad::Other(m) => m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bq_model::BqType;

    #[test]
    fn dates_times_and_zero_dates() {
        assert_eq!(days(b"1970-01-02"), Ok(1));
        assert_eq!(days(b"0000-00-00"), Err(Bad::ZeroDate));
        assert_eq!(days(b"2020-05-00"), Err(Bad::ZeroDate));
        assert!(days(b"2021-02-29").is_err());
        assert_eq!(days(b"2000-02-29"), Ok(11_016));
        assert_eq!(datetime_micros(b"1969-12-31 23:59:59.999999"), Ok(-1));
        assert_eq!(datetime_micros(b"1970-01-01 00:00:01.5"), Ok(1_500_000));
        assert_eq!(time_micros(b"23:59:59.999999"), Ok(86_399_999_999));
        assert!(matches!(time_micros(b"838:59:59"), Err(Bad::Other(m)) if m.contains("24 hours")));
        assert!(matches!(time_micros(b"-01:00:00"), Err(Bad::Other(m)) if m.contains("negative")));
        assert_eq!(int(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(int(b"9223372036854775807"), Ok(i64::MAX));
        assert!(int(b"9223372036854775808").is_err());
        // The civil-date arithmetic agrees with chrono over the whole range.
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for (y, m, d) in [(1, 1, 1), (1600, 2, 29), (1969, 12, 31), (2024, 3, 1), (9999, 12, 31)] {
            let want = (chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap() - epoch).num_days();
            assert_eq!(days_from_civil(y as i64, m as i64, d as i64), want);
        }
        let mut b = ColumnBuilder::new(BqType::Datetime);
        assert_eq!(MyKind::Datetime.decode(b"0000-00-00 00:00:00", &mut b), Err(Bad::ZeroDate));
    }

    #[test]
    fn booleans_and_bits() {
        let mut b = ColumnBuilder::new(BqType::Bool);
        assert!(MyKind::Bool.decode(b"1", &mut b).is_ok());
        assert!(matches!(MyKind::Bool.decode(b"5", &mut b), Err(Bad::Other(m)) if m.contains("not a boolean")));
        let mut i = ColumnBuilder::new(BqType::Int64);
        MyKind::Bit.decode(&[0x01, 0x02], &mut i).unwrap();
        let a = i.finish();
        assert_eq!(a.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap().value(0), 258);
    }
}
