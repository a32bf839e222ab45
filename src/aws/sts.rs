//! `AssumeRoleWithWebIdentity`: an unsigned call (the web-identity token is the proof), whose
//! answer is XML. Errors keep AWS's code and message and add the fix for that code.

use std::time::{Duration, SystemTime};

use super::{AwsError, AwsLink, Identity};
use crate::retry::{Policy, Verdict};
use crate::secret::Secret;

/// Temporary credentials of the assumed role.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub issued: SystemTime,
    pub expiration: SystemTime,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// More than the refresh margin left at `now`.
    pub fn fresh_at(&self, now: SystemTime) -> bool {
        let lifetime = self.expiration.duration_since(self.issued).unwrap_or_default();
        let margin = (lifetime / 2).min(Duration::from_secs(300));
        self.expiration.duration_since(now).is_ok_and(|left| left > margin)
    }
}

pub async fn assume_role(http: &reqwest::Client, id: &Identity, token: &Secret) -> Result<Credentials, AwsError> {
    let session = format!("aurora2bq-{}", std::process::id());
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", id.role_arn.as_str()),
        ("RoleSessionName", session.as_str()),
        ("WebIdentityToken", token.expose()),
    ];
    let issued = SystemTime::now();
    let url = id.sts_url.clone();
    let answer = crate::http::send(
        &Policy::STANDARD,
        |_: &std::convert::Infallible| Verdict::Permanent,
        || {
            let req = http.post(url.clone()).form(&form);
            async move { Ok(req) }
        },
    )
    .await
    .map_err(|f| match f {
        crate::http::Failure::Prepare(never) => match never {},
        crate::http::Failure::Transport { detail, attempts, transient } => AwsError {
            link: AwsLink::AssumeRole,
            problem: format!("cannot reach AWS STS at {url} after {attempts} attempt(s): {detail}"),
            fix: Some(
                "check that the pod can reach STS over HTTPS (a NAT gateway, or an sts VPC endpoint in private \
                 subnets)"
                    .into(),
            ),
            transient,
        },
    })?;
    let body = answer.body.as_str();
    if !answer.status.is_success() {
        let (code, message) = error_of(body);
        return Err(AwsError {
            link: AwsLink::AssumeRole,
            problem: format!(
                "AWS STS refused role {} (HTTP {}): {code}: {message}",
                id.role_arn,
                answer.status.as_u16()
            ),
            fix: Some(fix_for(&code, &message, id, &crate::auth::jwt::claims(token.expose()).unwrap_or_default())),
            transient: answer.transient || code == "IDPCommunicationError",
        });
    }
    parse_credentials(body, issued).ok_or_else(|| AwsError {
        link: AwsLink::AssumeRole,
        problem: format!("AWS STS answered without credentials: {}", crate::http::snippet(body)),
        fix: None,
        transient: false,
    })
}

/// The text of the first element named `name`.
fn text_of<'a>(doc: &'a roxmltree::Document<'_>, name: &str) -> Option<&'a str> {
    doc.descendants().find(|n| n.tag_name().name() == name).and_then(|n| n.text()).map(str::trim)
}

fn parse_credentials(body: &str, issued: SystemTime) -> Option<Credentials> {
    let doc = roxmltree::Document::parse(body).ok()?;
    let expiration = chrono::DateTime::parse_from_rfc3339(text_of(&doc, "Expiration")?).ok()?;
    let expiration = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(expiration.timestamp()).ok()?);
    Some(Credentials {
        access_key_id: text_of(&doc, "AccessKeyId")?.to_owned(),
        secret_access_key: Secret::new(text_of(&doc, "SecretAccessKey")?),
        session_token: Secret::new(text_of(&doc, "SessionToken")?),
        issued,
        expiration,
    })
}

/// AWS's `<Error><Code>` and `<Message>`; a body that is not AWS's XML is shown as it is.
pub fn error_of(body: &str) -> (String, String) {
    match roxmltree::Document::parse(body) {
        Ok(doc) => (
            text_of(&doc, "Code").unwrap_or("UnknownError").to_owned(),
            text_of(&doc, "Message").unwrap_or_default().to_owned(),
        ),
        Err(_) => ("UnknownError".into(), crate::http::snippet(body)),
    }
}

/// The fix for each code AssumeRoleWithWebIdentity answers.
fn fix_for(code: &str, message: &str, id: &Identity, token: &crate::auth::jwt::Claims) -> String {
    let role = id.role_arn.rsplit('/').next().unwrap_or(&id.role_arn);
    let issuer = token.iss.as_deref().unwrap_or("<cluster OIDC issuer>");
    // IAM names the provider by the issuer without its scheme.
    let issuer = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let sub = token.sub.as_deref().unwrap_or("system:serviceaccount:<namespace>:<service account>");
    match code {
        "AccessDenied" => format!(
            "the role's trust policy does not let this pod's token assume it: it needs a statement allowing \
             sts:AssumeRoleWithWebIdentity for Federated arn:aws:iam::{account}:oidc-provider/{issuer} with the \
             conditions StringEquals {issuer}:sub = {sub} and {issuer}:aud = sts.amazonaws.com (this pod's token); \
             `aurora2bq setup` writes this policy as aws-trust-policy.json: aws iam update-assume-role-policy \
             --role-name {role} --policy-document file://aws-trust-policy.json",
            account = id.account()
        ),
        "InvalidIdentityToken" if message.contains("OpenIDConnect provider") || message.contains("OIDC") => {
            format!(
                "the cluster's OIDC issuer is not an IAM OIDC provider of account {}: aws iam \
                 create-open-id-connect-provider --url https://{issuer} --client-id-list sts.amazonaws.com (step 2 \
                 of `aurora2bq setup`)",
                id.account()
            )
        }
        "InvalidIdentityToken" | "IDPRejectedClaim" => "the token's issuer or audience is not what the account's \
             OIDC provider accepts: the IRSA token's audience is sts.amazonaws.com, and the provider's client IDs \
             must include it"
            .into(),
        "ExpiredTokenException" | "ExpiredToken" => "the web-identity token has expired: the kubelet rewrites it \
             before expiry, so check the pod mounts the projected volume (not a copy) and the node's clock"
            .into(),
        "RegionDisabledException" => {
            format!("activate STS in region {} (IAM → Account settings), or set source.aws_region", id.region)
        }
        _ => "check the role ARN (AWS_ROLE_ARN) and its trust policy; `aurora2bq doctor` checks each link".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_errors_parse_from_aws_xml() {
        let ok = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <SessionToken>FwoGZ+/=</SessionToken><SecretAccessKey>wJalr/K7</SecretAccessKey>
    <Expiration>2030-01-01T00:00:00Z</Expiration><AccessKeyId>ASIAEXAMPLE</AccessKeyId>
  </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_credentials(ok, SystemTime::now()).expect("parses");
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.session_token.expose(), "FwoGZ+/=");
        assert_eq!(c.expiration, SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000));
        assert!(!format!("{c:?}").contains("wJalr"));
        let err = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
  <Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error>
  <RequestId>1</RequestId></ErrorResponse>"#;
        assert_eq!(
            error_of(err),
            ("AccessDenied".into(), "Not authorized to perform sts:AssumeRoleWithWebIdentity".into())
        );
    }

    #[test]
    fn credentials_refresh_before_they_expire() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let c = |life: u64| Credentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new("s"),
            session_token: Secret::new("t"),
            issued: t0,
            expiration: t0 + Duration::from_secs(life),
        };
        let hour = c(3600);
        assert!(hour.fresh_at(t0 + Duration::from_secs(3299)));
        assert!(!hour.fresh_at(t0 + Duration::from_secs(3301)));
        let short = c(4);
        assert!(short.fresh_at(t0 + Duration::from_secs(1)));
        assert!(!short.fresh_at(t0 + Duration::from_secs(2)));
    }
}
