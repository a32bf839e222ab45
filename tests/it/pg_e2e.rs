//! End to end through the whole chain: emulated issuer → token file → STS → impersonation
//! → (authenticating gate) → bqemulator, from a real PostgreSQL table, checked value by
//! value against the source.

use crate::common;

use common::compare::{Kind, assert_same, bq_rows, source_rows};
use common::{Landing, PgDb, aurora2bq};

const COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Int),
    ("c_int2", Kind::Int),
    ("c_int4", Kind::Int),
    ("c_int8", Kind::Int),
    ("c_real", Kind::Float32),
    ("c_double", Kind::Float64),
    ("c_num", Kind::Decimal),
    ("c_num_small", Kind::Decimal),
    ("c_text", Kind::Text),
    ("c_varchar", Kind::Text),
    ("c_char", Kind::Text),
    ("c_bool", Kind::Bool),
    ("c_date", Kind::Date),
    ("c_ts", Kind::Datetime),
    ("c_tstz", Kind::Timestamp),
    ("c_bytea", Kind::Bytes),
    ("c_uuid", Kind::Uuid),
    ("c_json", Kind::Json),
    ("c_jsonb", Kind::Json),
];

/// Every type of the slice, with NULLs in every column (row 99999 is NULL everywhere but
/// its key), the extremes of each type, times before 1970 and after 2100, non-ASCII and
/// empty text, and bytea of 0 bytes and of 100 KB.
fn everything_sql(rows: i64) -> String {
    format!(
        r#"
CREATE TABLE everything (
  id bigint PRIMARY KEY,
  c_int2 smallint, c_int4 integer, c_int8 bigint,
  c_real real, c_double double precision,
  c_num numeric(38,9), c_num_small numeric(12,2),
  c_text text, c_varchar varchar(40), c_char char(6),
  c_bool boolean, c_date date, c_ts timestamp, c_tstz timestamptz,
  c_bytea bytea, c_uuid uuid, c_json json, c_jsonb jsonb
);
INSERT INTO everything
SELECT g,
  CASE WHEN g % 17 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN -32768 WHEN g = 2 THEN 32767 ELSE (g % 30000) - 15000 END,
  CASE WHEN g % 19 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN -2147483648 WHEN g = 2 THEN 2147483647 ELSE g * 7 END,
  CASE WHEN g % 23 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN -9223372036854775808 WHEN g = 2 THEN 9223372036854775807 ELSE g::bigint * -1000003 END,
  CASE WHEN g % 29 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN '-3.4028235e38'::real WHEN g = 2 THEN '1.17549435e-38'::real ELSE (g / 3.0)::real END,
  CASE WHEN g % 31 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN '1.7976931348623157e308'::float8 WHEN g = 2 THEN '-4.9e-324'::float8
       WHEN g = 3 THEN 'Infinity' WHEN g = 4 THEN '-Infinity' WHEN g = 5 THEN 'NaN' ELSE g * 1.1 / 7 END,
  CASE WHEN g % 37 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN 99999999999999999999999999999.999999999
       WHEN g = 2 THEN -99999999999999999999999999999.999999999 WHEN g = 3 THEN 0.000000001 WHEN g = 4 THEN -0.000000001
       ELSE (g * 123456.789123457)::numeric(38,9) END,
  CASE WHEN g % 41 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN 9999999999.99 WHEN g = 2 THEN -9999999999.99 ELSE g * 1.25 END,
  CASE WHEN g % 11 = 0 OR g = 99999 THEN NULL WHEN g % 11 = 1 THEN '' WHEN g % 11 = 2 THEN 'Grüße, 世界 🌍 ' || g
       WHEN g % 11 = 3 THEN E'line\nbreak\ttab "quote" \\ back' ELSE 'row ' || g END,
  CASE WHEN g % 13 = 0 OR g = 99999 THEN NULL ELSE left(md5(g::text), 1 + g % 32) END,
  CASE WHEN g % 43 = 0 OR g = 99999 THEN NULL ELSE substr('abcdéf', 1 + g % 6) END,
  CASE WHEN g % 7 = 0 OR g = 99999 THEN NULL ELSE g % 2 = 0 END,
  CASE WHEN g % 47 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN '0001-01-01'::date WHEN g = 2 THEN '9999-12-31'::date
       WHEN g = 3 THEN '1969-12-31'::date ELSE date '1900-01-01' + (g * 3) END,
  CASE WHEN g % 53 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN '0001-01-01 00:00:00'::timestamp
       WHEN g = 2 THEN '9999-12-31 23:59:59.999999'::timestamp WHEN g % 1000 = 7 THEN timestamp '2150-06-01 12:00:00.123456' + g * interval '1 second'
       ELSE timestamp '1960-01-01' + g * interval '1 hour 1.000001 seconds' END,
  CASE WHEN g % 59 = 0 OR g = 99999 THEN NULL WHEN g = 1 THEN '0001-01-01 00:00:00+00'::timestamptz
       WHEN g = 2 THEN '9999-12-31 23:59:59.999999+00'::timestamptz WHEN g % 1000 = 9 THEN timestamptz '2101-01-01 00:00:00.000001+14' + g * interval '1 minute'
       ELSE timestamptz '1950-01-01 00:00:00+05:30' + g * interval '37 minutes 0.000007 seconds' END,
  CASE WHEN g % 61 = 0 OR g = 99999 THEN NULL WHEN g % 20000 = 5 THEN decode(repeat(md5(g::text), 6400), 'hex')
       WHEN g % 3 = 0 THEN ''::bytea ELSE decode(md5(g::text), 'hex') END,
  CASE WHEN g % 67 = 0 OR g = 99999 THEN NULL ELSE md5(g::text)::uuid END,
  CASE WHEN g % 71 = 0 OR g = 99999 THEN NULL ELSE json_build_object('g', g, 's', 'ü', 'n', NULL) END,
  CASE WHEN g % 73 = 0 OR g = 99999 THEN NULL ELSE jsonb_build_object('k', g, 'arr', jsonb_build_array(1, 'x', NULL), 'f', 1.5) END
FROM generate_series(1, {rows}) AS g;
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_reaches_bigquery_unchanged_through_the_whole_chain() {
    let l = Landing::new(&everything_sql(100_000), &["public.everything"], "").await;
    let Landing { db, bq, dataset, chain, .. } = &l;

    let run = l.run().await;
    run.assert_ok();
    assert!(run.stdout.contains("public.everything") && run.stdout.contains("100000 rows"), "{}", run.stdout);

    let source = source_rows(&mut db.connect().await, "everything", COLUMNS).await;
    assert_eq!(source.len(), 100_000);
    let count = bq.query(&format!("SELECT COUNT(*) FROM {dataset}.everything")).await;
    assert_eq!(count[0][0].as_str(), Some("100000"), "rows in BigQuery");
    let dest = bq_rows(bq.rows(dataset, "everything").await, COLUMNS);
    assert_same(&source, &dest, COLUMNS);

    // Every BigQuery call went through the gates with a token the chain produced.
    let (passed, refused) = chain.emulator.gate_counts();
    assert!(passed >= 5, "only {passed} calls reached BigQuery through the gates");
    assert_eq!(refused, 0);
    // The staging table is gone; the target, the state table and the run history remain.
    let mut tables = bq.tables(dataset).await;
    tables.sort();
    assert_eq!(tables, ["_aurora2bq_runs", "_aurora2bq_state", "everything"]);
}

const SMALL: &[(&str, Kind)] =
    &[("id", Kind::Int), ("name", Kind::Text), ("amount", Kind::Decimal), ("at", Kind::Timestamp)];

const SMALL_TABLE: &str =
    "CREATE TABLE accounts (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz);
     INSERT INTO accounts SELECT g, 'v1-' || g, g * 1.5, timestamptz '2020-01-01Z' + g * interval '1 s'
     FROM generate_series(1, 5000) g;";

async fn change_source(db: &PgDb) {
    db.exec(
        "DELETE FROM accounts WHERE id % 10 = 0;
         UPDATE accounts SET name = 'v2-' || id, amount = amount + 1 WHERE id % 3 = 0;
         INSERT INTO accounts SELECT g, 'new-' || g, g, now() FROM generate_series(5001, 5500) g;",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_replaces_the_table() {
    let Landing { db, bq, dataset, chain: _chain, config } = Landing::new(SMALL_TABLE, &["accounts"], "").await;
    let args = ["run", "--config", config.to_str().unwrap()];
    let env = [("TEST_SOURCE_URL", db.url.as_str())];

    aurora2bq(&args, &env).await.assert_ok();
    change_source(&db).await;
    aurora2bq(&args, &env).await.assert_ok();

    let source = source_rows(&mut db.connect().await, "accounts", SMALL).await;
    assert_eq!(source.len(), 5000 - 500 + 500);
    assert_same(&source, &bq_rows(bq.rows(&dataset, "accounts").await, SMALL), SMALL);
}

/// A run killed after its rows are committed to staging, but before the swap, must leave
/// the previous target exactly as it was; the next run then completes the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_before_the_swap_leaves_the_previous_target_intact() {
    let Landing { db, bq, dataset, chain: _chain, config } = Landing::new(SMALL_TABLE, &["accounts"], "").await;
    let args = ["run", "--config", config.to_str().unwrap()];

    aurora2bq(&args, &[("TEST_SOURCE_URL", &db.url)]).await.assert_ok();
    let before = source_rows(&mut db.connect().await, "accounts", SMALL).await;
    change_source(&db).await;

    for point in ["before-staging-commit", "after-staging-commit"] {
        let run = aurora2bq(&args, &[("TEST_SOURCE_URL", &db.url), ("AURORA2BQ_FAILPOINT", point)]).await;
        assert_ne!(run.code, Some(0), "the run should have died at {point}");
        assert!(run.stderr.contains(&format!("failpoint {point} reached")), "{}", run.stderr);
        let dest = bq_rows(bq.rows(&dataset, "accounts").await, SMALL);
        assert_same(&before, &dest, SMALL);
    }
    // The dead runs' staging tables are left to expire; the target is untouched.
    let tables = bq.tables(&dataset).await;
    assert!(tables.iter().any(|t| t.starts_with("accounts__aurora2bq_staging_")), "{tables:?}");

    aurora2bq(&args, &[("TEST_SOURCE_URL", &db.url)]).await.assert_ok();
    let after = source_rows(&mut db.connect().await, "accounts", SMALL).await;
    assert_same(&after, &bq_rows(bq.rows(&dataset, "accounts").await, SMALL), SMALL);
}
