//! Every MySQL type aurora2bq maps (MariaDB standing in for Aurora MySQL), checked value by
//! value at the Arrow level and through bqemulator, zero dates as configured, and refusals.

use crate::common;

use aurora2bq::config::{Engine, TableConfig, ZeroDates};
use aurora2bq::source::{BatchLimits, SourceError};
use common::MyDb;
use common::arrow_text::{read, source_config};

const LIMITS: BatchLimits = BatchLimits { rows: 2, bytes: 1 << 20 };

const SCHEMA: &str = r#"
CREATE TABLE types (
  id int PRIMARY KEY,
  b tinyint(1), bo bool, ti tinyint, si smallint, mi mediumint, i int, bi bigint,
  tiu tinyint unsigned, iu int unsigned, biu bigint unsigned,
  d decimal(12,2), dw decimal(65,30), f float, db double,
  c char(5), vc varchar(20), tx text, l1 varchar(20) CHARACTER SET latin1,
  bn binary(3), vb varbinary(10), bl blob,
  dt date, dtm datetime(6), ts timestamp(6) NULL DEFAULT NULL, tm time(6), y year,
  j json, e enum('a','b'), st set('x','y'), bt bit(10)
);
INSERT INTO types VALUES
 (1, 1, 0, -128, -32768, -8388608, -2147483648, -9223372036854775808, 255, 4294967295, 18446744073709551615,
  123.45, '12345678901234567890123456789012345.123456789012345678901234567890', 0.1, 1.7976931348623157e308,
  'ab', 'Grüße', '世界 🌍', 'Grüße', x'0102', x'00ff', '',
  '1000-01-01', '1969-12-31 23:59:59.5', '2038-01-19 03:14:07.999999', '12:34:56.5', 2024,
  '{"a": [1, "ü"]}', 'b', 'x,y', b'1000000001'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 1, 127, 32767, 8388607, 2147483647, 9223372036854775807, 0, 0, 0,
  -0.01, '-0.000000000000000000000000000001', -3.5, -2.5e-300, '', '', '', '', x'', x'', x'00',
  '9999-12-31', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01', '00:00:00', 1901,
  '[]', 'a', '', b'0');
"#;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test]
async fn every_type_maps_exactly() {
    let db = MyDb::new().await;
    db.exec(SCHEMA).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    let r = read(&cfg, &TableConfig::simple(None, "types"), None, LIMITS).await.expect("read");
    assert_eq!(r.rows(), 3);
    assert_eq!(r.schema.primary_key, vec!["id".to_string()]);
    let ty = |n: &str| r.schema.columns.iter().find(|c| c.name == n).unwrap().field.ty.rest_name();
    for (col, want) in [
        ("b", "BOOL"),
        ("bo", "BOOL"),
        ("bi", "INT64"),
        ("tiu", "INT64"),
        ("biu", "NUMERIC"),
        ("d", "NUMERIC"),
        ("dw", "BIGNUMERIC"),
        ("f", "FLOAT64"),
        ("l1", "STRING"),
        ("bn", "BYTES"),
        ("bl", "BYTES"),
        ("dt", "DATE"),
        ("dtm", "DATETIME"),
        ("ts", "TIMESTAMP"),
        ("tm", "TIME"),
        ("y", "INT64"),
        ("e", "STRING"),
        ("st", "STRING"),
        ("bt", "INT64"),
    ] {
        assert_eq!(ty(col), want, "type of {col}");
    }
    let expect: &[(&str, [Option<String>; 3])] = &[
        ("b", [s("true"), None, s("false")]),
        ("bo", [s("false"), None, s("true")]),
        ("ti", [s("-128"), None, s("127")]),
        ("si", [s("-32768"), None, s("32767")]),
        ("mi", [s("-8388608"), None, s("8388607")]),
        ("i", [s("-2147483648"), None, s("2147483647")]),
        ("bi", [s("-9223372036854775808"), None, s("9223372036854775807")]),
        ("tiu", [s("255"), None, s("0")]),
        ("iu", [s("4294967295"), None, s("0")]),
        ("biu", [s("18446744073709551615"), None, s("0")]),
        ("d", [s("123.45"), None, s("-0.01")]),
        (
            "dw",
            [
                s("12345678901234567890123456789012345.12345678901234567890123456789"),
                None,
                s("-0.000000000000000000000000000001"),
            ],
        ),
        ("f", [s("0.10000000149011612"), None, s("-3.5")]),
        ("db", [s("1.7976931348623157e308"), None, s("-2.5e-300")]),
        ("c", [s("ab"), None, s("")]),
        ("vc", [s("Grüße"), None, s("")]),
        ("tx", [s("世界 🌍"), None, s("")]),
        ("l1", [s("Grüße"), None, s("")]),
        ("bn", [s("010200"), None, s("000000")]),
        ("vb", [s("00ff"), None, s("")]),
        ("bl", [s(""), None, s("00")]),
        ("dt", [s("1000-01-01"), None, s("9999-12-31")]),
        ("dtm", [s("1969-12-31T23:59:59.500000"), None, s("9999-12-31T23:59:59.999999")]),
        ("ts", [s("2038-01-19T03:14:07.999999Z"), None, s("1970-01-01T00:00:01.000000Z")]),
        ("tm", [s("12:34:56.500000"), None, s("00:00:00.000000")]),
        ("y", [s("2024"), None, s("1901")]),
        ("e", [s("b"), None, s("a")]),
        ("st", [s("x,y"), None, s("")]),
        ("bt", [s("513"), None, s("0")]),
    ];
    for (col, want) in expect {
        assert_eq!(r.column(col), want.to_vec(), "column {col}");
    }
    let j: Vec<Option<serde_json::Value>> =
        r.column("j").into_iter().map(|v| v.map(|t| serde_json::from_str(&t).unwrap())).collect();
    assert_eq!(j, vec![Some(serde_json::json!({"a": [1, "ü"]})), None, Some(serde_json::json!([]))]);
}

#[tokio::test]
async fn zero_dates_are_an_error_or_counted_nulls_as_configured() {
    let db = MyDb::new().await;
    db.exec(
        "CREATE TABLE z (id int PRIMARY KEY, d date, dt datetime, ts timestamp NULL DEFAULT NULL);
         INSERT INTO z VALUES (1, '0000-00-00', '2020-01-01 00:00:00', NULL), (2, '2020-01-01', '0000-00-00 00:00:00', NULL),
                              (3, '2020-00-15', NULL, '0000-00-00 00:00:00'), (4, '2021-02-03', '2021-02-03 04:05:06', NULL);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let table = TableConfig::simple(None, "z");
    let strict = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    match read(&strict, &table, None, LIMITS).await.err().expect("refused") {
        SourceError::Value { column, key, detail, .. } => {
            assert_eq!((column.as_str(), key.as_str()), ("d", "(id=1)"));
            assert!(detail.contains("zero date") && detail.contains("zero_dates = \"null\""), "{detail}");
        }
        other => panic!("{other}"),
    }
    let lenient = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Null);
    let r = read(&lenient, &table, None, LIMITS).await.expect("read");
    assert_eq!(r.stats.zero_dates, 4);
    assert_eq!(r.column("d"), vec![None, s("2020-01-01"), None, s("2021-02-03")]);
    assert_eq!(r.column("dt"), vec![s("2020-01-01T00:00:00.000000"), None, None, s("2021-02-03T04:05:06.000000")]);
}

#[tokio::test]
async fn values_that_do_not_fit_are_refused_by_name() {
    let db = MyDb::new().await;
    db.exec("CREATE TABLE bad (id int PRIMARY KEY, flag tinyint(1), t time, g geometry); INSERT INTO bad (id, flag) VALUES (7, 5);").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    let mut table = TableConfig::simple(None, "bad");
    let e = read(&cfg, &table, None, LIMITS).await.err().expect("geometry unsupported");
    assert!(matches!(&e, SourceError::Unsupported { column, .. } if column == "g"), "{e}");
    table.exclude_columns = vec!["g".into()];
    match read(&cfg, &table, None, LIMITS).await.err().expect("5 is not a boolean") {
        SourceError::Value { column, key, detail, .. } => {
            assert_eq!((column.as_str(), key.as_str()), ("flag", "(id=7)"));
            assert!(detail.contains("not a boolean") && detail.contains("cast = { flag = \"text\" }"), "{detail}");
        }
        other => panic!("{other}"),
    }
    db.exec("UPDATE bad SET flag = 1, t = '838:59:59'").await;
    let e = read(&cfg, &table, None, LIMITS).await.err().expect("838 hours");
    assert!(e.to_string().contains("24 hours or more"), "{e}");
    // With the cast, the duration arrives as its text.
    table.casts.insert("t".into(), aurora2bq::config::Cast::Text);
    let r = read(&cfg, &table, None, LIMITS).await.expect("cast to text");
    assert_eq!(r.column("t"), vec![s("838:59:59")]);
}

/// Each refusal names its fix, and the fix loads the row.
#[tokio::test]
async fn every_named_fix_loads_the_row() {
    let db = MyDb::new().await;
    db.exec(
        "CREATE TABLE bad (id int PRIMARY KEY, d date, t time);
         SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
         INSERT INTO bad VALUES (1, NULL, NULL);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    let mut t = TableConfig::simple(None, "bad");
    let cases = [
        (
            "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; UPDATE bad SET d = '2021-02-30'".into(),
            "d",
            "2021-02-30".into(),
        ),
        ("UPDATE bad SET t = '-01:00:00'".to_string(), "t", "-01:00:00".into()),
    ];
    for (sql, column, text) in cases {
        db.exec(&sql).await;
        let fix = format!("cast = {{ {column} = \"text\" }}");
        match read(&cfg, &t, None, LIMITS).await.err().unwrap_or_else(|| panic!("{sql}: no error")) {
            SourceError::Value { column: c, key, detail, .. } => {
                assert_eq!((c.as_str(), key.as_str()), (column, "(id=1)"), "{sql}");
                assert!(detail.contains(&fix), "{sql}: {detail}");
            }
            other => panic!("{sql}: {other}"),
        }
        t.casts.insert(column.into(), aurora2bq::config::Cast::Text);
        let r = read(&cfg, &t, None, LIMITS).await.unwrap_or_else(|e| panic!("{sql} with {fix}: {e}"));
        assert_eq!(r.column(column), vec![Some(text)], "{sql}");
        t.casts.clear();
        db.exec(&format!("UPDATE bad SET {column} = NULL")).await;
    }
}

/// FLOAT arrives as the float32 MySQL stores (the text protocol alone rounds it to six
/// digits), and BIT(64), as a table or through a query, as its unsigned value.
#[tokio::test]
async fn floats_and_wide_bits_are_exact_from_tables_and_queries() {
    let db = MyDb::new().await;
    db.exec(
        "CREATE TABLE f (id int PRIMARY KEY, x float, b bit(64), n bit(8));
         INSERT INTO f VALUES (1, 16777216, b'1111111111111111111111111111111111111111111111111111111111111111', b'11111111'),
                              (2, 0.1, b'0', b'0'), (3, 123456.789, 9223372036854775808, 1), (4, -3.4e38, 1, 2);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    let mut q = TableConfig::simple(None, "q");
    q.source = aurora2bq::config::TableSource::Query("SELECT id, x, b, n FROM f".into());
    for t in [TableConfig::simple(None, "f"), q] {
        let r = read(&cfg, &t, None, LIMITS).await.expect("read");
        let floats: Vec<f64> = r.column("x").iter().map(|v| v.as_deref().unwrap().parse().unwrap()).collect();
        let want = [16777216f32, 0.1f32, 123_456.79f32, -3.4e38f32];
        for (got, want) in floats.iter().zip(want) {
            assert_eq!(got.to_bits(), (want as f64).to_bits(), "{:?}: {got} is not the float32 {want}", t.source);
        }
        assert_eq!(
            r.column("b"),
            vec![s("18446744073709551615"), s("0"), s("9223372036854775808"), s("1")],
            "{:?}",
            t.source
        );
        assert_eq!(r.column("n")[0].as_deref(), Some("255"), "{:?}", t.source);
    }
}

#[tokio::test]
async fn a_user_without_select_is_told_the_grant() {
    let db = MyDb::new().await;
    db.exec("CREATE TABLE secret (id int PRIMARY KEY);").await;
    let (user, url) = db.user_without_select("secret").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &url, dir.path(), ZeroDates::Error);
    let e = read(&cfg, &TableConfig::simple(None, "secret"), None, LIMITS).await.err().expect("no SELECT");
    db.exec(&format!("DROP USER '{user}'@'%'")).await;
    let m = e.to_string();
    assert!(matches!(e, SourceError::NoSelect { .. }), "{m}");
    assert!(m.contains("GRANT SELECT ON"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_rows_land_in_bigquery_unchanged() {
    let db = MyDb::new().await;
    db.exec(SCHEMA).await;
    let bq = common::bq::Bq::new();
    let dataset = bq.create_dataset().await;
    let chain = common::chain::Chain::start(common::chain::good_project()).await;
    let config = common::write_config(chain.dir.path(), &chain, &dataset, &[], "");
    let text = std::fs::read_to_string(&config).unwrap().replace("engine = \"postgres\"", "engine = \"mysql\"")
        + "\n[[tables]]\nsource = \"types\"\nexclude_columns = [\"dw\"]\n";
    std::fs::write(&config, text).unwrap();
    let run = common::aurora2bq(&["run", "--config", config.to_str().unwrap()], &[("TEST_SOURCE_URL", &db.url)]).await;
    run.assert_ok();
    let rows = bq
        .query(&format!(
            "SELECT id, b, bi, CAST(biu AS STRING), CAST(d AS STRING), vc, l1, TO_BASE64(bn), CAST(dt AS STRING), \
         CAST(dtm AS STRING), UNIX_MICROS(ts), CAST(tm AS STRING), e, bt FROM {dataset}.types ORDER BY id"
        ))
        .await;
    let row: Vec<Option<String>> = rows[0].iter().map(|v| v.as_str().map(str::to_owned)).collect();
    let trim = |v: &Option<String>| {
        v.as_ref().map(|t| {
            if t.contains('.') { t.trim_end_matches('0').trim_end_matches('.').to_string() } else { t.clone() }
        })
    };
    assert_eq!(
        (
            row[0].clone(),
            row[1].clone(),
            row[2].clone(),
            trim(&row[3]),
            trim(&row[4]),
            row[5].clone(),
            row[6].clone(),
            row[7].clone()
        ),
        (
            s("1"),
            s("true"),
            s("-9223372036854775808"),
            s("18446744073709551615"),
            s("123.45"),
            s("Grüße"),
            s("Grüße"),
            s("AQIA")
        )
    );
    assert_eq!(row[8], s("1000-01-01"));
    assert!(
        row[9].as_deref().unwrap().starts_with("1969-12-31") && row[9].as_deref().unwrap().contains("23:59:59.5"),
        "{:?}",
        row[9]
    );
    assert_eq!(row[10], s("2147483647999999"));
    assert!(row[11].as_deref().unwrap().starts_with("12:34:56.5"), "{:?}", row[11]);
    assert_eq!((row[12].clone(), row[13].clone()), (s("b"), s("513")));
    assert_eq!(rows.len(), 3);
}

/// As on PostgreSQL: an oversized row names its column and key, and excluding it loads.
#[tokio::test]
async fn oversized_rows_are_refused_with_their_fix() {
    let db = MyDb::new().await;
    db.exec(
        "CREATE TABLE big (id int PRIMARY KEY, small text, huge longblob);
         INSERT INTO big VALUES (1, 'a', REPEAT('x', 10 * 1024 * 1024)), (2, 'b', NULL);",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = source_config(Engine::Mysql, &db.url, dir.path(), ZeroDates::Error);
    common::arrow_text::assert_oversized_row_refused_then_excluded(&cfg).await;
}
