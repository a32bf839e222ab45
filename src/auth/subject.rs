//! The subject token: the pod's projected service-account JWT, read fresh on every refresh
//! because the kubelet rotates the file (atomically, through symlinks).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::credentials::{CredentialSource, Format};
use super::{AuthError, Link};
use crate::secret::Secret;

use crate::secret::MAX_TOKEN_BYTES;

pub async fn fetch(source: &CredentialSource, http: &reqwest::Client) -> Result<Secret, AuthError> {
    match source {
        CredentialSource::File { path, format } => {
            // A few KiB from a local file; off the async workers all the same.
            let owned = path.clone();
            let raw = tokio::task::spawn_blocking(move || read_token_file(&owned)).await.map_err(|e| {
                AuthError::broken(Link::SubjectToken, format!("reading the token file failed: {e}"), None)
            })??;
            extract(&raw, format, &path.display().to_string())
        }
        CredentialSource::Url { url, headers, format } => {
            let shown = crate::trust::redact(url);
            let mut req = http.get(url).timeout(Duration::from_secs(10));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = req.send().await.map_err(|e| AuthError::Transient {
                link: Link::SubjectToken,
                problem: format!("GET {shown}: {}", crate::describe::error_chain(&e).replace(url.as_str(), &shown)),
                attempts: 1,
            })?;
            let status = resp.status();
            let body = read_capped(resp).await?;
            if !status.is_success() {
                return Err(AuthError::broken(
                    Link::SubjectToken,
                    format!("GET {shown} answered HTTP {status}"),
                    Some("check credential_source.url and its headers".into()),
                ));
            }
            extract(&body, format, &shown)
        }
        CredentialSource::Executable { command, timeout_ms, output_file } => {
            super::subject_exec::run(command, *timeout_ms, output_file.as_deref()).await
        }
    }
}

/// The token file's text ([`crate::secret::read_token_file`]), with the fix for a pod whose
/// token is not mounted (also used for naming the principal in fixes).
pub fn read_token_file(path: &Path) -> Result<String, AuthError> {
    crate::secret::read_token_file(path).map_err(|problem| {
        let fix_mount = format!(
            "check that the pod mounts the projected service-account token at {} (a \
             serviceAccountToken volume, or IRSA's /var/run/secrets/eks.amazonaws.com/serviceaccount/token \
             when the ServiceAccount has the eks.amazonaws.com/role-arn annotation) and that \
             credential_source.file names it",
            path.display()
        );
        AuthError::broken(Link::SubjectToken, problem, Some(fix_mount))
    })
}

/// A URL source's body, at most [`MAX_TOKEN_BYTES`]: a hostile server cannot fill memory.
async fn read_capped(mut resp: reqwest::Response) -> Result<String, AuthError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                body.extend_from_slice(&c);
                if body.len() as u64 > MAX_TOKEN_BYTES {
                    return Err(AuthError::broken(
                        Link::SubjectToken,
                        format!(
                            "credential_source.url answered more than {MAX_TOKEN_BYTES} bytes, too large for a token"
                        ),
                        Some("check credential_source.url names the token endpoint".into()),
                    ));
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(AuthError::Transient {
                    link: Link::SubjectToken,
                    problem: format!("reading credential_source.url's answer: {}", crate::describe::error_chain(&e)),
                    attempts: 1,
                });
            }
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The token from the raw text: trimmed (Go trims, Python does not; a trailing newline
/// would otherwise fail at STS), or the named field of a JSON document.
pub fn extract(raw: &str, format: &Format, origin: &str) -> Result<Secret, AuthError> {
    let token = match format {
        Format::Text => raw.trim().to_owned(),
        Format::Json { field } => {
            let v: Value = serde_json::from_str(raw).map_err(|e| {
                AuthError::broken(
                    Link::SubjectToken,
                    format!("{origin} is not JSON ({e}) but credential_source.format.type is \"json\""),
                    Some("use format type \"text\" for a bare token".into()),
                )
            })?;
            v.get(field).and_then(Value::as_str).map(|s| s.trim().to_owned()).ok_or_else(|| {
                AuthError::broken(
                    Link::SubjectToken,
                    format!("{origin} has no string field {field:?}"),
                    Some("fix credential_source.format.subject_token_field_name".into()),
                )
            })?
        }
    };
    if token.is_empty() {
        return Err(AuthError::broken(
            Link::SubjectToken,
            format!("token from {origin} is empty"),
            Some(
                "the kubelet writes the projected token when the pod starts; check the volume \
                 is a serviceAccountToken projection and the path is right"
                    .into(),
            ),
        ));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_json_field_is_read() {
        let t = extract(" abc.def.ghi\n", &Format::Text, "f").unwrap();
        assert_eq!(t.expose(), "abc.def.ghi");
        let f = Format::Json { field: "id_token".into() };
        let t = extract(r#"{"id_token":"x.y.z"}"#, &f, "f").unwrap();
        assert_eq!(t.expose(), "x.y.z");
        assert!(extract(r#"{"other":"x"}"#, &f, "f").is_err());
    }

    #[test]
    fn empty_token_is_an_error_on_the_subject_link() {
        let e = extract("\n  \n", &Format::Text, "/t").unwrap_err();
        assert_eq!(e.link(), Link::SubjectToken);
        assert!(e.to_string().contains("empty"));
    }

    #[tokio::test]
    async fn devices_fifos_and_directories_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for (path, says) in [
            (std::path::PathBuf::from("/dev/zero"), "not a regular file"),
            (fifo, "not a regular file"),
            (dir.path().to_owned(), "a directory"),
        ] {
            let src = CredentialSource::File { path: path.clone(), format: Format::Text };
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), fetch(&src, &reqwest::Client::new()))
                .await
                .expect("refused at once, not read")
                .unwrap_err();
            assert!(e.to_string().contains(says), "{}: {e}", path.display());
        }
    }

    #[tokio::test]
    async fn missing_file_names_the_path_and_the_mount() {
        let src = CredentialSource::File { path: "/nonexistent/token".into(), format: Format::Text };
        let e = fetch(&src, &reqwest::Client::new()).await.unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/nonexistent/token does not exist"), "{s}");
        assert!(s.contains("serviceAccountToken"), "{s}");
    }
}
