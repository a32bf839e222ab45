use std::path::Path;

use super::*;

const GCLOUD: &str = r#"{
  "universe_domain": "googleapis.com",
  "type": "external_account",
  "audience": "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks/providers/eks-oidc",
  "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
  "token_url": "https://sts.googleapis.com/v1/token",
  "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/bq@proj.iam.gserviceaccount.com:generateAccessToken",
  "service_account_impersonation": { "token_lifetime_seconds": 3600 },
  "credential_source": { "file": "/var/run/service-account/token", "format": { "type": "text" } }
}"#;

fn edit(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut v: Value = serde_json::from_str(GCLOUD).unwrap();
    f(v.as_object_mut().unwrap());
    v.to_string()
}

fn problem(text: &str) -> String {
    match parse(Path::new("cred.json"), text) {
        Err(AuthError::Broken { link: Link::CredentialConfig, problem, fix }) => {
            format!("{problem} / {}", fix.unwrap_or_default())
        }
        Err(other) => panic!("wrong error {other}"),
        Ok(_) => panic!("expected an error for {text}"),
    }
}

#[test]
fn gcloud_sample_parses() {
    let c = parse(Path::new("cred.json"), GCLOUD).unwrap();
    let imp = c.impersonation.as_ref().unwrap();
    assert_eq!(imp.email, "bq@proj.iam.gserviceaccount.com");
    assert_eq!(imp.lifetime_secs, 3600);
    assert_eq!(c.pool_parts(), Some(("123456789012".into(), "eks".into(), "eks-oidc".into())));
    match &c.source {
        CredentialSource::File { path, format } => {
            assert_eq!(path, Path::new("/var/run/service-account/token"));
            assert_eq!(format, &Format::Text);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_apply_when_optional_fields_are_missing() {
    let text = edit(|o| {
        o.remove("token_url");
        o.remove("service_account_impersonation_url");
        o.remove("service_account_impersonation");
        o.remove("universe_domain");
    });
    let c = parse(Path::new("cred.json"), &text).unwrap();
    assert_eq!(c.token_url, "", "filled from aurora2bq's own universe, not the file's");
    assert_eq!(c.universe_domain, None);
    assert!(c.impersonation.is_none());
}

#[test]
fn each_broken_field_is_named() {
    let cases: Vec<(String, &str)> = vec![
        (
            edit(|o| {
                o.remove("audience");
            }),
            "audience",
        ),
        (
            edit(|o| {
                o.remove("subject_token_type");
            }),
            "subject_token_type",
        ),
        (
            edit(|o| {
                o.insert("type".into(), "service_account_x".into());
            }),
            "not supported",
        ),
        (
            edit(|o| {
                o.remove("credential_source");
            }),
            "credential_source",
        ),
        (
            edit(|o| {
                o["credential_source"]["format"]["type"] = "yaml".into();
            }),
            "format.type \"yaml\"",
        ),
        (
            edit(|o| {
                o["credential_source"]["format"]["type"] = "json".into();
            }),
            "subject_token_field_name",
        ),
        (
            edit(|o| {
                o["credential_source"]["url"] = "http://x".into();
            }),
            "ambiguous",
        ),
        (
            edit(|o| {
                o.insert("workforce_pool_user_project".into(), "p".into());
            }),
            "workforce_pool_user_project should not be set",
        ),
        (
            edit(|o| {
                o["service_account_impersonation_url"] =
                    "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/x".into();
            }),
            "cannot find the service account",
        ),
        (
            edit(|o| {
                o["service_account_impersonation"]["token_lifetime_seconds"] = 50_000.into();
            }),
            "token_lifetime_seconds",
        ),
        ("[1]".into(), "not a JSON object"),
        ("{".into(), "not valid JSON"),
    ];
    for (text, needle) in cases {
        let p = problem(&text);
        assert!(p.contains(needle), "want {needle:?} in {p}");
    }
}

#[test]
fn aws_source_is_refused_with_the_fargate_explanation() {
    let text = edit(|o| {
        o["credential_source"] = serde_json::json!({
            "environment_id": "aws1",
            "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        });
    });
    let started = std::time::Instant::now();
    let p = problem(&text);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(p.contains("Fargate"), "{p}");
    assert!(p.contains("OIDC provider"), "{p}");
}

#[test]
fn json_format_with_field_parses() {
    let text = edit(|o| {
        o["credential_source"]["format"] = serde_json::json!({"type": "json", "subject_token_field_name": "id_token"});
    });
    let c = parse(Path::new("cred.json"), &text).unwrap();
    match c.source {
        CredentialSource::File { format, .. } => {
            assert_eq!(format, Format::Json { field: "id_token".into() })
        }
        other => panic!("{other:?}"),
    }
}
