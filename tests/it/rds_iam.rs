//! RDS IAM database authentication end to end: no password anywhere. The pod's IRSA token
//! goes to the emulated AWS STS, whose credentials sign an RDS auth token per connection;
//! the emulator's RDS front checks each token with its own SigV4 code and lets the session
//! through to the real PostgreSQL or MariaDB only if it is valid for this host, port, region
//! and user, signed with live credentials whose role holds `rds-db:connect`.

use std::time::Duration;

use aurora2bq::config::{Engine, SourceAuth};
use aurora2bq::doctor::{self, Options, Status};
use aurora2bq::source::{self, BatchLimits};
use aurora2bq_google_emulator::DbEngine;
use aurora2bq_google_emulator::aws::AwsOidcProvider;

use crate::common::iam::{self, IamDb, connect_policy, trust_policy};
use crate::common::{self, arrow_text, bq::Bq, set_env};

const ITEMS_PG: &str = "CREATE TABLE items (id int PRIMARY KEY, name text, amount numeric(12,2));
    INSERT INTO items SELECT g, 'ünïcode ' || g, g * 1.25 FROM generate_series(1, 300) g;";
const ITEMS_MY: &str = "CREATE TABLE items (id int PRIMARY KEY, name varchar(40), amount decimal(12,2));
    INSERT INTO items WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300)
    SELECT n, CONCAT('ünïcode ', n), n * 1.25 FROM g;";

/// `aurora2bq run` through the IAM path lands every row unchanged, and every connection's
/// password was a valid token.
async fn keyless_run(engine: DbEngine, ddl: &str) {
    let idb = IamDb::new(engine, ddl).await;
    let bq = Bq::new();
    let dataset = bq.create_dataset().await;
    let config = idb.write_config(&dataset, &["items"]);
    let env = idb.irsa_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = common::aurora2bq(&["run", "--config", config.to_str().unwrap()], &env).await;
    run.assert_ok();
    let rows = bq.query(&format!("SELECT id, name, CAST(amount AS STRING) FROM {dataset}.items ORDER BY id")).await;
    assert_eq!(rows.len(), 300);
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let mut got: Vec<String> = row.iter().map(|v| v.as_str().unwrap_or("NULL").to_owned()).collect();
        got[2] = got[2].trim_end_matches('0').trim_end_matches('.').to_owned();
        let amount = format!("{:.2}", n as f64 * 1.25);
        let amount = amount.trim_end_matches('0').trim_end_matches('.');
        assert_eq!(got, vec![n.to_string(), format!("ünïcode {n}"), amount.to_owned()], "row {n}");
    }
    let seen = idb.seen();
    assert!(!seen.is_empty(), "the front saw no token");
    for t in &seen {
        assert_eq!(t.refused, None, "a token was refused: {t:?}");
        assert_eq!(t.user, idb.user);
        assert!(t.access_key.starts_with("ASIA"), "{t:?}");
    }
    assert_eq!(idb.chain.emulator.aws_sts_calls(), 1, "one role session serves the run");
    for secret in ["X-Amz-Signature", "X-Amz-Security-Token", "FwoG"] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{secret} in the output");
    }
}

// Multi-threaded: the RDS front's sessions must keep running while a database fixture's
// Drop waits for its DROP DATABASE, which waits for those sessions to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_run_is_keyless_end_to_end() {
    keyless_run(DbEngine::Postgres, ITEMS_PG).await;
}

// Multi-threaded: the RDS front's sessions must keep running while a database fixture's
// Drop waits for its DROP DATABASE, which waits for those sessions to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_run_is_keyless_end_to_end() {
    keyless_run(DbEngine::Mysql, ITEMS_MY).await;
}

/// The source settings of a library-level read through the IAM path.
fn iam_source(idb: &IamDb, dir: &std::path::Path) -> aurora2bq::config::SourceConfig {
    let engine = if idb.engine == DbEngine::Postgres { Engine::Postgres } else { Engine::Mysql };
    let mut cfg = arrow_text::source_config(engine, &idb.url, dir, aurora2bq::config::ZeroDates::Error);
    cfg.ca_file = Some(idb.ca_file.clone());
    cfg.auth = SourceAuth::RdsIam(aurora2bq::config::IamConfig {
        region: Some(iam::REGION.into()),
        role_arn: Some(iam::role_arn()),
        token_file: Some(idb.chain.token_path.clone()),
        sts_url: Some(url::Url::parse(&idb.chain.emulator.aws_sts_url()).unwrap()),
    });
    cfg
}

/// Credentials that expire are replaced before a connection needs them, and each new
/// connection signs its own token: the front refuses tokens signed with expired credentials,
/// so without the refresh the second table could not be read.
// Multi-threaded: the RDS front's sessions must keep running while a database fixture's
// Drop waits for its DROP DATABASE, which waits for those sessions to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_are_refreshed_and_each_connection_signs_anew() {
    for engine in [DbEngine::Postgres, DbEngine::Mysql] {
        let idb = IamDb::new(engine, if engine == DbEngine::Postgres { ITEMS_PG } else { ITEMS_MY }).await;
        idb.chain.emulator.update(|c| c.aws.credential_lifetime_secs = 2);
        let dir = tempfile::tempdir().unwrap();
        let cfg = iam_source(&idb, dir.path());
        let src = source::connect(&cfg, BatchLimits { rows: 100, bytes: 1 << 20 }).await.expect("connect");
        let table = aurora2bq::config::TableConfig::simple(None, "items");
        let first = src.open(&table, None).await.expect("first table");
        drop(first);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let second = src.open(&table, None).await.expect("a table opened after the credentials expired");
        drop(second);
        let seen = idb.seen();
        assert_eq!(seen.len(), 2, "{engine:?}: {seen:?}");
        assert!(seen.iter().all(|t| t.refused.is_none()), "{engine:?}: {seen:?}");
        assert_ne!(
            seen[0].access_key, seen[1].access_key,
            "{engine:?}: the second connection reused expired credentials"
        );
        assert_ne!(seen[0].amz_date, seen[1].amz_date, "{engine:?}: the second connection reused the first token");
        assert_eq!(idb.chain.emulator.aws_sts_calls(), 2);
    }
}

struct Case {
    name: &'static str,
    /// Breaks one link.
    breaks: fn(&IamDb),
    link: &'static str,
    fix_says: fn(&IamDb) -> Vec<String>,
}

fn apply_env(idb: &IamDb) {
    for (k, v) in idb.irsa_env() {
        set_env(k, Some(v.as_ref()));
    }
}

const CASES: &[Case] = &[
    Case {
        name: "no web-identity token mounted",
        breaks: |_| set_env("AWS_WEB_IDENTITY_TOKEN_FILE", Some("/nonexistent/token".as_ref())),
        link: "AWS web-identity token",
        fix_says: |_| vec!["eks.amazonaws.com/role-arn".into()],
    },
    Case {
        name: "role not set (no IRSA annotation)",
        breaks: |_| set_env("AWS_ROLE_ARN", None),
        link: "AWS web-identity token",
        fix_says: |_| vec!["eks.amazonaws.com/role-arn".into()],
    },
    Case {
        name: "OIDC provider not registered",
        breaks: |i| i.chain.emulator.update(|c| c.aws.oidc_providers.clear()),
        link: "AWS role (STS AssumeRoleWithWebIdentity)",
        fix_says: |_| {
            vec!["aws iam create-open-id-connect-provider --url".into(), "--client-id-list sts.amazonaws.com".into()]
        },
    },
    Case {
        name: "trust policy names another service account",
        breaks: |i| {
            let issuer = i.chain.emulator.issuer();
            i.chain
                .emulator
                .update(|c| c.aws.roles[0].trust_policy = trust_policy(&issuer, "system:serviceaccount:other:sa"))
        },
        link: "AWS role (STS AssumeRoleWithWebIdentity)",
        fix_says: |i| {
            let id = aurora2bq_google_emulator::aws::provider_id(&i.chain.emulator.issuer());
            vec![
                format!("arn:aws:iam::{}:oidc-provider/{id}", iam::ACCOUNT),
                format!("{id}:sub = system:serviceaccount:analytics:aurora2bq"),
                "update-assume-role-policy".into(),
            ]
        },
    },
    Case {
        name: "role without rds-db:connect",
        breaks: |i| i.chain.emulator.update(|c| c.aws.roles[0].policies.clear()),
        link: "source database",
        fix_says: |i| {
            vec![
                "\"Action\": \"rds-db:connect\"".into(),
                format!("arn:aws:rds-db:{}:{}:dbuser:<cluster resource id>/{}", iam::REGION, iam::ACCOUNT, i.user),
            ]
        },
    },
];

/// `doctor` stops at the broken AWS link with its fix; once the fix is applied, it passes.
// Multi-threaded: the RDS front's sessions must keep running while a database fixture's
// Drop waits for its DROP DATABASE, which waits for those sessions to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_broken_aws_link_and_its_fix_works() {
    let idb = IamDb::new(DbEngine::Postgres, ITEMS_PG).await;
    let bq = Bq::new();
    let dataset = bq.create_dataset().await;
    let config = idb.write_config(&dataset, &["items"]);
    let options = Options { config: Some(config.clone()), write_probe: false };
    let doctor = || doctor::run(&options);
    apply_env(&idb);
    set_env("TEST_SOURCE_URL", Some(idb.url.as_ref()));
    let report = doctor().await;
    assert!(report.ok, "the good set-up fails:\n{}", report.render_text());
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert!(
        names.ends_with(&["AWS web-identity token", "AWS role (STS AssumeRoleWithWebIdentity)", "source database"]),
        "{names:?}"
    );

    for case in CASES {
        (case.breaks)(&idb);
        let report = doctor().await;
        let text = report.render_text();
        let broken = report.broken().unwrap_or_else(|| panic!("{}: doctor passed:\n{text}", case.name));
        assert_eq!(broken.name, case.link, "{}:\n{text}", case.name);
        let fix = broken.fix.clone().unwrap_or_default();
        for part in (case.fix_says)(&idb) {
            assert!(fix.contains(&part), "{}: the fix does not say {part:?}:\n{text}", case.name);
        }
        assert!(
            report.checks.iter().skip_while(|c| c.status != Status::Failed).skip(1).all(|c| c.status != Status::Ok)
        );
        // Apply the fix: the set-up as the fix describes it.
        apply_env(&idb);
        let issuer = idb.chain.emulator.issuer();
        let user = idb.user.clone();
        idb.chain.emulator.update(|c| {
            c.aws.oidc_providers = vec![AwsOidcProvider { url: None, client_ids: vec!["sts.amazonaws.com".into()] }];
            c.aws.roles[0].trust_policy = trust_policy(&issuer, "system:serviceaccount:analytics:aurora2bq");
            c.aws.roles[0].policies = vec![connect_policy(&user)];
        });
        let report = doctor().await;
        assert!(report.ok, "{}: still broken after the fix:\n{}", case.name, report.render_text());
    }

    // A user not granted rds_iam: the token is compared with a password. The fix is SQL,
    // which the test runs as printed.
    idb.db.exec(&format!("REVOKE rds_iam FROM {}", idb.user)).await;
    let report = doctor().await;
    let broken = report.broken().expect("doctor passed without the IAM grant");
    assert_eq!(broken.name, "source database", "{}", report.render_text());
    let fix = broken.fix.clone().unwrap_or_default();
    let sql = fix.split_once(": ").map(|(_, s)| s).expect("the fix carries SQL");
    assert_eq!(sql, format!("GRANT rds_iam TO \"{}\";", idb.user));
    idb.db.exec(sql).await;
    let report = doctor().await;
    assert!(report.ok, "still broken after `{sql}`:\n{}", report.render_text());
}

/// MySQL cannot say which link failed: the fix names both, and an account whose user does
/// not take IAM tokens is refused like one whose role lacks rds-db:connect.
// Multi-threaded: the RDS front's sessions must keep running while a database fixture's
// Drop waits for its DROP DATABASE, which waits for those sessions to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_refusals_name_the_plugin_and_the_policy() {
    let idb = IamDb::new(DbEngine::Mysql, ITEMS_MY).await;
    idb.chain.emulator.update(|c| c.aws.roles[0].policies.clear());
    let dir = tempfile::tempdir().unwrap();
    let cfg = iam_source(&idb, dir.path());
    let err = match source::connect(&cfg, BatchLimits { rows: 1, bytes: 1024 }).await {
        Ok(_) => panic!("connected without rds-db:connect"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("AWSAuthenticationPlugin") && err.contains("rds-db:connect"), "{err}");
    assert!(idb.seen()[0].refused.as_deref().unwrap_or_default().contains("rds-db:connect"), "{:?}", idb.seen());
}
