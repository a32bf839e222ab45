//! Turns Google's terse STS and IAM error bodies into messages that name the broken link,
//! the likely cause, and the fix, computed from what is known: the subject token's claims
//! and the credential config's audience and service account (docs/architecture.md, "The credential chain").

use super::credentials::Impersonation;
use super::jwt::{self, Claims};
use super::{AuthError, Link};

/// The `error` object of a Google API's error body.
#[derive(serde::Deserialize)]
pub struct GoogleError {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

impl GoogleError {
    /// `reason` of the first `google.rpc.ErrorInfo` detail.
    pub fn reason(&self) -> Option<&str> {
        self.details.iter().find_map(|d| d.get("reason").and_then(|r| r.as_str()))
    }
}

/// What is known about the chain when a link fails.
#[derive(Debug, Clone, Default)]
pub struct ChainContext {
    pub audience: String,
    /// (project number, pool, provider) parsed from the audience.
    pub pool: Option<(String, String, String)>,
    pub claims: Option<Claims>,
}

impl ChainContext {
    fn provider_flags(&self) -> String {
        match &self.pool {
            Some((n, p, v)) => format!("{v} --workload-identity-pool={p} --location=global --project={n}"),
            None => "PROVIDER --workload-identity-pool=POOL --location=global --project=PROJECT_NUMBER".into(),
        }
    }

    fn pool_path(&self) -> String {
        match &self.pool {
            Some((n, p, _)) => format!("projects/{n}/locations/global/workloadIdentityPools/{p}"),
            None => "projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL".into(),
        }
    }

    fn sub(&self) -> String {
        self.claims.as_ref().and_then(|c| c.sub.clone()).unwrap_or_else(|| "SUBJECT".into())
    }
}

/// The IAM member strings that identify the pod: `principal://…/subject/SUB` always works
/// with the mandatory `google.subject=assertion.sub`; the principalSet assumes the mapping
/// `attribute.ksa_name=assertion.sub.extract('system:serviceaccount:{ksa_name}')`.
pub fn members(cx: &ChainContext) -> (String, Option<String>) {
    let base = format!("iam.googleapis.com/{}", cx.pool_path());
    let sub = cx.sub();
    let principal = format!("principal://{base}/subject/{sub}");
    let set = jwt::k8s_subject(&sub).map(|(ns, ksa)| format!("principalSet://{base}/attribute.ksa_name/{ns}:{ksa}"));
    (principal, set)
}

pub fn sts_error(code: &str, description: &str, cx: &ChainContext) -> AuthError {
    let claims = cx.claims.clone().unwrap_or_default();
    let said = format!("STS answered {code}: \"{description}\"");
    let flags = cx.provider_flags();
    let api_audience = claims.aud.iter().any(|a| {
        a.contains("kubernetes.default.svc")
            || a.starts_with("https://kubernetes")
            || claims.iss.as_deref() == Some(a.as_str())
    });
    let (problem, fix) = if description.contains("audience in ID Token") && api_audience {
        // Never advise allowing the API audience: Google would then accept every pod's
        // default token, for any workload in the cluster.
        let aud = claims.aud.join(", ");
        (
            format!(
                "{said}. The pod's token has audience [{aud}], the Kubernetes API's: it is the pod's default \
                 service-account token, not one projected for Google"
            ),
            "point credential_source.file at the token projected for Google: with IRSA \
             /var/run/secrets/eks.amazonaws.com/serviceaccount/token (audience sts.amazonaws.com, needs the \
             eks.amazonaws.com/role-arn annotation on the ServiceAccount), or a serviceAccountToken volume with \
             audience sts.amazonaws.com. Do not add the Kubernetes API audience to the provider: Google would then \
             accept every pod's API token"
                .into(),
        )
    } else if description.contains("audience in ID Token") {
        let aud = claims.aud.join(", ");
        (
            format!("{said}. The pod's token has audience [{aud}], which the provider does not allow"),
            format!(
                "allow it on the provider: gcloud iam workload-identity-pools providers update-oidc \
                 {flags} --allowed-audiences={}; or project a token whose audience is \
                 https:{} (the provider's default)",
                claims.aud.first().map(String::as_str).unwrap_or("AUDIENCE"),
                cx.audience.trim_start_matches("https:"),
            ),
        )
    } else if description.contains("issuer in ID Token") {
        let iss = claims.iss.clone().unwrap_or_else(|| "ISSUER".into());
        (
            format!("{said}. The pod's token was issued by {iss}, which is not the provider's issuer URI"),
            format!(
                "set the provider's issuer to the cluster's OIDC issuer exactly (byte for byte, no \
                 trailing slash): gcloud iam workload-identity-pools providers update-oidc {flags} \
                 --issuer-uri={iss}  (see `aws eks describe-cluster --name CLUSTER --query \
                 cluster.identity.oidc.issuer`)"
            ),
        )
    } else if description.contains("stale to sign-in") {
        let when = claims
            .exp
            .and_then(|e| chrono::DateTime::from_timestamp(e, 0))
            .map(|t| format!("expired at {t}"))
            .unwrap_or_else(|| "has no valid exp/iat".into());
        (
            format!("{said}. The pod's token {when}"),
            "the kubelet refreshes projected tokens in place: make sure credential_source.file is \
             the projected volume itself (not a copy), that expirationSeconds is at least 600, and \
             that the node's clock is right"
                .into(),
        )
    } else if description.contains("verify the ID Token signature") {
        (
            format!("{said}. The token is not signed by a key the provider trusts"),
            format!(
                "if the provider has an uploaded JWKS (jwksJson), refresh it from the cluster's \
                 current keys; otherwise check the token really comes from {}",
                claims.iss.as_deref().unwrap_or("the cluster's issuer")
            ),
        )
    } else if description.contains("connecting to the given credential's issuer") {
        (
            format!(
                "{said}. Google could not fetch the issuer's discovery document or signing keys, or the token's key id is not among them"
            ),
            format!(
                "check {}/.well-known/openid-configuration is reachable from the internet and its \
                 JWKS holds the token's kid; for a private issuer, upload the JWKS with \
                 `gcloud iam workload-identity-pools providers update-oidc {flags} --jwk-json-path=keys.json`",
                claims.iss.as_deref().unwrap_or("ISSUER")
            ),
        )
    } else if description.contains("attribute condition") {
        (
            format!("{said}. The provider's attribute condition rejected subject {}", cx.sub()),
            format!(
                "read the condition with `gcloud iam workload-identity-pools providers describe {flags} \
                 --format='value(attributeCondition)'` and make it accept {}",
                cx.sub()
            ),
        )
    } else if code == "invalid_target" {
        (
            format!("{said}. The audience {} names a pool or provider that does not exist or is disabled", cx.audience),
            format!(
                "check the project NUMBER (not its ID), pool and provider in the credential config's \
                 audience; `gcloud iam workload-identity-pools providers describe {flags}` shows it \
                 and its state (undelete or enable it if needed)"
            ),
        )
    } else if description.contains("127 bytes") {
        (
            format!("{said}. The mapped google.subject is longer than 127 bytes"),
            "map google.subject to something shorter, e.g. google.subject=assertion.sub, and put \
             the rest in custom attributes"
                .into(),
        )
    } else {
        (said, "see the description above; the pool's provider settings must match the token".into())
    };
    AuthError::broken(Link::StsExchange, problem, Some(fix))
}

pub fn iam_error(http: u16, e: &GoogleError, imp: &Impersonation, cx: &ChainContext) -> AuthError {
    let said = format!("IAM Credentials answered HTTP {http} {}: \"{}\"", e.status, e.message);
    let sa = &imp.email;
    let (problem, fix) = match (http, e.reason()) {
        (403, Some("IAM_PERMISSION_DENIED")) | (403, None)
            if e.message.contains("iam.serviceAccounts.getAccessToken") =>
        {
            let (principal, set) = members(cx);
            let member = set.clone().unwrap_or_else(|| principal.clone());
            (
                format!("{said}. The pod's identity ({}) may not impersonate {sa}", cx.sub()),
                format!(
                    "grant it roles/iam.workloadIdentityUser on the service account:\n    \
                     gcloud iam service-accounts add-iam-policy-binding {sa} \
                     --role=roles/iam.workloadIdentityUser --member='{member}'\n  {}\
                     a new binding can take a few minutes to apply",
                    if set.is_some() {
                        format!(
                            "(that member needs the provider mapping \
                             attribute.ksa_name=assertion.sub.extract('system:serviceaccount:{{ksa_name}}'); \
                             without it use --member='{principal}'; the namespace is part of the value)\n  "
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        }
        (404, _) => (
            format!("{said}. The service account {sa} does not exist"),
            format!(
                "fix the email in service_account_impersonation_url (list them with `gcloud iam \
                 service-accounts list --project=PROJECT`), or create {sa}"
            ),
        ),
        (403, Some("USER_PROJECT_DENIED")) => (
            format!("{said}. A quota project was sent with the impersonation call"),
            "remove quota_project_id / x-goog-user-project for IAM Credentials calls".into(),
        ),
        (400, _) if e.message.to_lowercase().contains("lifetime") => (
            format!("{said}. The requested token lifetime ({}s) is not allowed", imp.lifetime_secs),
            "set service_account_impersonation.token_lifetime_seconds to 3600 or less, or enable \
             the org policy constraints/iam.allowServiceAccountCredentialLifetimeExtension"
                .into(),
        ),
        (401, _) => (
            format!("{said}. The STS token was not accepted"),
            "this usually passes on the next refresh; if it persists, check the token_url".into(),
        ),
        (403, _) => (
            said.to_string(),
            format!(
                "make sure the IAM Service Account Credentials API (iamcredentials.googleapis.com) \
                 is enabled in {sa}'s project and that the binding exists"
            ),
        ),
        _ => (said, "see the message above".into()),
    };
    AuthError::broken(Link::Impersonation, problem, Some(fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> ChainContext {
        ChainContext {
            audience: "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/eks/providers/oidc"
                .into(),
            pool: Some(("123".into(), "eks".into(), "oidc".into())),
            claims: Some(Claims {
                iss: Some("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into()),
                sub: Some("system:serviceaccount:analytics:bq-reader".into()),
                aud: vec!["sts.amazonaws.com".into()],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn missing_binding_gives_the_exact_member_and_command() {
        let e = GoogleError {
            code: 403,
            message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).".into(),
            status: "PERMISSION_DENIED".into(),
            details: vec![
                serde_json::json!({"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"IAM_PERMISSION_DENIED"}),
            ],
        };
        let imp =
            Impersonation { url: String::new(), email: "bq@p.iam.gserviceaccount.com".into(), lifetime_secs: 3600 };
        let s = iam_error(403, &e, &imp, &cx()).to_string();
        assert!(s.contains("service account impersonation failed"), "{s}");
        assert!(s.contains("principalSet://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/eks/attribute.ksa_name/analytics:bq-reader"), "{s}");
        assert!(s.contains("gcloud iam service-accounts add-iam-policy-binding bq@p.iam.gserviceaccount.com --role=roles/iam.workloadIdentityUser"), "{s}");
        assert!(s.contains("principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/eks/subject/system:serviceaccount:analytics:bq-reader"), "{s}");
    }

    #[test]
    fn wrong_audience_names_the_token_audience_and_the_provider() {
        let s = sts_error(
            "invalid_grant",
            "The audience in ID Token [sts.amazonaws.com] does not match the expected audience.",
            &cx(),
        )
        .to_string();
        assert!(s.starts_with("STS token exchange failed"), "{s}");
        assert!(s.contains("--allowed-audiences=sts.amazonaws.com"), "{s}");
        assert!(s.contains("oidc --workload-identity-pool=eks"), "{s}");
    }
}
