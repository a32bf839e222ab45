//! `POST /token`: Google's OAuth 2.0 token endpoint for the credentials a developer uses
//! locally: a service-account key (JWT bearer grant) and gcloud's application default
//! credentials (refresh-token grant).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{Map, Value, json};

use crate::keys;
use crate::state::{State, TokenInfo, now_secs};

fn err(code: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": code, "error_description": description}))).into_response()
}

pub async fn token(AxState(s): AxState<Arc<State>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let email = match field("grant_type") {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => match jwt_bearer(&s, field("assertion")) {
            Ok(e) => e,
            Err(r) => return r,
        },
        "refresh_token" => {
            let users = s.users.lock().expect("users lock");
            match users.get(field("refresh_token")) {
                Some((id, secret, email)) if id == field("client_id") && secret == field("client_secret") => {
                    email.clone()
                }
                Some(_) => return err("invalid_client", "Unauthorized"),
                None => return err("invalid_grant", "Token has been expired or revoked."),
            }
        }
        other => return err("unsupported_grant_type", &format!("Invalid grant_type: {other}")),
    };
    let token = s.issue(
        "emu-oauth",
        TokenInfo {
            email: Some(email.clone()),
            pool: String::new(),
            subject: email,
            attributes: Map::new(),
            expires_at: SystemTime::now() + Duration::from_secs(3600),
        },
    );
    Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

/// A service account's self-signed assertion: signed by a key we issued, for this endpoint.
fn jwt_bearer(s: &State, assertion: &str) -> Result<String, Response> {
    let p = keys::parse(assertion).ok_or_else(|| err("invalid_grant", "Invalid JWT: could not parse"))?;
    let kid = p.header["kid"].as_str().unwrap_or_default().to_owned();
    let (email, jwk) = s
        .sa_keys
        .lock()
        .expect("keys lock")
        .get(&kid)
        .cloned()
        .ok_or_else(|| err("invalid_grant", "Invalid JWT Signature."))?;
    if !keys::verify(&p, &jwk) {
        return Err(err("invalid_grant", "Invalid JWT Signature."));
    }
    if p.claims["iss"] != Value::String(email.clone()) {
        return Err(err("invalid_grant", "Invalid JWT: iss does not match the key's service account"));
    }
    let exp = p.claims["exp"].as_i64().unwrap_or(0);
    if exp < now_secs() {
        return Err(err(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        ));
    }
    Ok(email)
}
