//! Decodes one value of MySQL's text protocol into its Arrow builder, exactly, or says why
//! the value has no BigQuery counterpart. Zero dates are reported separately so the reader
//! can apply `zero_dates` and count them.

use super::mapping::MyKind;
use crate::source::batch::ColumnBuilder;
use crate::source::decimal_text;
use crate::types::{limits, BIGNUMERIC_SCALE, NUMERIC_SCALE};

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

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, Bad> {
    s.parse().map_err(|_| Bad::Other(format!("{s:?} is not {what}")))
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn days(s: &str) -> Result<i64, Bad> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(Bad::Other(format!("{s:?} is not a date")));
    }
    let (y, m, d): (i32, u32, u32) = (num(&s[0..4], "a year")?, num(&s[5..7], "a month")?, num(&s[8..10], "a day")?);
    if m == 0 || d == 0 {
        return Err(Bad::ZeroDate);
    }
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| Bad::Other(format!("{s:?} is not a calendar date")))?;
    let n = (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days();
    if !(limits::MIN_DATE_DAYS..=limits::MAX_DATE_DAYS).contains(&n) {
        return Err(Bad::Other(format!("{s} is outside BigQuery's range 0001-01-01 to 9999-12-31")));
    }
    Ok(n)
}

/// µs of `HH:MM:SS[.ffffff]` (for TIME, also negative or past 24h, which are refused).
fn time_micros(s: &str) -> Result<i64, Bad> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    let [h, m, sec] = parts.as_slice() else { return Err(Bad::Other(format!("{s:?} is not a time"))) };
    if h.starts_with('-') {
        return Err(Bad::Other(format!("TIME {s} is negative: BigQuery TIME is a time of day; read it as text with `cast = {{ COLUMN = \"text\" }}`")));
    }
    let (h, m, sec): (i64, i64, i64) = (num(h, "an hour")?, num(m, "a minute")?, num(sec, "a second")?);
    if h >= 24 {
        return Err(Bad::Other(format!("TIME {s} is 24 hours or more: BigQuery TIME is a time of day; read it as text with `cast = {{ COLUMN = \"text\" }}`")));
    }
    let mut us: i64 = 0;
    for (i, b) in frac.bytes().take(6).enumerate() {
        us += (b - b'0') as i64 * 10i64.pow(5 - i as u32);
    }
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000 + us)
}

/// µs since the epoch of `YYYY-MM-DD HH:MM:SS[.ffffff]`.
fn datetime_micros(s: &str) -> Result<i64, Bad> {
    let (d, t) = s.split_once(' ').ok_or_else(|| Bad::Other(format!("{s:?} is not a date and time")))?;
    Ok(days(d)? * 86_400_000_000 + time_micros(t)?)
}

impl MyKind {
    #[inline]
    pub fn decode(self, raw: &[u8], out: &mut ColumnBuilder) -> Result<(), Bad> {
        match self {
            MyKind::Int => out.push_i64(num(text(raw)?, "an integer")?),
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
            MyKind::Bit => out.push_i64(raw.iter().fold(0i64, |acc, b| (acc << 8) | *b as i64)),
            MyKind::Date => out.push_date(days(text(raw)?)? as i32),
            MyKind::Datetime | MyKind::Timestamp => {
                let s = text(raw)?;
                if s.starts_with("0000-00-00") {
                    return Err(Bad::ZeroDate);
                }
                out.push_micros(datetime_micros(s)?)
            }
            MyKind::Time => out.push_time(time_micros(text(raw)?)?),
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
        MyKind::Int => num(s, "an integer"),
        MyKind::Date => days(s),
        MyKind::Datetime | MyKind::Timestamp => datetime_micros(s),
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
    use crate::types::BqType;

    #[test]
    fn dates_times_and_zero_dates() {
        assert_eq!(days("1970-01-02"), Ok(1));
        assert_eq!(days("0000-00-00"), Err(Bad::ZeroDate));
        assert_eq!(days("2020-05-00"), Err(Bad::ZeroDate));
        assert_eq!(datetime_micros("1969-12-31 23:59:59.999999"), Ok(-1));
        assert_eq!(datetime_micros("1970-01-01 00:00:01.5"), Ok(1_500_000));
        assert_eq!(time_micros("23:59:59.999999"), Ok(86_399_999_999));
        assert!(matches!(time_micros("838:59:59"), Err(Bad::Other(m)) if m.contains("24 hours")));
        assert!(matches!(time_micros("-01:00:00"), Err(Bad::Other(m)) if m.contains("negative")));
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
