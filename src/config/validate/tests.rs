use std::path::Path;

use crate::config::{ConfigError, CredentialsFrom, Engine, LoadMode, TableSource, UrlFrom, parse};

const GOOD: &str = r#"
[source]
engine = "postgres"
url_env = "DATABASE_URL"

[destination]
project = "my-project"
dataset = "raw_aurora"

[[tables]]
source = "public.orders"

[[tables]]
source = "customers"
target = "crm_customers"
"#;

fn err(text: &str) -> (usize, String, String) {
    match parse(Path::new("c.toml"), text) {
        Err(ConfigError::Invalid { line, key, message, .. }) => (line, key, message),
        Err(other) => panic!("expected a validation error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn good_config_parses_with_defaults() {
    let c = parse(Path::new("c.toml"), GOOD).unwrap();
    assert_eq!(c.source.engine, Engine::Postgres);
    assert_eq!(c.source.url, UrlFrom::Env("DATABASE_URL".into()));
    assert_eq!(c.google.credentials, CredentialsFrom::File(None));
    assert_eq!(c.google.bigquery_url.as_str(), "https://bigquery.googleapis.com/");
    assert!(!c.google.allow_insecure_endpoints);
    assert_eq!(c.tables.len(), 2);
    assert_eq!(c.tables[0].source, TableSource::Table { schema: Some("public".into()), name: "orders".into() });
    assert_eq!(c.tables[0].target, "orders");
    assert_eq!(c.tables[1].source, TableSource::Table { schema: None, name: "customers".into() });
    assert_eq!(c.tables[1].mode, LoadMode::FullRefresh);
    assert_eq!(c.tables[1].target, "crm_customers");
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let text = GOOD.replace("dataset = \"raw_aurora\"", "dataset = \"raw_aurora\"\ndatset = \"x\"");
    match parse(Path::new("c.toml"), &text) {
        Err(ConfigError::Parse { message, .. }) => {
            assert!(message.contains("datset"), "{message}");
            assert!(message.contains("line 9"), "{message}");
        }
        other => panic!("expected parse error, got {other:?}"),
    }
}

#[test]
fn bad_values_name_key_and_line() {
    let cases: &[(&str, &str, usize, &str, &str)] = &[
        ("engine = \"postgres\"", "engine = \"oracle\"", 3, "source.engine", "oracle"),
        ("url_env = \"DATABASE_URL\"", "url_env = \"1X\"", 4, "source.url_env", "environment variable"),
        ("url_env = \"DATABASE_URL\"", "", 2, "source", "url_env"),
        ("dataset = \"raw_aurora\"", "dataset = \"raw-aurora\"", 8, "destination.dataset", "dataset ID"),
        ("project = \"my-project\"", "project = \"My Project\"", 7, "destination.project", "project ID"),
        ("source = \"public.orders\"", "source = \"a.b.c\"", 11, "tables[0].source", "not a table name"),
        ("target = \"crm_customers\"", "target = \"orders\"", 15, "tables[1].target", "already used"),
        ("target = \"crm_customers\"", "target = \"bad name\"", 15, "tables[1].target", "BigQuery table"),
    ];
    for (from, to, line, key, needle) in cases {
        let (l, k, m) = err(&GOOD.replace(from, to));
        assert_eq!((l, k.as_str()), (*line, *key), "case {to:?}: {m}");
        assert!(m.contains(needle), "case {to:?}: {m}");
    }
}

#[test]
fn out_of_range_numbers_are_refused() {
    let text = format!("{GOOD}\n[run]\nbatch_rows = 0\n");
    let (line, key, message) = err(&text);
    assert_eq!(key, "run.batch_rows");
    assert_eq!(line, 18);
    assert!(message.contains("out of range"), "{message}");
}

#[test]
fn the_retry_policy_is_read_and_bounded() {
    let c = parse(Path::new("c.toml"), GOOD).unwrap();
    assert_eq!(c.google.retry.max_attempts, crate::retry::Policy::STANDARD.max_attempts);
    let text = format!(
        "{GOOD}\n[google.retry]\nmax_attempts = 3\ninitial_delay_ms = 200\nmax_delay_seconds = 5\ndeadline_seconds = 60\n"
    );
    let r = parse(Path::new("c.toml"), &text).unwrap().google.retry;
    assert_eq!(r.max_attempts, 3);
    assert_eq!(r.initial_delay, std::time::Duration::from_millis(200));
    assert_eq!(r.max_delay, std::time::Duration::from_secs(5));
    assert_eq!(r.deadline, std::time::Duration::from_secs(60));

    let (_, key, message) = err(&format!("{GOOD}\n[google.retry]\nmax_attempts = 0\n"));
    assert_eq!(key, "google.retry.max_attempts");
    assert!(message.contains("out of range"), "{message}");
    let (line, key, _) = err(&format!("{GOOD}\n[google.retry]\ninitial_delay_ms = 5000\nmax_delay_seconds = 2\n"));
    assert_eq!((line, key.as_str()), (19, "google.retry.max_delay_seconds"));
    match parse(Path::new("c.toml"), &format!("{GOOD}\n[google.retry]\nattempts = 3\n")) {
        Err(ConfigError::Parse { message, .. }) => assert!(message.contains("attempts"), "{message}"),
        other => panic!("an unknown retry key must be refused, got {other:?}"),
    }
}

#[test]
fn no_tables_is_an_error() {
    let text = GOOD.split("[[tables]]").next().unwrap();
    let (_, key, message) = err(text);
    assert_eq!(key, "tables");
    assert!(message.contains("[[tables]]"));
}

#[test]
fn both_credentials_kinds_is_an_error() {
    let text = format!("{GOOD}\n[google]\ncredentials = \"a.json\"\naccess_token_file = \"t\"\n");
    let (_, key, _) = err(&text);
    assert_eq!(key, "google.credentials");
}

#[test]
fn incremental_tables_and_queries_are_validated() {
    let base = GOOD.split("[[tables]]").next().unwrap().to_owned();
    let ok = format!(
        "{base}[[tables]]\nsource = \"orders\"\nmode = \"merge\"\ncursor = \"updated_at\"\nlookback = 300\n\n[[tables]]\nquery = \"SELECT 1 AS x\"\ntarget = \"q\"\n"
    );
    let c = parse(Path::new("c.toml"), &ok).unwrap();
    assert_eq!(c.tables[0].mode, LoadMode::Merge);
    assert_eq!(c.tables[0].lookback, Some(300));
    assert_eq!(c.tables[1].source, TableSource::Query("SELECT 1 AS x".into()));
    let pattern = format!(
        "{base}[[tables]]\nsource = \"public.*\"\nexclude = [\"audit_*\"]\nmode = \"append\"\ncursor = \"id\"\n"
    );
    let c = parse(Path::new("c.toml"), &pattern).unwrap();
    assert_eq!(
        c.tables[0].source,
        TableSource::Pattern { schema: Some("public".into()), pattern: "*".into(), exclude: vec!["audit_*".into()] }
    );
    let cases = [
        ("source = \"orders\"\nmode = \"merge\"", "tables[0].cursor", "incremental modes need"),
        ("source = \"orders\"\nmode = \"upsert\"", "tables[0].mode", "upsert"),
        ("query = \"SELECT 1\"", "tables[0].target", "needs `target"),
        ("query = \"DELETE FROM x\"\ntarget = \"t\"", "tables[0].query", "SELECT"),
        ("source = \"orders\"\ncast = { a = \"float\" }", "tables[0].cast.a", "float"),
        ("source = \"orders\"\ncursor = \"u\"", "tables[0].cursor", "only applies"),
        ("source = \"orders\"\nparallel_chunks = 99", "tables[0].parallel_chunks", "1 to 32"),
        ("source = \"orders\"\nsplit_across_shards = true", "tables[0].split_across_shards", "parallel_chunks = 2"),
        ("source = \"public.*\"\ntarget = \"x\"", "tables[0].target", "keep their own names"),
        ("source = \"orders\"\nexclude = [\"a\"]", "tables[0].exclude", "pattern source"),
    ];
    for (table, key, needle) in cases {
        let (_, k, m) = err(&format!("{base}[[tables]]\n{table}\n"));
        assert_eq!(k, key, "{table}: {m}");
        assert!(m.contains(needle), "{table}: {m}");
    }
    // Both engines split a table across shards.
    let mysql = base.replace("engine = \"postgres\"", "engine = \"mysql\"");
    let split = format!("{mysql}[[tables]]\nsource = \"orders\"\nparallel_chunks = 4\nsplit_across_shards = true\n");
    let c = parse(Path::new("c.toml"), &split).unwrap();
    assert!(c.tables[0].split_across_shards);
}

#[test]
fn a_url_pasted_into_the_config_never_prints_its_password() {
    let text = GOOD.replace("url_env = \"DATABASE_URL\"", "url = \"postgres://app:hunter2@db.example:5432/app\"");
    let e = parse(Path::new("c.toml"), &text).unwrap_err().to_string();
    assert!(e.contains("url"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let text = GOOD.replace("[destination]", "[google]\nbigquery_url = \"ftp://u:hunter2@x\"\n\n[destination]");
    let e = parse(Path::new("c.toml"), &text).unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn reserved_and_clashing_targets_are_refused() {
    for target in ["_aurora2bq_state", "_AURORA2BQ_runs", "orders__aurora2bq_staging_1"] {
        let text = GOOD.replace("target = \"crm_customers\"", &format!("target = {target:?}"));
        let (line, key, message) = err(&text);
        assert_eq!((line, key.as_str()), (15, "tables[1].target"), "{message}");
        assert!(message.contains("reserved"), "{message}");
    }
    let text = GOOD.replace("target = \"crm_customers\"", "target = \"ORDERS\"");
    let (_, key, message) = err(&text);
    assert_eq!(key, "tables[1].target");
    assert!(message.contains("already used"), "{message}");
}

#[test]
fn tens_of_thousands_of_tables_validate() {
    let mut text = GOOD.to_owned();
    for i in 0..40_000 {
        text.push_str(&format!("\n[[tables]]\nsource = \"t{i}\"\n"));
    }
    // The duplicate-target check was quadratic (minutes at this size); nextest's slow-test
    // report shows it if it comes back. The last entry clashing is still found.
    let c = parse(Path::new("c.toml"), &text).unwrap();
    assert_eq!(c.tables.len(), 40_002);
    text.push_str("\n[[tables]]\nsource = \"other.t17\"\n");
    let (_, key, message) = err(&text);
    assert_eq!(key, "tables[40002].target");
    assert!(message.contains("\"public.t17\"") || message.contains("\"t17\""), "{message}");
}

#[test]
fn universe_domain_is_ours_to_set() {
    let c = parse(Path::new("c.toml"), GOOD).unwrap();
    assert_eq!(c.google.universe_domain, "googleapis.com");
    let text = GOOD.replace("[destination]", "[google]\nuniverse_domain = \"not a domain\"\n\n[destination]");
    let (_, key, _) = err(&text);
    assert_eq!(key, "google.universe_domain");
}
