//! Executable-sourced subject tokens (only when GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1,
//! checked when the config is parsed): run the command with a deadline and read Google's
//! executable response format.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{AuthError, Link};
use crate::secret::Secret;

pub async fn run(command: &str, timeout_ms: u64, output_file: Option<&Path>) -> Result<Secret, AuthError> {
    // A still-valid cached response in output_file is used without running the command.
    if let Some(path) = output_file
        && let Ok(text) = tokio::fs::read_to_string(path).await
        && let Ok(token) = parse_response(&text, true)
    {
        return Ok(token);
    }
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command).kill_on_drop(true);
    cmd.env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0");
    let out = tokio::time::timeout(Duration::from_millis(timeout_ms), cmd.output())
        .await
        .map_err(|_| {
            AuthError::broken(
                Link::SubjectToken,
                format!("credential command did not finish within {timeout_ms} ms"),
                Some("raise credential_source.executable.timeout_millis or fix the command".into()),
            )
        })?
        .map_err(|e| AuthError::broken(Link::SubjectToken, format!("cannot run credential command: {e}"), None))?;
    if !out.status.success() {
        return Err(AuthError::broken(
            Link::SubjectToken,
            format!("credential command exited with {}", out.status),
            Some("run it by hand to see why".into()),
        ));
    }
    parse_response(&String::from_utf8_lossy(&out.stdout), false)
}

/// `{"version":1,"success":true,"token_type":"…jwt","id_token":"…","expiration_time":N}`.
fn parse_response(text: &str, must_be_unexpired: bool) -> Result<Secret, AuthError> {
    let bad = |p: &str| AuthError::broken(Link::SubjectToken, format!("credential command: {p}"), None);
    let v: Value = serde_json::from_str(text).map_err(|_| bad("output is not JSON"))?;
    if v.get("version").and_then(Value::as_u64) != Some(1) {
        return Err(bad("output version is not 1"));
    }
    if v.get("success").and_then(Value::as_bool) != Some(true) {
        let msg = v.get("message").and_then(Value::as_str).unwrap_or("no message");
        return Err(bad(&format!("reported failure: {msg}")));
    }
    if let Some(exp) = v.get("expiration_time").and_then(Value::as_i64)
        && must_be_unexpired
        && exp <= chrono::Utc::now().timestamp()
    {
        return Err(bad("cached output has expired"));
    }
    let token = v
        .get("id_token")
        .or_else(|| v.get("saml_response"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("output has no id_token"))?;
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_command_and_reads_the_token() {
        let cmd = r#"echo '{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"a.b.c"}'"#;
        assert_eq!(run(cmd, 5000, None).await.unwrap().expose(), "a.b.c");
    }

    #[tokio::test]
    async fn a_hanging_command_is_stopped_at_its_deadline() {
        let started = std::time::Instant::now();
        let e = run("sleep 30", 200, None).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.to_string().contains("did not finish"), "{e}");
    }

    #[tokio::test]
    async fn reported_failure_is_an_error() {
        let cmd = r#"echo '{"version":1,"success":false,"message":"nope"}'"#;
        assert!(run(cmd, 5000, None).await.unwrap_err().to_string().contains("nope"));
    }
}
