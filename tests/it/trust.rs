//! A hostile credential file cannot make aurora2bq contact a host outside the universe its
//! own configuration names. Every HTTP(S) request of the binary goes through a tripwire
//! proxy (HTTPS_PROXY/HTTP_PROXY) that records the target it was asked for and answers
//! nothing; a control case shows the tripwire sees a normal config's first call.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use aurora2bq_google_emulator::keys::SigningKey;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Records the request line of every connection ("CONNECT host:443 ..." or "GET http://...").
struct Tripwire {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Tripwire {
    async fn start() -> Tripwire {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut line = String::new();
                    let _ = BufReader::new(sock).read_line(&mut line).await;
                    log.lock().unwrap().push(line.trim().to_owned());
                    // Dropped: the client sees the connection close and gives up.
                });
            }
        });
        Tripwire { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

const AUDIENCE: &str =
    "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/providers/eks-oidc";
const SA_URL: &str = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/bq@p.iam.gserviceaccount.com:generateAccessToken";

fn external(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let token = dir.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").unwrap();
    let mut v = serde_json::json!({
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": SA_URL,
        "credential_source": { "file": token, "format": { "type": "text" } },
    });
    edit(&mut v);
    v
}

fn key_file(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let key = SigningKey::generate("k1");
    let mut v = serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": key.pkcs8_pem(),
        "client_email": "bq@p.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
    });
    edit(&mut v);
    v
}

fn user_file(edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let mut v = serde_json::json!({
        "type": "authorized_user",
        "client_id": "id.apps.googleusercontent.com",
        "client_secret": "hunter2-client-secret",
        "refresh_token": "hunter2-refresh",
    });
    edit(&mut v);
    v
}

struct Case {
    name: &'static str,
    credential: fn(&Path) -> serde_json::Value,
    /// Appended to `[google]`.
    google: &'static str,
    /// Expected in the refusal.
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "universe_domain names the attacker's universe",
        credential: |d| {
            external(d, |v| {
                v["universe_domain"] = "attacker.example".into();
                v["token_url"] = "https://sts.attacker.example/v1/token".into();
                v["service_account_impersonation_url"] = SA_URL.replace("googleapis.com", "attacker.example").into();
            })
        },
        google: "",
        says: "universe_domain is \"attacker.example\"",
    },
    Case {
        name: "universe_domain alone, token_url left to its default",
        credential: |d| {
            external(d, |v| {
                v["universe_domain"] = "attacker.example".into();
                v.as_object_mut().unwrap().remove("token_url");
            })
        },
        google: "",
        says: "universe_domain",
    },
    Case {
        name: "token_url on a foreign host",
        credential: |d| external(d, |v| v["token_url"] = "https://sts.attacker.example/v1/token".into()),
        google: "",
        says: "token_url",
    },
    Case {
        name: "impersonation on a foreign host",
        credential: |d| {
            external(d, |v| {
                v["service_account_impersonation_url"] =
                    SA_URL.replace("googleapis.com", "googleapis.com.attacker.example").into()
            })
        },
        google: "",
        says: "service_account_impersonation_url",
    },
    Case {
        name: "credential_source.url on plain HTTP metadata",
        credential: |d| {
            external(d, |v| v["credential_source"] = serde_json::json!({"url": "http://169.254.169.254/latest/token"}))
        },
        google: "",
        says: "plain HTTP",
    },
    Case {
        name: "credential_source.url with a password",
        credential: |d| {
            external(d, |v| v["credential_source"] = serde_json::json!({"url": "https://u:hunter2@idp.example/token"}))
        },
        google: "",
        says: "password",
    },
    Case {
        name: "the development switch does not reach remote hosts",
        credential: |d| external(d, |v| v["token_url"] = "http://sts.attacker.example/v1/token".into()),
        google: "allow_insecure_endpoints = true\n",
        says: "token_url",
    },
    Case {
        name: "service-account key with a foreign token_uri",
        credential: |_| key_file(|v| v["token_uri"] = "https://oauth2.attacker.example/token".into()),
        google: "",
        says: "token_uri",
    },
    Case {
        name: "service-account key of another universe",
        credential: |_| {
            key_file(|v| {
                v["universe_domain"] = "attacker.example".into();
                v["token_uri"] = "https://oauth2.attacker.example/token".into();
            })
        },
        google: "",
        says: "universe_domain",
    },
    Case {
        name: "gcloud user credentials with a foreign token_uri",
        credential: |_| user_file(|v| v["token_uri"] = "https://oauth2.attacker.example/token".into()),
        google: "",
        says: "token_uri",
    },
    Case {
        name: "BigQuery endpoint outside the universe",
        credential: |d| external(d, |_| {}),
        google: "bigquery_url = \"https://bigquery.attacker.example\"\n",
        says: "google.bigquery_url",
    },
];

fn config(dir: &Path, cred: &serde_json::Value, google: &str) -> std::path::PathBuf {
    let cred_path = dir.join("cred.json");
    std::fs::write(&cred_path, cred.to_string()).unwrap();
    let text = format!(
        "[source]\nengine = \"postgres\"\nurl_env = \"TEST_SOURCE_URL\"\n\n[destination]\nproject = \"p\"\n\
         dataset = \"d\"\n\n[google]\ncredentials = \"{}\"\n{google}\n[[tables]]\nsource = \"t\"\n",
        cred_path.display()
    );
    let path = dir.join("aurora2bq.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn run_through(tripwire: &Tripwire, args: &[&str]) -> common::Run {
    let proxy = tripwire.url.as_str();
    let env = [
        ("HTTPS_PROXY", proxy),
        ("HTTP_PROXY", proxy),
        ("https_proxy", proxy),
        ("http_proxy", proxy),
        ("ALL_PROXY", proxy),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
        ("TEST_SOURCE_URL", "postgres://nobody:hunter2@127.0.0.1:1/none"),
        ("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "0"),
    ];
    common::aurora2bq(args, &env).await
}

#[tokio::test]
async fn a_hostile_credential_file_contacts_nothing() {
    for case in CASES {
        let tripwire = Tripwire::start().await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &(case.credential)(dir.path()), case.google);
        let cfg = cfg.to_str().unwrap();
        for args in [vec!["doctor", "--config", cfg], vec!["run", "--config", cfg]] {
            let out = run_through(&tripwire, &args).await;
            let all = format!("{}\n{}", out.stdout, out.stderr);
            assert_ne!(out.code, Some(0), "{} ({}): accepted\n{all}", case.name, args[0]);
            assert!(all.contains(case.says), "{} ({}): refusal lacks {:?}\n{all}", case.name, args[0], case.says);
            assert!(!all.contains("hunter2"), "{} ({}): a secret was printed\n{all}", case.name, args[0]);
            if args[0] == "doctor" {
                let link = if case.says.starts_with("google.") { "aurora2bq config" } else { "credential config" };
                let broken = all.lines().find(|l| l.contains("[FAIL]")).unwrap_or_default();
                assert!(broken.contains(link) || case.says.starts_with("google."), "{}: {broken}\n{all}", case.name);
            }
        }
        assert_eq!(tripwire.seen(), Vec::<String>::new(), "{}: a connection was attempted", case.name);
    }
}

/// The control: the tripwire does see the first call of a config that is allowed, so the
/// empty lists above mean nothing was attempted, not that the proxy was bypassed.
#[tokio::test]
async fn the_tripwire_sees_a_trusted_configs_call() {
    let tripwire = Tripwire::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &external(dir.path(), |_| {}), "[google.retry]\nmax_attempts = 1\n");
    let out = run_through(&tripwire, &["run", "--config", cfg.to_str().unwrap()]).await;
    assert_ne!(out.code, Some(0));
    let seen = tripwire.seen();
    assert!(seen.iter().any(|l| l.starts_with("CONNECT sts.googleapis.com:443")), "{seen:?}\n{}", out.stderr);
}
