//! The other ways to obtain a token: subject tokens from a URL or a command, a
//! service-account key, gcloud's user credentials, and the lookup order of the file.

use crate::common;

use std::sync::Arc;

use aurora2bq::auth::clock::SystemClock;
use aurora2bq::auth::{self, Link};
use aurora2bq::retry;
use aurora2bq::trust::EndpointPolicy;
use aurora2bq_google_emulator::{Emulator, TokenSpec};
use common::chain::{Chain, SA, good_project};

fn dev() -> EndpointPolicy {
    EndpointPolicy::new(true, "googleapis.com")
}

async fn token_from(path: &std::path::Path) -> Result<aurora2bq::auth::AccessToken, aurora2bq::auth::AuthError> {
    auth::from_file(path, &dev(), retry::Policy::STANDARD, reqwest::Client::new(), Arc::new(SystemClock))?.token().await
}

#[tokio::test]
async fn subject_token_from_a_url_in_json_format() {
    let chain = Chain::start(good_project()).await;
    let jwt = chain.emulator.mint(&TokenSpec::default());
    // A metadata-style endpoint that wants a header and answers JSON.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::get(move |h: axum::http::HeaderMap| async move {
            if h.get("metadata-flavor").map(|v| v.as_bytes()) != Some(b"Test") {
                return (axum::http::StatusCode::FORBIDDEN, String::new());
            }
            (axum::http::StatusCode::OK, serde_json::json!({ "id_token": jwt }).to_string())
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    chain.write_cred_config(|v| {
        v["credential_source"] = serde_json::json!({
            "url": format!("http://{addr}/token"),
            "headers": {"Metadata-Flavor": "Test"},
            "format": {"type": "json", "subject_token_field_name": "id_token"},
        });
    });
    let t = token_from(&chain.cred_path).await.expect("token");
    assert_eq!(chain.emulator.token_info(t.token.expose()).unwrap().email.as_deref(), Some(SA));
}

#[tokio::test]
async fn executable_sources_need_the_opt_in() {
    let chain = Chain::start(good_project()).await;
    let jwt = chain.emulator.mint(&TokenSpec::default());
    let out = chain.dir.path().join("exec.json");
    std::fs::write(&out, serde_json::json!({"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": jwt}).to_string()).unwrap();
    chain.write_cred_config(|v| {
        v["credential_source"] = serde_json::json!({"executable": {"command": format!("cat {}", out.display()), "timeout_millis": 5000}});
    });
    let e = token_from(&chain.cred_path).await.expect_err("refused without the opt-in");
    assert_eq!(e.link(), Link::CredentialConfig);
    assert!(e.to_string().contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"), "{e}");
    // SAFETY: nextest runs each test in its own process.
    common::set_env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", Some("1".as_ref()));
    let t = token_from(&chain.cred_path).await.expect("token with the opt-in");
    assert!(chain.emulator.token_info(t.token.expose()).is_some());
}

#[tokio::test]
async fn service_account_key_and_gcloud_user_credentials() {
    let chain = Chain::start(good_project()).await;
    let key = chain.emulator.create_service_account_key(SA);
    let key_path = chain.dir.path().join("key.json");
    std::fs::write(&key_path, key.to_string()).unwrap();
    let t = token_from(&key_path).await.expect("service-account token");
    assert_eq!(chain.emulator.token_info(t.token.expose()).unwrap().email.as_deref(), Some(SA));

    // A key the token endpoint does not know (deleted): the link and the fix are named.
    let other = Emulator::start(good_project(), 0).await.unwrap();
    let mut stale = other.create_service_account_key(SA);
    stale["token_uri"] = key["token_uri"].clone();
    std::fs::write(&key_path, stale.to_string()).unwrap();
    let e = token_from(&key_path).await.expect_err("unknown key");
    assert_eq!(e.link(), Link::OauthToken);
    assert!(e.to_string().contains("keys list"), "{e}");

    let user = chain.emulator.authorized_user("dev@example.com");
    let mut user_file = user.clone();
    user_file["token_uri"] = key["token_uri"].clone();
    let adc_dir = chain.dir.path().join("gcloud");
    std::fs::create_dir_all(&adc_dir).unwrap();
    std::fs::write(adc_dir.join("application_default_credentials.json"), user_file.to_string()).unwrap();
    // Without GOOGLE_APPLICATION_CREDENTIALS, gcloud's well-known file is used.
    // SAFETY: nextest runs each test in its own process.
    common::set_env("GOOGLE_APPLICATION_CREDENTIALS", None);
    common::set_env("CLOUDSDK_CONFIG", Some(adc_dir.as_ref()));
    let path = auth::credential_path(None).unwrap();
    assert_eq!(path, adc_dir.join("application_default_credentials.json"));
    let t = token_from(&path).await.expect("user token");
    assert_eq!(chain.emulator.token_info(t.token.expose()).unwrap().email.as_deref(), Some("dev@example.com"));
    // GOOGLE_APPLICATION_CREDENTIALS comes first.
    common::set_env("GOOGLE_APPLICATION_CREDENTIALS", Some(chain.cred_path.as_ref()));
    assert_eq!(auth::credential_path(None).unwrap(), chain.cred_path);
}

#[tokio::test]
async fn key_files_must_name_google_token_endpoints_outside_development() {
    let chain = Chain::start(good_project()).await;
    let key = chain.emulator.create_service_account_key(SA);
    let path = chain.dir.path().join("key.json");
    std::fs::write(&path, key.to_string()).unwrap();
    let strict = EndpointPolicy::strict();
    let e = auth::from_file(&path, &strict, retry::Policy::STANDARD, reqwest::Client::new(), Arc::new(SystemClock))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("token_uri"), "{e}");
}
