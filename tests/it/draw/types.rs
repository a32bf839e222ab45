//! The column types the generative test draws, per engine: the DDL, a generator of SQL
//! literals (edge values first), the SQL that reads a value back as canonical text, and
//! how the BigQuery value is compared. Nothing here uses aurora2bq's own code.

use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eng {
    Pg,
    My,
}

/// How a source text and a BigQuery REST value are brought to one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Exact,
    /// Bit for bit (NaN as NaN, -0 apart from 0).
    Float,
    /// Decimal text without trailing fractional zeros.
    Decimal,
    /// Source as lower-case hex, BigQuery as base64.
    Bytes,
    /// `YYYY-MM-DDTHH:MM:SS.ffffff`.
    Datetime,
    /// `HH:MM:SS.ffffff`.
    Time,
    /// By meaning.
    Json,
}

pub struct ColType {
    pub ddl: &'static str,
    pub make: fn(&mut Rng) -> String,
    /// SQL reading column `{}` back as text.
    pub canon: &'static str,
    pub cmp: Cmp,
}

fn pick(r: &mut Rng, edges: &[&str], random: impl FnOnce(&mut Rng) -> String) -> String {
    if r.chance(0.4) { edges[r.below(edges.len())].to_string() } else { random(r) }
}

fn int64(r: &mut Rng) -> String {
    pick(r, &["0", "-1", "9223372036854775807", "-9223372036854775808"], |r| (r.next() as i64 / 3).to_string())
}
fn int32(r: &mut Rng) -> String {
    pick(r, &["0", "2147483647", "-2147483648"], |r| (r.next() as i32).to_string())
}
fn double(r: &mut Rng) -> String {
    pick(r, &["0.1", "-0.0", "1.7976931348623157e308", "5e-324", "-2.5e-300"], |r| {
        format!("{:e}", f64::from_bits(r.next() & 0x7fef_ffff_ffff_ffff) * if r.chance(0.5) { 1.0 } else { -1.0 })
    })
}
fn pg_double(r: &mut Rng) -> String {
    if r.chance(0.1) { ["'NaN'", "'Infinity'", "'-Infinity'"][r.below(3)].into() } else { double(r) }
}
fn float(r: &mut Rng) -> String {
    pick(r, &["0.1", "16777217", "3.4e38", "-1.17549435e-38", "123456.789"], |r| {
        format!("{:e}", f32::from_bits((r.next() as u32) & 0x7f7f_ffff) as f64)
    })
}
fn numeric_38_9(r: &mut Rng) -> String {
    pick(r, &["0", "99999999999999999999999999999.999999999", "-0.000000001"], |r| {
        let int: String = (0..r.below(29) + 1).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
        let frac: String = (0..9).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
        format!("{}{int}.{frac}", if r.chance(0.5) { "-" } else { "" })
    })
}
fn wide_integer(r: &mut Rng) -> String {
    let digits: String = (0..1 + r.below(65)).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
    format!("{}{digits}", if r.chance(0.5) { "-" } else { "" })
}
fn unsigned64(r: &mut Rng) -> String {
    pick(r, &["0", "18446744073709551615", "9223372036854775808"], |r| r.next().to_string())
}
fn text_of(r: &mut Rng, alphabet: &[&str]) -> String {
    let n = r.below(12);
    let s: String = (0..n).map(|_| alphabet[r.below(alphabet.len())]).collect();
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}
fn utf8(r: &mut Rng) -> String {
    text_of(r, &["a", "Z", " ", "'", "é", "ß", "日本", "🌍", "\\", "\"", "%", "_"])
}
fn bmp(r: &mut Rng) -> String {
    text_of(r, &["a", "Z", " ", "'", "é", "日本", "ü", "\\"])
}
fn latin1(r: &mut Rng) -> String {
    text_of(r, &["a", "Z", " ", "'", "é", "ü", "ß", "\\"])
}
fn hex_bytes(r: &mut Rng) -> String {
    let n = r.below(16);
    (0..n).map(|_| format!("{:02x}", r.below(256))).collect()
}
fn pg_bytes(r: &mut Rng) -> String {
    format!("'\\x{}'::bytea", hex_bytes(r))
}
fn my_bytes(r: &mut Rng) -> String {
    let h = hex_bytes(r);
    if h.is_empty() { "''".into() } else { format!("X'{h}'") }
}
fn boolean(r: &mut Rng) -> String {
    if r.chance(0.5) { "TRUE".into() } else { "FALSE".into() }
}
fn date(r: &mut Rng) -> String {
    pick(r, &["'0001-01-01'", "'9999-12-31'", "'1970-01-01'"], |r| {
        format!("'{:04}-{:02}-{:02}'", 1900 + r.below(200), 1 + r.below(12), 1 + r.below(28))
    })
}
fn clock(r: &mut Rng) -> String {
    format!("{:02}:{:02}:{:02}.{:06}", r.below(24), r.below(60), r.below(60), r.below(1_000_000))
}
fn datetime(r: &mut Rng) -> String {
    pick(r, &["'0001-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", "'1969-12-31 23:59:59.5'"], |r| {
        format!("'{:04}-{:02}-{:02} {}'", 1900 + r.below(200), 1 + r.below(12), 1 + r.below(28), clock(r))
    })
}
fn my_timestamp(r: &mut Rng) -> String {
    pick(r, &["'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'"], |r| {
        format!("'{:04}-{:02}-{:02} {}'", 1971 + r.below(60), 1 + r.below(12), 1 + r.below(28), clock(r))
    })
}
fn time(r: &mut Rng) -> String {
    pick(r, &["'00:00:00'", "'23:59:59.999999'"], |r| format!("'{}'", clock(r)))
}
fn json(r: &mut Rng) -> String {
    pick(r, &["'{}'", "'[]'", "'null'", "'{\"a\": [1, \"ü\", null, true]}'"], |r| {
        format!("'{{\"k\": {}, \"s\": \"x{}\"}}'", r.next() % 1000, r.below(99))
    })
}
fn uuid(r: &mut Rng) -> String {
    let h = format!("{:016x}{:016x}", r.next(), r.next());
    format!("'{}-{}-{}-{}-{}'", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
fn bits10(r: &mut Rng) -> String {
    r.below(1024).to_string()
}

pub const PG: &[ColType] = &[
    ColType { ddl: "bigint", make: int64, canon: "{}::text", cmp: Cmp::Exact },
    ColType { ddl: "integer", make: int32, canon: "{}::text", cmp: Cmp::Exact },
    ColType { ddl: "double precision", make: pg_double, canon: "{}::text", cmp: Cmp::Float },
    ColType { ddl: "real", make: float, canon: "{}::float8::text", cmp: Cmp::Float },
    ColType { ddl: "numeric(38,9)", make: numeric_38_9, canon: "{}::text", cmp: Cmp::Decimal },
    ColType { ddl: "text", make: utf8, canon: "{}", cmp: Cmp::Exact },
    ColType { ddl: "varchar(60) COLLATE \"C\"", make: utf8, canon: "{}::text", cmp: Cmp::Exact },
    ColType { ddl: "bytea", make: pg_bytes, canon: "encode({}, 'hex')", cmp: Cmp::Bytes },
    ColType { ddl: "boolean", make: boolean, canon: "{}::text", cmp: Cmp::Exact },
    ColType { ddl: "date", make: date, canon: "to_char({}, 'YYYY-MM-DD')", cmp: Cmp::Exact },
    ColType {
        ddl: "timestamp",
        make: datetime,
        canon: "to_char({}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')",
        cmp: Cmp::Datetime,
    },
    ColType {
        ddl: "timestamptz",
        make: my_timestamp,
        canon: "(extract(epoch from {}) * 1000000)::int8::text",
        cmp: Cmp::Exact,
    },
    ColType { ddl: "time", make: time, canon: "to_char('2000-01-01'::date + {}, 'HH24:MI:SS.US')", cmp: Cmp::Time },
    ColType { ddl: "jsonb", make: json, canon: "{}::text", cmp: Cmp::Json },
    ColType { ddl: "uuid", make: uuid, canon: "{}::text", cmp: Cmp::Exact },
];

pub const MY: &[ColType] = &[
    ColType { ddl: "bigint", make: int64, canon: "CAST({} AS CHAR)", cmp: Cmp::Exact },
    ColType { ddl: "int", make: int32, canon: "CAST({} AS CHAR)", cmp: Cmp::Exact },
    ColType { ddl: "bigint unsigned", make: unsigned64, canon: "CAST({} AS CHAR)", cmp: Cmp::Decimal },
    ColType { ddl: "double", make: double, canon: "CAST({} AS CHAR)", cmp: Cmp::Float },
    ColType { ddl: "float", make: float, canon: "CAST(CAST({} AS DOUBLE) AS CHAR)", cmp: Cmp::Float },
    ColType { ddl: "decimal(38,9)", make: numeric_38_9, canon: "CAST({} AS CHAR)", cmp: Cmp::Decimal },
    ColType { ddl: "decimal(65,0)", make: wide_integer, canon: "CAST({} AS CHAR)", cmp: Cmp::Decimal },
    ColType {
        ddl: "varchar(60) CHARACTER SET utf8mb4",
        make: utf8,
        canon: "CONVERT({} USING utf8mb4)",
        cmp: Cmp::Exact,
    },
    ColType {
        ddl: "varchar(60) CHARACTER SET latin1",
        make: latin1,
        canon: "CONVERT({} USING utf8mb4)",
        cmp: Cmp::Exact,
    },
    ColType {
        ddl: "varchar(60) CHARACTER SET utf8mb3",
        make: bmp,
        canon: "CONVERT({} USING utf8mb4)",
        cmp: Cmp::Exact,
    },
    ColType { ddl: "text", make: utf8, canon: "CONVERT({} USING utf8mb4)", cmp: Cmp::Exact },
    ColType { ddl: "varbinary(20)", make: my_bytes, canon: "LOWER(HEX({}))", cmp: Cmp::Bytes },
    ColType {
        ddl: "tinyint(1)",
        make: boolean,
        canon: "CASE WHEN {0} IS NULL THEN NULL WHEN {0} THEN 'true' ELSE 'false' END",
        cmp: Cmp::Exact,
    },
    ColType { ddl: "date", make: date, canon: "DATE_FORMAT({}, '%Y-%m-%d')", cmp: Cmp::Exact },
    ColType {
        ddl: "datetime(6)",
        make: datetime,
        canon: "DATE_FORMAT({}, '%Y-%m-%dT%H:%i:%s.%f')",
        cmp: Cmp::Datetime,
    },
    ColType {
        ddl: "timestamp(6) NULL",
        make: my_timestamp,
        canon: "CAST(CAST(UNIX_TIMESTAMP({}) * 1000000 AS SIGNED) AS CHAR)",
        cmp: Cmp::Exact,
    },
    ColType { ddl: "time(6)", make: time, canon: "TIME_FORMAT({}, '%H:%i:%s.%f')", cmp: Cmp::Time },
    // Decimal: a query's BIT has no width in the result metadata and lands as NUMERIC.
    ColType { ddl: "bit(10)", make: bits10, canon: "CAST({} + 0 AS CHAR)", cmp: Cmp::Decimal },
    ColType { ddl: "bit(64)", make: unsigned64, canon: "CAST({} + 0 AS CHAR)", cmp: Cmp::Decimal },
];

pub fn menu(eng: Eng) -> &'static [ColType] {
    match eng {
        Eng::Pg => PG,
        Eng::My => MY,
    }
}

pub fn quote(eng: Eng, name: &str) -> String {
    match eng {
        Eng::Pg => format!("\"{}\"", name.replace('"', "\"\"")),
        Eng::My => format!("`{}`", name.replace('`', "``")),
    }
}

/// Brings both sides of a cell to one text; `None` is SQL NULL.
pub fn canonical(cmp: Cmp, v: &str, from_bq: bool) -> String {
    match cmp {
        Cmp::Exact => v.to_owned(),
        Cmp::Float => {
            let f: f64 = v.parse().unwrap_or_else(|_| panic!("float {v:?}"));
            if f.is_nan() { "NaN".into() } else { format!("{f:?}") }
        }
        Cmp::Decimal => crate::common::compare::trim_decimal(v),
        Cmp::Bytes if from_bq => {
            use base64::Engine as _;
            let b = base64::engine::general_purpose::STANDARD.decode(v).unwrap_or_else(|e| panic!("base64 {v}: {e}"));
            b.iter().map(|x| format!("{x:02x}")).collect()
        }
        Cmp::Bytes => v.to_ascii_lowercase(),
        Cmp::Datetime => six_digits(v.replace(' ', "T").as_str()),
        Cmp::Time => six_digits(v),
        Cmp::Json => serde_json::from_str::<serde_json::Value>(v)
            .map(|j| j.to_string())
            .unwrap_or_else(|e| panic!("JSON {v:?}: {e}")),
    }
}

/// A time of day or a datetime with exactly six fractional digits.
fn six_digits(v: &str) -> String {
    let (head, frac) = v.split_once('.').unwrap_or((v, ""));
    format!("{head}.{:0<6}", frac)
}
