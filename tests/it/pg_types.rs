//! Every PostgreSQL type aurora2bq maps, checked value by value at the Arrow level (and
//! through bqemulator for the types it supports), and each refusal with its message.

use crate::common;

use std::collections::BTreeMap;

use aurora2bq::config::{Cast, Engine, TableConfig, ZeroDates};
use aurora2bq::source::{BatchLimits, SourceError};
use common::PgDb;
use common::arrow_text::{read, source_config};

const LIMITS: BatchLimits = BatchLimits { rows: 2, bytes: 1 << 20 };

const SCHEMA: &str = r#"
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE types (
  id int PRIMARY KEY,
  a_int int[], a_text text[], a_num numeric(10,2)[], a_ts timestamptz[], a_bool boolean[], a_uuid uuid[], a_date date[],
  n_free numeric, n_big numeric(38,0), n_wide numeric(45,40), n_small numeric(5,-2),
  iv interval, t time, ttz timetz, ip inet, net cidr, mac macaddr, m money, b bit(4), vb varbit(8),
  x xml, md mood, dom posint, hs hstore, pt pg_lsn
);
INSERT INTO types VALUES
 (1, '{1,-2,3}', '{"a","ü b",""}', '{1.50,-2.25}', '{"2020-01-01 00:00:00+00","1960-06-01 12:00:00.5+00"}', '{t,f}',
  '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{0001-01-01,9999-12-31}',
  12345678901234567890.123456789012345678, 99999999999999999999999999999999999999, 123.45, 12300,
  '1 year 2 mons 3 days 04:05:06.789', '23:59:59.999999', '12:34:56+02', '192.168.0.1/24', '10.0.0.0/8',
  '08:00:2b:01:02:03', 1234.56, B'1010', B'101', '<a>1</a>', 'happy', 42, 'a=>1, b=>NULL', '16/B374D848'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, '{}', '{}', '{}', '{}', '{}', '{}', '{}', -0.5, -1, 0, 0, '-3 days', '00:00:00', '00:00:00-11:30', '::1', '::/0',
  'ff:ff:ff:ff:ff:ff', -0.01, B'0000', B'', '<b/>', 'sad', 1, '', '0/0');
"#;

fn table() -> TableConfig {
    let mut t = TableConfig::simple(Some("public"), "types");
    t.casts = BTreeMap::from([("pt".to_string(), Cast::Text)]);
    t
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test]
async fn every_type_maps_exactly() {
    let db = PgDb::new().await;
    db.exec(SCHEMA).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Postgres, &db.url, dir.path(), ZeroDates::Error);
    let r = read(&cfg, &table(), None, LIMITS).await.expect("read");
    assert_eq!(r.rows(), 3);
    assert_eq!(r.batches.len(), 2, "batches are cut at batch_rows");
    let types: BTreeMap<&str, (&str, bool)> =
        r.schema.columns.iter().map(|c| (c.name.as_str(), (c.field.ty.rest_name(), c.field.repeated))).collect();
    let expect_types = [
        ("a_int", ("INT64", true)),
        ("a_text", ("STRING", true)),
        ("a_num", ("NUMERIC", true)),
        ("a_ts", ("TIMESTAMP", true)),
        ("a_bool", ("BOOL", true)),
        ("a_uuid", ("STRING", true)),
        ("a_date", ("DATE", true)),
        ("n_free", ("BIGNUMERIC", false)),
        ("n_big", ("BIGNUMERIC", false)),
        ("n_wide", ("STRING", false)),
        ("n_small", ("NUMERIC", false)),
        ("iv", ("STRING", false)),
        ("t", ("TIME", false)),
        ("ttz", ("STRING", false)),
        ("ip", ("STRING", false)),
        ("net", ("STRING", false)),
        ("mac", ("STRING", false)),
        ("m", ("NUMERIC", false)),
        ("b", ("STRING", false)),
        ("vb", ("STRING", false)),
        ("x", ("STRING", false)),
        ("md", ("STRING", false)),
        ("dom", ("INT64", false)),
        ("hs", ("JSON", false)),
        ("pt", ("STRING", false)),
    ];
    for (col, want) in expect_types {
        assert_eq!(types[col], want, "type of {col}");
    }
    let expect: &[(&str, [Option<String>; 3])] = &[
        ("a_int", [s("[1, -2, 3]"), s("[]"), s("[]")]),
        ("a_text", [s("[a, ü b, ]"), s("[]"), s("[]")]),
        ("a_num", [s("[1.5, -2.25]"), s("[]"), s("[]")]),
        ("a_ts", [s("[2020-01-01T00:00:00.000000Z, 1960-06-01T12:00:00.500000Z]"), s("[]"), s("[]")]),
        ("a_bool", [s("[true, false]"), s("[]"), s("[]")]),
        ("a_uuid", [s("[a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11]"), s("[]"), s("[]")]),
        ("a_date", [s("[0001-01-01, 9999-12-31]"), s("[]"), s("[]")]),
        ("n_free", [s("12345678901234567890.123456789012345678"), None, s("-0.5")]),
        ("n_big", [s("99999999999999999999999999999999999999"), None, s("-1")]),
        ("n_wide", [s(&format!("123.45{}", "0".repeat(38))), None, s(&format!("0.{}", "0".repeat(40)))]),
        ("n_small", [s("12300"), None, s("0")]),
        ("iv", [s("1 year 2 mons 3 days 04:05:06.789"), None, s("-3 days")]),
        ("t", [s("23:59:59.999999"), None, s("00:00:00.000000")]),
        ("ttz", [s("12:34:56+02"), None, s("00:00:00-11:30")]),
        ("ip", [s("192.168.0.1/24"), None, s("::1")]),
        ("net", [s("10.0.0.0/8"), None, s("::/0")]),
        ("mac", [s("08:00:2b:01:02:03"), None, s("ff:ff:ff:ff:ff:ff")]),
        ("m", [s("1234.56"), None, s("-0.01")]),
        ("b", [s("1010"), None, s("0000")]),
        ("vb", [s("101"), None, s("")]),
        ("x", [s("<a>1</a>"), None, s("<b/>")]),
        ("md", [s("happy"), None, s("sad")]),
        ("dom", [s("42"), None, s("1")]),
        ("pt", [s("16/B374D848"), None, s("0/0")]),
    ];
    for (col, want) in expect {
        assert_eq!(r.column(col), want.to_vec(), "column {col}");
    }
    let hs: Vec<Option<serde_json::Value>> =
        r.column("hs").into_iter().map(|v| v.map(|j| serde_json::from_str(&j).unwrap())).collect();
    assert_eq!(hs, vec![Some(serde_json::json!({"a": "1", "b": null})), None, Some(serde_json::json!({}))]);
}

/// Each value or type that has no exact BigQuery counterpart stops the table with a
/// message naming table, column, key and the config that works around it.
#[tokio::test]
async fn what_does_not_fit_is_refused_by_name() {
    let db = PgDb::new().await;
    db.exec(
        "CREATE TABLE bad (id int PRIMARY KEY, n numeric, a int[], m int[], t time, d date, ts timestamptz, p pg_lsn);
         INSERT INTO bad (id) VALUES (1);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Postgres, &db.url, dir.path(), ZeroDates::Error);
    let mut t = TableConfig::simple(None, "bad");
    match read(&cfg, &t, None, LIMITS).await.err().expect("pg_lsn is unsupported") {
        e @ SourceError::Unsupported { .. } => {
            let m = e.to_string();
            assert!(m.contains("bad.p") || m.contains("p: type point"), "{m}");
            assert!(m.contains("exclude_columns") && m.contains("cast"), "{m}");
        }
        other => panic!("{other}"),
    }
    t.exclude_columns = vec!["p".into()];
    // (statement, column, what the refusal says, the column's text once the named fix is applied)
    let cases = [
        ("UPDATE bad SET n = 1e-40", "n", "more than 38 decimal places", "0.0000000000000000000000000000000000000001"),
        ("UPDATE bad SET n = 'NaN'", "n", "NaN", "NaN"),
        ("UPDATE bad SET a = '{1,NULL}'", "a", "element 2 is NULL", "{1,NULL}"),
        ("UPDATE bad SET m = '{{1,2},{3,4}}'", "m", "2-dimensional", "{{1,2},{3,4}}"),
        ("UPDATE bad SET t = '24:00:00'", "t", "24:00:00", "24:00:00"),
        ("UPDATE bad SET d = 'infinity'", "d", "infinity", "infinity"),
        ("UPDATE bad SET d = '10000-01-01'", "d", "outside BigQuery's range", "10000-01-01"),
        ("UPDATE bad SET ts = '-infinity'", "ts", "-infinity", "-infinity"),
    ];
    for (sql, column, detail, text) in cases {
        db.exec(sql).await;
        let fix = format!("cast = {{ {column} = \"text\" }}");
        match read(&cfg, &t, None, LIMITS).await.err().unwrap_or_else(|| panic!("{sql}: no error")) {
            SourceError::Value { table, column: c, key, detail: d } => {
                assert_eq!(table, "bad");
                assert_eq!(c, column, "{sql}");
                assert_eq!(key, "(id=1)", "{sql}");
                assert!(d.contains(detail) && d.contains(&fix), "{sql}: {d}");
            }
            other => panic!("{sql}: {other}"),
        }
        // The fix the message names loads the row, the value as PostgreSQL writes it.
        t.casts.insert(column.into(), aurora2bq::config::Cast::Text);
        let r = read(&cfg, &t, None, LIMITS).await.unwrap_or_else(|e| panic!("{sql} with {fix}: {e}"));
        assert_eq!(r.column(column), vec![Some(text.to_string())], "{sql}");
        t.casts.clear();
        db.exec(&format!("UPDATE bad SET {column} = NULL")).await;
    }
    // A config naming a column that does not exist.
    t.exclude_columns = vec!["nope".into()];
    let e = read(&cfg, &t, None, LIMITS).await.err().unwrap();
    assert!(e.to_string().contains("\"nope\"") && e.to_string().contains("columns: id, n"), "{e}");
}

#[tokio::test]
async fn a_query_can_be_the_source() {
    let db = PgDb::new().await;
    db.exec(SCHEMA).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Postgres, &db.url, dir.path(), ZeroDates::Error);
    let mut t = TableConfig::simple(None, "q");
    t.source = aurora2bq::config::TableSource::Query(
        "SELECT id, a_num, m::numeric(12,2) AS amount, iv, id * 2 AS twice FROM types WHERE id <> 2".into(),
    );
    let r = read(&cfg, &t, None, LIMITS).await.expect("read");
    let ty = |n: &str| r.schema.columns.iter().find(|c| c.name == n).map(|c| c.field.ty.rest_name()).unwrap();
    assert_eq!((ty("a_num"), ty("amount"), ty("iv"), ty("twice")), ("NUMERIC", "BIGNUMERIC", "STRING", "INT64"));
    assert_eq!(r.column("twice"), vec![s("2"), s("6")]);
    assert_eq!(r.column("amount"), vec![s("1234.56"), s("-0.01")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_chunks_read_every_row_once_from_one_snapshot() {
    let db = PgDb::new().await;
    db.exec("CREATE TABLE big (id bigint PRIMARY KEY, v text); INSERT INTO big SELECT g, 'v' || g FROM generate_series(-500, 20000) g;").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Postgres, &db.url, dir.path(), ZeroDates::Error);
    let mut t = TableConfig::simple(None, "big");
    t.parallel_chunks = 4;
    let r = read(&cfg, &t, None, BatchLimits { rows: 1000, bytes: 1 << 20 }).await.unwrap();
    let mut ids: Vec<i64> = r.column("id").into_iter().map(|v| v.unwrap().parse().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (-500..=20000).collect::<Vec<_>>());
    assert_eq!(r.stats.rows, 20501);
}

/// The scalar types bqemulator supports, through the whole run and back out of BigQuery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalar_types_land_in_bigquery_unchanged() {
    let db = PgDb::new().await;
    db.exec(SCHEMA).await;
    let bq = common::bq::Bq::new();
    let dataset = bq.create_dataset().await;
    let chain = common::chain::Chain::start(common::chain::good_project()).await;
    let config = common::write_config(chain.dir.path(), &chain, &dataset, &[], "");
    let extra = "\n[[tables]]\nsource = \"types\"\nexclude_columns = [\"a_int\", \"a_text\", \"a_num\", \"a_ts\", \"a_bool\", \"a_uuid\", \"a_date\", \"n_free\", \"n_big\"]\ncast = { pt = \"text\" }\n";
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + extra).unwrap();
    let run = common::aurora2bq(&["run", "--config", config.to_str().unwrap()], &[("TEST_SOURCE_URL", &db.url)]).await;
    run.assert_ok();
    let rows = bq.query(&format!(
        "SELECT id, n_wide, CAST(n_small AS STRING), iv, CAST(t AS STRING), ttz, ip, net, mac, CAST(m AS STRING), b, vb, x, md, dom, TO_JSON_STRING(hs), pt \
         FROM {dataset}.types ORDER BY id"
    ))
    .await;
    let text = |r: &Vec<serde_json::Value>| r.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Vec<_>>();
    assert_eq!(
        text(&rows[1]),
        vec![s("2"), None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None]
    );
    // bqemulator prints NUMERIC with all 9 places ("12300.000000000"); BigQuery trims them.
    let trim = |v: &mut Option<String>| {
        if let Some(t) = v.as_mut().filter(|t| t.contains('.')) {
            *t = t.trim_end_matches('0').trim_end_matches('.').to_string();
        }
    };
    let mut first = text(&rows[0]);
    trim(&mut first[2]);
    trim(&mut first[9]);
    assert_eq!(
        first[..5],
        [
            s("1"),
            s(&format!("123.45{}", "0".repeat(38))),
            s("12300"),
            s("1 year 2 mons 3 days 04:05:06.789"),
            s("23:59:59.999999")
        ]
    );
    assert_eq!(
        first[5..15],
        [
            s("12:34:56+02"),
            s("192.168.0.1/24"),
            s("10.0.0.0/8"),
            s("08:00:2b:01:02:03"),
            s("1234.56"),
            s("1010"),
            s("101"),
            s("<a>1</a>"),
            s("happy"),
            s("42")
        ]
    );
    let hs: serde_json::Value = serde_json::from_str(first[15].as_deref().unwrap()).unwrap();
    let hs = if hs.is_string() { serde_json::from_str(hs.as_str().unwrap()).unwrap() } else { hs };
    assert_eq!(hs, serde_json::json!({"a": "1", "b": null}));
    assert_eq!(first[16], s("16/B374D848"));
}

/// A row too large for one Storage Write request names its column and key, and leaving the
/// column out loads the table; a query that names two columns alike is told to alias them.
#[tokio::test]
async fn oversized_rows_and_duplicate_query_names_are_refused_with_their_fix() {
    let db = PgDb::new().await;
    db.exec(
        "CREATE TABLE big (id int PRIMARY KEY, small text, huge bytea);
         INSERT INTO big VALUES (1, 'a', decode(repeat('ab', 10 * 1024 * 1024), 'hex')), (2, 'b', NULL);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Postgres, &db.url, dir.path(), ZeroDates::Error);
    common::arrow_text::assert_oversized_row_refused_then_excluded(&cfg).await;

    let mut q = TableConfig::simple(None, "q");
    q.source = aurora2bq::config::TableSource::Query("SELECT id, small AS x, id AS x FROM big".into());
    let e = read(&cfg, &q, None, LIMITS).await.err().expect("two columns named x").to_string();
    assert!(e.contains("two columns named \"x\"") && e.contains("AS "), "{e}");
    q.source = aurora2bq::config::TableSource::Query("SELECT id, small AS x, id AS x2 FROM big".into());
    assert_eq!(read(&cfg, &q, None, LIMITS).await.expect("aliased").rows(), 2);
}
