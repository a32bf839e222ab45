//! The RDS IAM auth token: a SigV4 presigned `GET https://HOST:PORT/?Action=connect&DBUser=USER`
//! for service `rds-db`, without the scheme, valid for 15 minutes. The signing is
//! smithy-rs's `aws-sigv4`, the same code the AWS SDKs' token generators use.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};

use super::{AwsError, AwsLink, Credentials};
use crate::secret::Secret;

/// How long RDS accepts a token after signing (its maximum).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

pub fn presign(
    creds: &Credentials,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    now: SystemTime,
) -> Result<Secret, AwsError> {
    let fail = |e: &dyn std::fmt::Display| AwsError {
        link: AwsLink::Sign,
        problem: format!("cannot sign a token for {user}@{host}:{port}: {e}"),
        fix: Some("check the host and user in the source URL".into()),
        transient: false,
    };
    let mut url = url::Url::parse(&format!("https://{host}:{port}/")).map_err(|e| fail(&e))?;
    url.query_pairs_mut().append_pair("Action", "connect").append_pair("DBUser", user);
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        creds.secret_access_key.expose(),
        Some(creds.session_token.expose().to_owned()),
        Some(creds.expiration),
        "aurora2bq",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let request = SignableRequest::new("GET", url.as_str(), std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| fail(&e))?.into_parts();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in instructions.params() {
            q.append_pair(k, v);
        }
    }
    // The token is the URL without its scheme: HOST:PORT/?Action=connect&…
    let token = url.as_str().trim_start_matches("https://").to_owned();
    // url drops a default port (443); RDS never uses it, but keep the token well formed.
    Ok(Secret::new(if token.starts_with(&format!("{host}:{port}/")) {
        token
    } else {
        token.replacen(&format!("{host}/"), &format!("{host}:{port}/"), 1)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_a_presigned_connect_for_host_port_and_user() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("secret"),
            session_token: Secret::new("tok+en/="),
            issued: SystemTime::UNIX_EPOCH,
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let t = presign(&creds, "eu-west-1", "db.example", 5432, "app user", at).expect("signs");
        let t = t.expose();
        assert!(t.starts_with("db.example:5432/?Action=connect&DBUser=app+user&"), "{t}");
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=ASIAEXAMPLE%2F20231114%2Feu-west-1%2Frds-db%2Faws4_request",
            "X-Amz-Date=20231114T221320Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=tok%2Ben%2F%3D",
            "X-Amz-Signature=",
        ] {
            assert!(t.contains(part), "{part} missing from {t}");
        }
        assert!(!t.contains("secret"));
    }
}
