//! `aurora2bq doctor` against each misconfiguration of the chain, set up in the emulator:
//! the first failed check must be the broken link, with the fix for it.

use crate::common;

use aurora2bq::doctor::{self, Options, Status};
use aurora2bq_google_emulator::{KeyChoice, TokenSpec};
use common::chain::{Chain, good_project};
use common::{PgDb, bq::Bq, write_config};

struct Case {
    name: &'static str,
    setup: fn(&Chain),
    /// Run with allow_insecure_endpoints = false.
    strict: bool,
    link: &'static str,
    fix: &'static str,
}

fn token(c: &Chain, spec: TokenSpec) {
    c.write_token(&spec);
}

const CASES: &[Case] = &[
    Case {
        name: "wrong audience",
        strict: false,
        link: "STS token exchange",
        fix: "--allowed-audiences=api",
        setup: |c| token(c, TokenSpec { audience: vec!["api".into()], ..Default::default() }),
    },
    Case {
        name: "wrong issuer",
        strict: false,
        link: "STS token exchange",
        fix: "--issuer-uri=https://oidc.eks.us-east-1.amazonaws.com/id/X",
        setup: |c| {
            token(
                c,
                TokenSpec {
                    issuer: Some("https://oidc.eks.us-east-1.amazonaws.com/id/X".into()),
                    ..Default::default()
                },
            )
        },
    },
    Case {
        name: "expired token",
        strict: false,
        link: "subject token",
        fix: "expirationSeconds",
        setup: |c| token(c, TokenSpec { lifetime_secs: -7200, ..Default::default() }),
    },
    Case {
        name: "bad signature",
        strict: false,
        link: "STS token exchange",
        fix: "jwksJson",
        setup: |c| token(c, TokenSpec { key: KeyChoice::SameKidOtherKey, ..Default::default() }),
    },
    Case {
        name: "unknown signing key",
        strict: false,
        link: "STS token exchange",
        fix: "holds the token's kid",
        setup: |c| token(c, TokenSpec { key: KeyChoice::UnknownKid, ..Default::default() }),
    },
    Case {
        name: "attribute condition rejects",
        strict: false,
        link: "STS token exchange",
        fix: "attributeCondition",
        setup: |c| {
            c.emulator.update(|p| p.providers[0].attribute_condition = Some("attribute.namespace == 'prod'".into()))
        },
    },
    Case {
        name: "principalSet without the namespace",
        strict: false,
        link: "service account impersonation",
        fix: "attribute.ksa_name/analytics:aurora2bq",
        setup: |c| {
            c.emulator.update(|p| p.service_accounts[0].workload_identity_users = vec![
            "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/attribute.ksa_name/aurora2bq".into()])
        },
    },
    Case {
        name: "wrong service-account email",
        strict: false,
        link: "service account impersonation",
        fix: "gcloud iam service-accounts list",
        setup: |c| {
            c.write_cred_config(|v| {
                let url = v["service_account_impersonation_url"].as_str().unwrap().replace("aurora2bq@", "aurora@");
                v["service_account_impersonation_url"] = url.into();
            })
        },
    },
    Case {
        name: "no workloadIdentityUser binding",
        strict: false,
        link: "service account impersonation",
        fix: "gcloud iam service-accounts add-iam-policy-binding aurora2bq@test-project.iam.gserviceaccount.com --role=roles/iam.workloadIdentityUser",
        setup: |c| c.emulator.update(|p| p.service_accounts[0].workload_identity_users.clear()),
    },
    Case {
        name: "aws1 credential source",
        strict: false,
        link: "credential config",
        fix: "OIDC provider",
        setup: |c| {
            c.write_cred_config(|v| {
                v["credential_source"] = serde_json::json!({"environment_id": "aws1",
                "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
                "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials"});
            })
        },
    },
    Case {
        name: "non-Google token_url",
        strict: true,
        link: "credential config",
        fix: "https://sts.googleapis.com/v1/token",
        setup: |c| c.write_cred_config(|v| v["token_url"] = "https://sts.attacker.example/v1/token".into()),
    },
    Case {
        name: "token file missing",
        strict: false,
        link: "subject token",
        fix: "serviceAccountToken",
        setup: |c| std::fs::remove_file(&c.token_path).unwrap(),
    },
    Case {
        name: "token file empty",
        strict: false,
        link: "subject token",
        fix: "projection",
        setup: |c| std::fs::write(&c.token_path, "").unwrap(),
    },
    Case {
        name: "Kubernetes API audience",
        strict: false,
        link: "STS token exchange",
        fix: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        setup: |c| {
            token(c, TokenSpec { audience: vec!["https://kubernetes.default.svc".into()], ..Default::default() })
        },
    },
    Case {
        name: "workforce pool audience",
        strict: false,
        link: "credential config",
        fix: "workload identity pool",
        setup: |c| {
            c.write_cred_config(|v| {
                v["audience"] = "//iam.googleapis.com/locations/global/workforcePools/staff/providers/okta".into()
            })
        },
    },
    Case {
        name: "project ID instead of number",
        strict: false,
        link: "credential config",
        fix: "gcloud projects describe my-project --format='value(projectNumber)'",
        setup: |c| {
            c.write_cred_config(|v| {
                let a = v["audience"].as_str().unwrap().replace("/projects/123456789012/", "/projects/my-project/");
                v["audience"] = a.into();
            })
        },
    },
    Case {
        name: "subject_token_type does not match the token",
        strict: false,
        link: "subject token",
        fix: "\"subject_token_type\": \"urn:ietf:params:oauth:token-type:jwt\"",
        setup: |c| c.write_cred_config(|v| v["subject_token_type"] = "urn:ietf:params:oauth:token-type:saml2".into()),
    },
    Case {
        name: "credential file is a directory",
        strict: false,
        link: "credential config",
        fix: "credential-config.json",
        setup: |c| {
            let inner = c.dir.path().join("mounted");
            std::fs::create_dir(&inner).unwrap();
            std::fs::copy(&c.cred_path, inner.join("credential-config.json")).unwrap();
            std::fs::remove_file(&c.cred_path).unwrap();
            std::fs::rename(&inner, &c.cred_path).unwrap();
        },
    },
    Case {
        name: "credential file missing",
        strict: false,
        link: "credential config",
        fix: "mount the Secret",
        setup: |c| std::fs::remove_file(&c.cred_path).unwrap(),
    },
    Case {
        name: "provider disabled",
        strict: false,
        link: "STS token exchange",
        fix: "project NUMBER",
        setup: |c| c.emulator.update(|p| p.providers[0].disabled = true),
    },
];

const LINKS: [&str; 7] = [
    "aurora2bq config",
    "credential config",
    "subject token",
    "STS token exchange",
    "service account impersonation",
    "BigQuery",
    "source database",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_broken_link_and_its_fix() {
    assert!(CASES.len() >= 14);
    for case in CASES {
        let chain = Chain::start(good_project()).await;
        (case.setup)(&chain);
        let mut config = write_config(chain.dir.path(), &chain, "unused_dataset", &["t"], "");
        if case.strict {
            let text = std::fs::read_to_string(&config)
                .unwrap()
                .replace("allow_insecure_endpoints = true", "allow_insecure_endpoints = false")
                .lines()
                // Strict means Google's own BigQuery endpoints too.
                .filter(|l| !l.starts_with("bigquery_url") && !l.starts_with("storage_write_url"))
                .collect::<Vec<_>>()
                .join("\n");
            config = chain.dir.path().join("strict.toml");
            std::fs::write(&config, text).unwrap();
        }
        let report = doctor::run(&Options { config: Some(config), write_probe: false }).await;
        assert!(!report.ok, "{}: doctor passed:\n{}", case.name, report.render_text());
        let broken = report.broken().unwrap();
        assert_eq!(broken.name, case.link, "{}:\n{}", case.name, report.render_text());
        // Every link keeps its number, whatever broke before it.
        let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, LINKS, "{}:\n{}", case.name, report.render_text());
        let problem = broken.problem.clone().unwrap_or_default();
        assert!(!problem.contains("fix:"), "{}: fix printed twice: {problem}", case.name);
        let fix = broken.fix.clone().unwrap_or_default();
        assert!(fix.contains(case.fix), "{}: fix {fix:?} lacks {:?}", case.name, case.fix);
        // Never advise widening a trust boundary.
        assert!(!(case.name == "Kubernetes API audience" && fix.contains("allowed-audiences")), "{fix}");
        // Every check after the broken one is marked as not run.
        let after = report.checks.iter().skip_while(|c| c.status != Status::Failed).skip(1);
        assert!(after.clone().all(|c| matches!(c.status, Status::NotRun | Status::Skipped)), "{}", case.name);
        let text = report.render_text();
        assert!(
            !text.contains("eyJ") && !text.contains("emu-sa.") && !text.contains("emu-sts."),
            "{}: a token was printed",
            case.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_working_setup_and_reports_json() {
    let db = PgDb::new().await;
    db.exec("CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');").await;
    let dataset = Bq::new().create_dataset().await;
    let chain = Chain::start(good_project()).await;
    let config = write_config(chain.dir.path(), &chain, &dataset, &["t"], "");
    let run = common::aurora2bq(
        &["doctor", "--config", config.to_str().unwrap(), "--write-probe", "--json"],
        &[("TEST_SOURCE_URL", &db.url)],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(v["ok"], true);
    let names: Vec<&str> = v["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "aurora2bq config",
            "credential config",
            "subject token",
            "STS token exchange",
            "service account impersonation",
            "BigQuery",
            "source database"
        ]
    );
    assert!(run.stdout.contains("write probe"), "{}", run.stdout);
    // The development switch never goes unnoticed.
    assert!(run.stdout.contains("allow_insecure_endpoints is on"), "{}", run.stdout);
    // The probe left nothing behind.
    assert!(Bq::new().tables(&dataset).await.is_empty());

    // A missing SELECT grant is the source link, with the GRANT to run.
    let role = common::unique("reader");
    db.exec(&format!("CREATE ROLE {role} LOGIN;")).await;
    let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let run = common::aurora2bq(&["doctor", "--config", config.to_str().unwrap()], &[("TEST_SOURCE_URL", &url)]).await;
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role};")).await;
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(run.stdout.contains("[FAIL] 7. source database"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("GRANT SELECT ON t TO {role};")), "{}", run.stdout);
}

/// No false green: what a run needs beyond reading the dataset (query jobs, the location
/// its jobs run in) fails the doctor with the fix, as it would fail the run; applying the
/// fix makes both pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_where_a_run_would_and_its_fix_works() {
    let db = PgDb::new().await;
    db.exec("CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');").await;
    let dataset = Bq::new().create_dataset().await;
    let chain = Chain::start(good_project()).await;
    let config = write_config(chain.dir.path(), &chain, &dataset, &["t"], "");
    let (path, env) = (config.to_str().unwrap(), [("TEST_SOURCE_URL", db.url.as_str())]);
    let (doctor_args, run_args) = (["doctor", "--config", path, "--write-probe"], ["run", "--config", path]);
    let doctor = || common::aurora2bq(&doctor_args, &env);
    let run = || common::aurora2bq(&run_args, &env);

    // The service account lacks roles/bigquery.jobUser.
    chain.emulator.update(|p| p.service_accounts[0].missing_permissions = vec!["bigquery.jobs.create".into()]);
    let d = doctor().await;
    assert_eq!(d.code, Some(2), "{}", d.stdout);
    assert!(d.stdout.contains("[FAIL] 6. BigQuery"), "{}", d.stdout);
    let fix = format!(
        "gcloud projects add-iam-policy-binding test-project --member=serviceAccount:{} --role=roles/bigquery.jobUser",
        common::chain::SA
    );
    assert!(d.stdout.contains(&fix), "{}", d.stdout);
    assert_ne!(run().await.code, Some(0), "the run fails as the doctor said");
    chain.emulator.update(|p| p.service_accounts[0].missing_permissions.clear());
    assert_eq!(doctor().await.code, Some(0), "the fix applied, the doctor passes");

    // The service account cannot create tables in the dataset (no roles/bigquery.dataEditor):
    // reading the dataset works, the write probe does not.
    chain.emulator.update(|p| p.service_accounts[0].missing_permissions = vec!["bigquery.tables.create".into()]);
    let d = doctor().await;
    assert_eq!(d.code, Some(2), "{}", d.stdout);
    let fix = format!(
        "bq add-iam-policy-binding --member=serviceAccount:{} --role=roles/bigquery.dataEditor test-project:{dataset}",
        common::chain::SA
    );
    assert!(d.stdout.contains(&fix), "{}", d.stdout);
    assert_ne!(run().await.code, Some(0), "the run fails as the doctor said");
    chain.emulator.update(|p| p.service_accounts[0].missing_permissions.clear());
    assert_eq!(doctor().await.code, Some(0), "the fix applied, the doctor passes");

    // destination.location differs from the dataset's.
    let actual = Bq::new().dataset_location(&dataset).await;
    let text = std::fs::read_to_string(&config).unwrap();
    let wrong = if actual.eq_ignore_ascii_case("asia-northeast1") { "europe-west1" } else { "asia-northeast1" };
    std::fs::write(&config, text.replace("[destination]\n", &format!("[destination]\nlocation = \"{wrong}\"\n")))
        .unwrap();
    let d = doctor().await;
    assert_eq!(d.code, Some(2), "{}", d.stdout);
    let fix = format!("destination.location = \"{actual}\"");
    assert!(d.stdout.contains(&fix), "{}", d.stdout);
    std::fs::write(&config, text.replace("[destination]\n", &format!("[destination]\nlocation = \"{actual}\"\n")))
        .unwrap();
    let d = doctor().await;
    assert_eq!(d.code, Some(0), "{}", d.stdout);
    run().await.assert_ok();
}

/// GOOGLE_APPLICATION_CREDENTIALS naming a folder (a Secret mounted as one): the doctor
/// names the variable and the file inside, and pointing the variable there works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_folder_is_diagnosed_by_its_variable_and_the_fix_works() {
    let chain = Chain::start(good_project()).await;
    let config = write_config(chain.dir.path(), &chain, "unused_dataset", &["t"], "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text: String = text.lines().filter(|l| !l.starts_with("credentials =")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&config, text).unwrap();
    let folder = chain.dir.path().join("secret-volume");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&chain.cred_path, folder.join("credential-config.json")).unwrap();
    let args = ["doctor", "--config", config.to_str().unwrap()];
    let folder_env = folder.to_str().unwrap().to_owned();
    let d = common::aurora2bq(
        &args,
        &[("GOOGLE_APPLICATION_CREDENTIALS", &folder_env), ("TEST_SOURCE_URL", "postgres://x@127.0.0.1:1/x")],
    )
    .await;
    assert!(d.stdout.contains("[FAIL] 2. credential config"), "{}", d.stdout);
    assert!(
        d.stdout.contains("GOOGLE_APPLICATION_CREDENTIALS names") && d.stdout.contains("is a directory"),
        "{}",
        d.stdout
    );
    let inner = folder.join("credential-config.json");
    assert!(d.stdout.contains(inner.to_str().unwrap()), "{}", d.stdout);
    assert!(d.stdout.contains("[----] 3. subject token"), "later links keep their numbers: {}", d.stdout);
    let d = common::aurora2bq(
        &args,
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", inner.to_str().unwrap()),
            ("TEST_SOURCE_URL", "postgres://x@127.0.0.1:1/x"),
        ],
    )
    .await;
    assert!(d.stdout.contains("[ok  ] 2. credential config"), "{}", d.stdout);
    assert!(d.stdout.contains("[ok  ] 5. service account impersonation"), "{}", d.stdout);
}

/// MySQL gets MySQL's GRANT, which works; a refused BigQuery endpoint is reported at once,
/// in plain words, with one fix line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_grants_and_refused_endpoints_are_diagnosed_plainly() {
    let db = common::MyDb::new().await;
    db.exec("CREATE TABLE secret (id int PRIMARY KEY);").await;
    let (user, url) = db.user_without_select("secret").await;
    let dataset = Bq::new().create_dataset().await;
    let chain = Chain::start(good_project()).await;
    let config = write_config(chain.dir.path(), &chain, &dataset, &["secret"], "");
    let text = std::fs::read_to_string(&config).unwrap().replace("engine = \"postgres\"", "engine = \"mysql\"");
    std::fs::write(&config, &text).unwrap();
    let args = ["doctor", "--config", config.to_str().unwrap()];
    let d = common::aurora2bq(&args, &[("TEST_SOURCE_URL", &url)]).await;
    let grant = format!("GRANT SELECT ON {}.secret TO '{user}'@'%';", db.name);
    assert!(d.stdout.contains("[FAIL] 7. source database") && d.stdout.contains(&grant), "{}", d.stdout);
    assert!(!d.stdout.contains("USAGE"), "no PostgreSQL advice: {}", d.stdout);
    assert_eq!(d.stdout.matches(&grant).count(), 1, "the fix once: {}", d.stdout);
    db.exec(&grant).await;
    let d = common::aurora2bq(&args, &[("TEST_SOURCE_URL", &url)]).await;
    db.exec(&format!("DROP USER '{user}'@'%'")).await;
    assert_eq!(d.code, Some(0), "the GRANT it named works: {}", d.stdout);

    // Nothing listens where google.bigquery_url points.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = text.replace(&chain.rest_gate, &format!("http://127.0.0.1:{port}"));
    std::fs::write(&config, text).unwrap();
    let started = std::time::Instant::now();
    let d = common::aurora2bq(&args, &[("TEST_SOURCE_URL", &db.url)]).await;
    assert!(
        d.stdout.contains("[FAIL] 6. BigQuery") && d.stdout.contains("nothing accepts connections"),
        "{}",
        d.stdout
    );
    assert_eq!(d.stdout.matches("fix:").count(), 1, "{}", d.stdout);
    assert!(d.stdout.contains("google.bigquery_url"), "{}", d.stdout);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "a refused connection is not retried for long");
}
