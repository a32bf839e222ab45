//! Who BigQuery sees, as an IAM member, so that a permission fix can name it: the
//! impersonated service account, the federated principal itself (direct federation, no
//! service account), or a key file's account. Read from the files alone, no network, and
//! only when a fix needs it.

use std::path::Path;

use super::credentials::{self, CredentialSource};
use crate::config::CredentialsFrom;

/// The member to grant roles to, when the credential says who it is.
pub fn of(credentials: &CredentialsFrom) -> Option<String> {
    let path = match credentials {
        CredentialsFrom::AccessTokenFile(_) => return None,
        CredentialsFrom::File(p) => super::credential_path(p.as_ref()).ok()?,
    };
    from_file(&path)
}

fn from_file(path: &Path) -> Option<String> {
    let text = super::credfile::read(path, "the credential file").ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    match v["type"].as_str()? {
        "service_account" => v["client_email"].as_str().map(|e| format!("serviceAccount:{e}")),
        "external_account" => {
            let c = credentials::parse(path, &text).ok()?;
            if let Some(imp) = &c.impersonation {
                return Some(format!("serviceAccount:{}", imp.email));
            }
            // Direct federation: BigQuery sees the pool's principal for the token's subject
            // (google.subject = assertion.sub, as the set-up maps it).
            let (number, pool, _) = c.pool_parts()?;
            let subject = match &c.source {
                CredentialSource::File { path, .. } => {
                    let token = super::subject::read_token_file(path).ok()?;
                    super::jwt::claims(token.trim()).ok()?.sub?
                }
                _ => return None,
            };
            Some(format!(
                "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{pool}/subject/{subject}"
            ))
        }
        _ => None,
    }
}

/// The fix for a BigQuery permission error: the role the message's permission needs, granted
/// to `member` (or "the identity aurora2bq uses") with the command, on the real names.
pub fn permission_fix(message: &str, member: Option<&str>, project: &str, dataset: &str) -> String {
    let who = member.unwrap_or("MEMBER");
    let find_member =
        if member.is_none() { " (MEMBER is the identity aurora2bq uses: `aurora2bq doctor` shows it)" } else { "" };
    if message.contains("has not been used") || message.contains("is disabled") || message.contains("SERVICE_DISABLED")
    {
        return format!(
            "enable the APIs: gcloud services enable bigquery.googleapis.com bigquerystorage.googleapis.com --project={project}"
        );
    }
    if message.contains("bigquery.jobs.create") {
        return format!(
            "grant roles/bigquery.jobUser on the project: gcloud projects add-iam-policy-binding {project} \
             --member={who} --role=roles/bigquery.jobUser{find_member}"
        );
    }
    format!(
        "grant roles/bigquery.dataEditor on the dataset: bq add-iam-policy-binding --member={who} \
         --role=roles/bigquery.dataEditor {project}:{dataset}; a run also needs roles/bigquery.jobUser on the project: \
         gcloud projects add-iam-policy-binding {project} --member={who} --role=roles/bigquery.jobUser{find_member}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_name_the_member_the_role_and_the_real_names() {
        let m = Some("serviceAccount:bq@p.iam.gserviceaccount.com");
        let f = permission_fix("User does not have bigquery.jobs.create permission in project p.", m, "p", "raw");
        assert!(f.contains("gcloud projects add-iam-policy-binding p --member=serviceAccount:bq@p.iam.gserviceaccount.com --role=roles/bigquery.jobUser"), "{f}");
        let f = permission_fix("Access Denied: Dataset p:raw: Permission bigquery.tables.create denied", m, "p", "raw");
        assert!(f.contains("bq add-iam-policy-binding --member=serviceAccount:bq@p.iam.gserviceaccount.com --role=roles/bigquery.dataEditor p:raw"), "{f}");
        let f = permission_fix("BigQuery API has not been used in project 1 before or it is disabled", m, "p", "raw");
        assert!(f.contains("gcloud services enable bigquery.googleapis.com"), "{f}");
        let f = permission_fix("Access Denied", None, "p", "raw");
        assert!(f.contains("--member=MEMBER") && f.contains("aurora2bq doctor"), "{f}");
    }

    #[test]
    fn direct_federation_names_the_principal_not_a_service_account() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        // {"sub":"system:serviceaccount:analytics:aurora2bq"}
        std::fs::write(
            &token,
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YW5hbHl0aWNzOmF1cm9yYTJicSJ9.c2ln",
        )
        .unwrap();
        let cred = dir.path().join("cred.json");
        std::fs::write(
            &cred,
            serde_json::json!({
                "type": "external_account",
                "audience": "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/eks/providers/oidc",
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "credential_source": {"file": token},
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            from_file(&cred).as_deref(),
            Some(
                "principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/eks/subject/system:serviceaccount:analytics:aurora2bq"
            )
        );
    }
}
