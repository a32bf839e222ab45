//! Reading the Google credential file, with the diagnosis users need when it is not there:
//! a Secret not mounted (missing), mounted as a folder (a directory, and which file inside it
//! looks right), or not the credential at all (not JSON: a Kubernetes manifest?), naming the
//! setting that pointed there.

use std::path::{Path, PathBuf};

use super::{AuthError, Link};

/// A credential file larger than this is not one.
const MAX_BYTES: u64 = 1 << 20;

/// Which setting named the credential file, for messages.
pub fn origin(configured: Option<&PathBuf>) -> &'static str {
    if configured.is_some() {
        "google.credentials"
    } else if std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some_and(|p| !p.is_empty()) {
        "GOOGLE_APPLICATION_CREDENTIALS"
    } else {
        "gcloud's application default credentials"
    }
}

fn broken(problem: String, fix: String) -> AuthError {
    AuthError::broken(Link::CredentialConfig, problem, Some(fix))
}

/// The credential file's text, or what is wrong with the path `origin` named.
pub fn read(path: &Path, origin: &str) -> Result<String, AuthError> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(broken(
                format!("{origin} names {shown}, which does not exist"),
                format!(
                    "mount the Secret holding the credential config (written by `aurora2bq cred-config`) so that \
                     {shown} is that file: a volume from the Secret with a volumeMount at its directory (or subPath \
                     for the one key), and check the Secret exists in the pod's namespace"
                ),
            ));
        }
        Err(e) => return Err(broken(format!("{origin} names {shown}, which cannot be read: {e}"), permissions_fix())),
    };
    if meta.is_dir() {
        let candidates = json_files_in(path);
        let fix = match candidates.first() {
            Some(f) => format!(
                "the Secret is mounted as a folder: set {origin} to the file inside it, {} (or mount the key with \
                 subPath)",
                f.display()
            ),
            None => format!(
                "the Secret is mounted as a folder and holds no credential config; set {origin} to the file's path \
                 and check the Secret's key"
            ),
        };
        return Err(broken(format!("{origin} names {shown}, which is a directory"), fix));
    }
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err(broken(
            format!("{origin} names {shown}, which is not a credential file (not a regular file, or over 1 MiB)"),
            format!("point {origin} at the credential config JSON"),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| broken(format!("{origin} names {shown}, which cannot be read: {e}"), permissions_fix()))?;
    if serde_json::from_str::<serde_json::Value>(&text).is_err() {
        let head = text.trim_start();
        let looks_like = if head.starts_with("apiVersion:") || head.contains("\nkind:") || head.starts_with("kind:") {
            " (it looks like a Kubernetes manifest, not the credential config inside it)"
        } else if head.starts_with("eyJ") {
            " (it looks like a token: the credential config names the token file, it is not the token)"
        } else {
            ""
        };
        return Err(broken(
            format!("{origin} names {shown}, which is not JSON{looks_like}"),
            format!(
                "put the credential config JSON there (write it with `aurora2bq cred-config` or `gcloud iam \
                 workload-identity-pools create-cred-config`) and point {origin} at it"
            ),
        ));
    }
    Ok(text)
}

fn permissions_fix() -> String {
    "make the file readable by the container's user (for a Secret volume, defaultMode 0440 and the pod's fsGroup)"
        .into()
}

/// JSON files in `dir` that hold a `type`, the likeliest first.
fn json_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("..")))
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() <= MAX_BYTES)
                && std::fs::read_to_string(p)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .is_some_and(|v| v.get("type").is_some())
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_and_fix(path: &Path) -> String {
        match read(path, "GOOGLE_APPLICATION_CREDENTIALS") {
            Err(AuthError::Broken { link: Link::CredentialConfig, problem, fix }) => {
                format!("{problem} / {}", fix.unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_directory_and_not_json_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let s = problem_and_fix(&dir.path().join("nope.json"));
        assert!(
            s.contains("GOOGLE_APPLICATION_CREDENTIALS names") && s.contains("does not exist") && s.contains("Secret"),
            "{s}"
        );

        std::fs::write(dir.path().join("credential-config.json"), r#"{"type": "external_account"}"#).unwrap();
        let s = problem_and_fix(dir.path());
        assert!(s.contains("is a directory") && s.contains("credential-config.json"), "{s}");

        let manifest = dir.path().join("secret.yaml");
        std::fs::write(&manifest, "apiVersion: v1\nkind: Secret\n").unwrap();
        let s = problem_and_fix(&manifest);
        assert!(s.contains("not JSON") && s.contains("Kubernetes manifest"), "{s}");
        assert!(!s.contains("regenerate"), "{s}");
    }
}
