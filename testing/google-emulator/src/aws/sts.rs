//! `POST /aws-sts/`: `AssumeRoleWithWebIdentity` checked as AWS checks it (the account's OIDC
//! provider for the token's issuer, the issuer's keys, the audience among the provider's
//! client IDs, expiry, then the role's trust policy with `ISSUER:sub` and `ISSUER:aud`),
//! answering with AWS's XML, errors included.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Form;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Issued, policy, provider_id};
use crate::keys;
use crate::state::{State, now_secs};

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            escape(message),
            uuid::Uuid::new_v4()
        ),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const DENIED: &str = "Not authorized to perform sts:AssumeRoleWithWebIdentity";

pub async fn assume_role(AxState(s): AxState<Arc<State>>, Form(f): Form<HashMap<String, String>>) -> Response {
    s.aws.count();
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    if field("Action") != "AssumeRoleWithWebIdentity" || field("Version") != "2011-06-15" {
        return error(StatusCode::BAD_REQUEST, "InvalidAction", "Could not find operation for this version");
    }
    let session = field("RoleSessionName");
    let session_ok = (2..=64).contains(&session.len())
        && session.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !session_ok {
        return error(StatusCode::BAD_REQUEST, "ValidationError", "1 validation error detected: roleSessionName");
    }
    let cfg = s.config.read().expect("config lock").aws.clone();
    let role_arn = field("RoleArn");
    let role = role_arn
        .strip_prefix(&format!("arn:aws:iam::{}:role/", cfg.account))
        .and_then(|name| cfg.roles.iter().find(|r| r.name == name));
    let Some(parsed) = keys::parse(field("WebIdentityToken")) else {
        return error(StatusCode::BAD_REQUEST, "InvalidIdentityToken", "Couldn't parse the provided JWT");
    };
    let iss = parsed.claims["iss"].as_str().unwrap_or_default().to_owned();
    let Some(provider) = cfg.oidc_providers.iter().find(|p| p.url.clone().unwrap_or_else(|| s.issuer.clone()) == iss)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            &format!("No OpenIDConnect provider found in your account for {iss}"),
        );
    };
    let kid = parsed.header["kid"].as_str().unwrap_or_default();
    let key =
        s.jwks_of(&iss).and_then(|j| j["keys"].as_array().and_then(|ks| ks.iter().find(|k| k["kid"] == kid).cloned()));
    if !key.is_some_and(|k| keys::verify(&parsed, &k)) {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "The web identity token that was passed could not be validated by AWS. Get a new identity token from \
             the identity provider and then retry the request.",
        );
    }
    let aud: Vec<String> = match &parsed.claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let Some(aud) = aud.into_iter().find(|a| provider.client_ids.contains(a)) else {
        return error(StatusCode::BAD_REQUEST, "InvalidIdentityToken", "Incorrect token audience");
    };
    let exp = parsed.claims["exp"].as_i64().unwrap_or(0);
    if exp < now_secs() {
        return error(
            StatusCode::BAD_REQUEST,
            "ExpiredTokenException",
            "Token expired: current date/time must be before the expiration date/time",
        );
    }
    let Some(role) = role else {
        return error(StatusCode::FORBIDDEN, "AccessDenied", DENIED);
    };
    let id = provider_id(&iss);
    let mut context = HashMap::new();
    context.insert(format!("{id}:sub"), parsed.claims["sub"].as_str().unwrap_or_default().to_owned());
    context.insert(format!("{id}:aud"), aud.clone());
    let federated = format!("arn:aws:iam::{}:oidc-provider/{id}", cfg.account);
    let req = policy::Request {
        action: "sts:AssumeRoleWithWebIdentity",
        resource: None,
        federated: Some(&federated),
        context: &context,
    };
    if !policy::allows(&[&role.trust_policy], &req) {
        return error(StatusCode::FORBIDDEN, "AccessDenied", DENIED);
    }
    let lifetime = f
        .get("DurationSeconds")
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(cfg.credential_lifetime_secs)
        .min(cfg.credential_lifetime_secs);
    let expiration = SystemTime::now() + Duration::from_secs(lifetime);
    let access_key = format!("ASIA{}", &uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase());
    // The session token carries '+', '/' and '=' as AWS's do, so encoding mistakes show.
    let session_token = format!("FwoG+{}/{}==", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let secret = format!("{}/{}", uuid::Uuid::new_v4().simple(), &uuid::Uuid::new_v4().simple().to_string()[..7]);
    s.aws.issued.lock().expect("issued lock").insert(
        access_key.clone(),
        Issued { secret: secret.clone(), session_token: session_token.clone(), role: role.name.clone(), expiration },
    );
    let expiration = chrono::DateTime::<chrono::Utc>::from(expiration).format("%Y-%m-%dT%H:%M:%SZ");
    xml(
        StatusCode::OK,
        format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>{sub}</SubjectFromWebIdentityToken>\
             <Audience>{aud}</Audience><AssumedRoleUser><Arn>arn:aws:sts::{acct}:assumed-role/{role}/{session}</Arn>\
             <AssumedRoleId>AROAEMULATED:{session}</AssumedRoleId></AssumedRoleUser><Credentials>\
             <SessionToken>{session_token}</SessionToken><SecretAccessKey>{secret}</SecretAccessKey>\
             <Expiration>{expiration}</Expiration><AccessKeyId>{access_key}</AccessKeyId></Credentials>\
             <Provider>{federated}</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{req}\
             </RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
            sub = escape(parsed.claims["sub"].as_str().unwrap_or_default()),
            acct = cfg.account,
            role = role.name,
            req = uuid::Uuid::new_v4(),
        ),
    )
}
