//! `aurora2bq setup` as a user runs it: its script runs to the end (against recording
//! stand-ins for aws, gcloud, bq, kubectl and jq, since no cloud is reachable here), every
//! command it runs uses only flags those CLIs document, the overlay renders and parses into
//! Kubernetes types, and the emulated Google project and AWS account configured from exactly
//! what the script created make `doctor` pass end to end, for both token paths.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use aurora2bq::doctor::{self, Options};
use aurora2bq_google_emulator::aws::{AwsConfig, AwsOidcProvider, AwsRole};
use aurora2bq_google_emulator::{DbEngine, ProviderConfig, ServiceAccountConfig, TokenSpec};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::Value;

use crate::common::chain::PROJECT_NUMBER;
use crate::common::iam::{self, IamDb};
use crate::common::{self, bq::Bq, set_env, unique};

/// The flags each command accepts, from each CLI's reference documentation (AWS CLI v2,
/// gcloud, bq, kubectl). A command not listed here, or a flag not listed for it, fails.
const FLAGS: &[(&str, &[&str])] = &[
    ("aws eks describe-cluster", &["--name", "--region", "--query", "--output"]),
    ("aws iam get-open-id-connect-provider", &["--open-id-connect-provider-arn"]),
    ("aws iam create-open-id-connect-provider", &["--url", "--client-id-list", "--thumbprint-list", "--tags"]),
    ("aws iam get-role", &["--role-name"]),
    (
        "aws iam create-role",
        &[
            "--role-name",
            "--assume-role-policy-document",
            "--description",
            "--path",
            "--max-session-duration",
            "--tags",
        ],
    ),
    ("aws iam update-assume-role-policy", &["--role-name", "--policy-document"]),
    ("aws iam put-role-policy", &["--role-name", "--policy-name", "--policy-document"]),
    (
        "aws rds modify-db-cluster",
        &["--db-cluster-identifier", "--region", "--enable-iam-database-authentication", "--apply-immediately"],
    ),
    ("aws rds describe-db-clusters", &["--db-cluster-identifier", "--region", "--query", "--output"]),
    ("gcloud services enable", &["--project", "--async"]),
    ("gcloud iam workload-identity-pools describe", &["--project", "--location"]),
    ("gcloud iam workload-identity-pools create", &["--project", "--location", "--display-name", "--description"]),
    (
        "gcloud iam workload-identity-pools providers create-oidc",
        &[
            "--project",
            "--location",
            "--workload-identity-pool",
            "--issuer-uri",
            "--allowed-audiences",
            "--attribute-mapping",
            "--attribute-condition",
            "--display-name",
            "--description",
        ],
    ),
    ("gcloud iam service-accounts describe", &["--project"]),
    ("gcloud iam service-accounts create", &["--project", "--display-name", "--description"]),
    ("gcloud iam service-accounts add-iam-policy-binding", &["--project", "--role", "--member", "--condition"]),
    ("gcloud projects add-iam-policy-binding", &["--member", "--role", "--condition"]),
    ("bq query", &["--project_id", "--use_legacy_sql", "--location"]),
    ("kubectl create namespace", &["--dry-run", "-o"]),
    ("kubectl create job", &["--from", "-n", "--dry-run", "-o"]),
    ("kubectl apply", &["-f", "-k"]),
    ("kubectl wait", &["--for", "-n", "--timeout"]),
    ("kubectl logs", &["-n"]),
    ("jq", &[]),
];

/// Flags that take no value.
const SWITCHES: &[&str] = &["--enable-iam-database-authentication", "--apply-immediately", "--async"];

const RESOURCE_ID: &str = iam::RESOURCE_ID;

/// One recorded command: the matched command, its positional arguments and its flags.
#[derive(Debug)]
struct Call {
    command: &'static str,
    positional: Vec<String>,
    flags: BTreeMap<String, String>,
}

fn parse(argv: &[String]) -> Call {
    let joined = argv.join(" ");
    let (command, allowed) = FLAGS
        .iter()
        .filter(|(c, _)| {
            let words: Vec<&str> = c.split(' ').collect();
            argv.len() >= words.len() && argv.iter().zip(&words).all(|(a, w)| a == w)
        })
        .max_by_key(|(c, _)| c.len())
        .unwrap_or_else(|| panic!("setup.sh runs a command no documentation lists: {joined}"));
    let mut call = Call { command, positional: Vec::new(), flags: BTreeMap::new() };
    let mut rest = argv[command.split(' ').count()..].iter();
    while let Some(a) = rest.next() {
        if a.starts_with('-') && a.len() > 1 && *command != "jq" {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None if SWITCHES.contains(&a.as_str()) => (a.clone(), String::new()),
                None => (a.clone(), rest.next().cloned().unwrap_or_default()),
            };
            assert!(allowed.contains(&name.as_str()), "`{command}` has no flag {name}: {joined}");
            assert!(!value.contains('<') && !value.contains("${"), "an unfilled value in: {joined}");
            call.flags.insert(name, value);
        } else {
            call.positional.push(a.clone());
        }
    }
    call
}

/// A recording stand-in for every CLI: logs its argv as JSON, answers the lookups the script
/// reads, says "not found" to existence checks so the create paths run.
fn fake_clis(dir: &Path, issuer: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/usr/bin/env python3
import json, os, sys
name = os.path.basename(sys.argv[0])
argv = [name] + sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\n")
if name == "kubectl" and "-f" in argv:
    sys.stdin.read()
if name == "jq":
    sys.stdout.write(sys.stdin.read())
elif "describe-cluster" in argv:
    print("{issuer}")
elif "describe-db-clusters" in argv:
    print("{RESOURCE_ID}")
elif name in ("aws", "gcloud") and any(a in ("get-role", "get-open-id-connect-provider", "describe") for a in argv):
    sys.exit(1)
elif name == "kubectl" and "-o" in argv:
    print("{{}}")
"#
    );
    let fake = bin.join("fake");
    std::fs::write(&fake, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    for tool in ["aws", "gcloud", "bq", "kubectl", "jq"] {
        std::os::unix::fs::symlink(&fake, bin.join(tool)).unwrap();
    }
    bin
}

/// The rendered overlay's ServiceAccount and CronJob, by `kubectl kustomize` where it is
/// installed, else from the patch files themselves.
fn overlay(dir: &Path) -> (ServiceAccount, CronJob) {
    let overlay = dir.join("overlay");
    match std::process::Command::new("kubectl").arg("kustomize").arg(&overlay).output() {
        Ok(out) => {
            assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8(out.stdout).unwrap();
            let docs: Vec<&str> = text.split("\n---\n").collect();
            let find = |kind: &str| docs.iter().find(|d| d.contains(&format!("\nkind: {kind}\n"))).copied();
            let sa = serde_norway::from_str(find("ServiceAccount").expect("a ServiceAccount")).expect("parses");
            let cj = serde_norway::from_str(find("CronJob").expect("a CronJob")).expect("parses");
            (sa, cj)
        }
        Err(_) => {
            eprintln!("kubectl is not installed: the overlay's patches are checked, not its rendering");
            let read = |f: &str| std::fs::read_to_string(overlay.join(f)).unwrap();
            (
                serde_norway::from_str(&read("serviceaccount-patch.yaml")).unwrap(),
                serde_norway::from_str(&read("cronjob-patch.yaml")).unwrap(),
            )
        }
    }
}

async fn setup_then_doctor(token: &str) {
    let idb = IamDb::new(
        DbEngine::Postgres,
        "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');",
    )
    .await;
    let emu = &idb.chain.emulator;
    // Forget the fixture's grants: everything below comes from what setup created.
    emu.update(|c| {
        c.providers.clear();
        c.service_accounts.clear();
        c.aws = AwsConfig { account: iam::ACCOUNT.into(), ..Default::default() };
    });
    let bq = Bq::new();
    let dataset = bq.create_dataset().await;
    let config = idb.write_config(&dataset, &["items"]);
    let out = idb.chain.dir.path().join("setup");
    let db_user = unique("setup");
    let AnyName { db } = AnyName::of(&idb);
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s");
    let endpoint = format!("localhost:{}", idb.front.addr.port());
    let run = common::aurora2bq(
        &[
            "setup",
            "--config",
            config.to_str().unwrap(),
            "--cluster",
            "test-eks",
            "--namespace",
            "analytics",
            "--service-account",
            "aurora2bq",
            "--project-id",
            "test-project",
            "--project-number",
            PROJECT_NUMBER,
            "--aws-account",
            iam::ACCOUNT,
            "--region",
            iam::REGION,
            "--db-user",
            &db_user,
            "--db-cluster",
            "app",
            "--db-endpoint",
            &endpoint,
            "--database",
            &db,
            "--token",
            token,
            "--k8s-base",
            k8s.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sts-url",
            &emu.sts_url(),
            "--iam-url",
            &emu.base_url(),
        ],
        &[],
    )
    .await;
    run.assert_ok();

    // Run the script against the recording CLIs.
    let bin = fake_clis(idb.chain.dir.path(), &emu.issuer());
    let log = idb.chain.dir.path().join("cli.log");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let sh = std::process::Command::new("bash")
        .arg(out.join("setup.sh"))
        .env("PATH", path)
        .env("FAKE_LOG", &log)
        .output()
        .expect("bash");
    assert!(
        sh.status.success(),
        "setup.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&sh.stdout),
        String::from_utf8_lossy(&sh.stderr)
    );
    let calls: Vec<Call> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| parse(&serde_json::from_str::<Vec<String>>(l).unwrap()))
        .collect();
    let one = |command: &str| {
        let found: Vec<&Call> = calls.iter().filter(|c| c.command == command).collect();
        assert_eq!(found.len(), 1, "`{command}` runs once: {calls:?}");
        found[0]
    };

    // Configure both emulated clouds from exactly what the script did.
    let oidc = one("aws iam create-open-id-connect-provider");
    assert_eq!(oidc.flags["--url"], emu.issuer());
    let role = one("aws iam create-role");
    let read_json =
        |f: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap() };
    assert_eq!(role.flags["--assume-role-policy-document"], "file://aws-trust-policy.json");
    assert_eq!(one("aws iam put-role-policy").flags["--policy-document"], "file://aws-rds-connect-policy.json");
    let provider = one("gcloud iam workload-identity-pools providers create-oidc");
    let mapping: BTreeMap<String, String> = provider.flags["--attribute-mapping"]
        .split(',')
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).expect("k=v"))
        .collect();
    let binding = one("gcloud iam service-accounts add-iam-policy-binding");
    assert_eq!(binding.flags["--role"], "roles/iam.workloadIdentityUser");
    emu.update(|c| {
        c.aws.oidc_providers = vec![AwsOidcProvider {
            url: Some(oidc.flags["--url"].clone()),
            client_ids: oidc.flags["--client-id-list"].split(',').map(str::to_owned).collect(),
        }];
        c.aws.roles = vec![AwsRole {
            name: role.flags["--role-name"].clone(),
            trust_policy: read_json("aws-trust-policy.json"),
            policies: vec![read_json("aws-rds-connect-policy.json")],
        }];
        c.providers = vec![ProviderConfig {
            pool: provider.flags["--workload-identity-pool"].clone(),
            provider: provider.positional[0].clone(),
            issuer_uri: Some(provider.flags["--issuer-uri"].clone()),
            allowed_audiences: provider
                .flags
                .get("--allowed-audiences")
                .map(|a| a.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            attribute_mapping: mapping,
            attribute_condition: provider.flags.get("--attribute-condition").cloned(),
            disabled: false,
        }];
        c.service_accounts = vec![ServiceAccountConfig {
            email: binding.positional[0].clone(),
            workload_identity_users: vec![binding.flags["--member"].clone()],
            missing_permissions: vec![],
        }];
    });
    // The database grants, as the cluster's admin would run them.
    let sql = std::fs::read_to_string(out.join("database.sql")).unwrap();
    idb.db.exec(&sql).await;

    // The pod, as the overlay makes it.
    let (sa, cj) = overlay(&out);
    let role_arn = sa.metadata.annotations.unwrap_or_default()["eks.amazonaws.com/role-arn"].clone();
    let pod = cj.spec.unwrap().job_template.spec.unwrap().template.spec.unwrap();
    let container = pod.containers.iter().find(|c| c.name == "aurora2bq").expect("the container");
    let env: HashMap<String, (Option<String>, bool)> = container
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, (e.value, e.value_from.is_some())))
        .collect();
    let (url, from_secret) = env["TEST_SOURCE_URL"].clone();
    assert!(!from_secret && !env["AURORA2BQ_SOURCE_URL"].1, "the URL still comes from a Secret: {env:?}");
    let url = url.expect("the URL is a plain value");
    assert!(!url.contains(':') || url::Url::parse(&url).unwrap().password().is_none(), "a password in {url}");
    let mut cred: Value = read_json("credential-config.json");
    let google_token = match token {
        "irsa" => idb.chain.token_path.clone(),
        _ => {
            let volume = pod
                .volumes
                .unwrap_or_default()
                .into_iter()
                .find(|v| v.name == "google-token")
                .expect("the projected token volume");
            let projected = volume.projected.unwrap().sources.unwrap()[0].service_account_token.clone().unwrap();
            assert_eq!(projected.audience.as_deref(), cred["audience"].as_str(), "the projected token's audience");
            let file = idb.chain.dir.path().join("google-token");
            let spec = TokenSpec { audience: vec![projected.audience.unwrap()], ..Default::default() };
            std::fs::write(&file, emu.mint(&spec)).unwrap();
            file
        }
    };
    // Only where the kubelet puts the token differs from the pod.
    cred["credential_source"]["file"] = Value::String(google_token.display().to_string());
    std::fs::write(&idb.chain.cred_path, serde_json::to_vec(&cred).unwrap()).unwrap();
    set_env("AWS_ROLE_ARN", Some(role_arn.as_ref()));
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", Some(idb.chain.token_path.as_os_str()));
    set_env("TEST_SOURCE_URL", Some(url.as_ref()));
    let report = doctor::run(&Options { config: Some(config), write_probe: false }).await;
    assert!(report.ok, "doctor fails on what setup ({token}) set up:\n{}", report.render_text());
    assert!(idb.seen().iter().any(|t| t.refused.is_none() && t.user == db_user), "{:?}", idb.seen());
}

/// The database name of the fixture.
struct AnyName {
    db: String,
}

impl AnyName {
    fn of(idb: &IamDb) -> AnyName {
        match &idb.db {
            common::AnyDb::Pg(d) => AnyName { db: d.name.clone() },
            common::AnyDb::My(d) => AnyName { db: d.name.clone() },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_with_the_irsa_token_configures_a_passing_doctor() {
    setup_then_doctor("irsa").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_with_a_google_audience_token_configures_a_passing_doctor() {
    setup_then_doctor("audience").await;
}

/// Printed to standard output, the same set-up is one script that writes its files first.
#[tokio::test]
async fn printed_setup_is_one_script_holding_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[source]\nengine = \"mysql\"\nurl_env = \"U\"\nauth = \"rds_iam\"\n[destination]\nproject = \"p\"\ndataset = \"d\"\n[[tables]]\nsource = \"app.orders\"\n").unwrap();
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s");
    let args = [
        "setup",
        "--config",
        config.to_str().unwrap(),
        "--cluster",
        "c",
        "--namespace",
        "ns",
        "--service-account",
        "loader",
        "--project-id",
        "p",
        "--project-number",
        "1",
        "--aws-account",
        "111122223333",
        "--region",
        "eu-west-1",
        "--db-user",
        "reader",
        "--db-cluster",
        "app",
        "--db-endpoint",
        "db.example",
        "--k8s-base",
        k8s.to_str().unwrap(),
    ];
    let run = common::aurora2bq(&args, &[]).await;
    run.assert_ok();
    for part in [
        "cat > database.sql <<'AURORA2BQ_EOF'",
        "CREATE USER 'reader'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS';",
        "GRANT SELECT ON `app`.`orders` TO 'reader'@'%';",
        "cat > overlay/kustomization.yaml <<'AURORA2BQ_EOF'",
        "value: \"mysql://reader@db.example:3306/\"",
        "value: loader",
        "--allowed-audiences sts.amazonaws.com",
    ] {
        assert!(run.stdout.contains(part), "{part:?} missing from:\n{}", run.stdout);
    }
    let syntax = std::process::Command::new("bash").arg("-n").arg("-c").arg(&run.stdout).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    // A config with a password in the URL is not what setup is for: it says what to change.
    std::fs::write(
        &config,
        "[source]\nengine = \"mysql\"\nurl_env = \"U\"\n[destination]\nproject = \"p\"\ndataset = \"d\"\n[[tables]]\nsource = \"app.orders\"\n",
    )
    .unwrap();
    let run = common::aurora2bq(&args, &[]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("auth = \\\"rds_iam\\\"") || run.stderr.contains("auth = \"rds_iam\""),
        "{}",
        run.stderr
    );
}
