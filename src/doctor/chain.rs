//! The credential checks: the subject token, the credential config, the STS exchange and
//! the impersonation (or, for local credentials, the OAuth token).

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::checks::{Doctor, auth_failure, minutes_until};
use super::report::Check;
use crate::auth::clock::SystemClock;
use crate::auth::credentials::{self, CredentialSource, Format};
use crate::auth::external::ExternalAccount;
use crate::auth::{self, AccessToken, TokenSource, jwt};
use crate::config::{CredentialsFrom, GoogleConfig};
use crate::secret::Secret;
use crate::trust::EndpointPolicy;

impl Doctor {
    pub(super) async fn credentials(&mut self, g: &GoogleConfig) -> Option<AccessToken> {
        let policy = g.endpoint_policy();
        let (path, text) = match &g.credentials {
            CredentialsFrom::AccessTokenFile(p) => {
                let src = auth::static_file::StaticTokenFile::new(p.clone(), Arc::new(SystemClock));
                return match src.token().await {
                    Ok(t) => {
                        self.push(Check::ok(
                            "access token file",
                            vec![format!("{}: a token is there (its validity shows at BigQuery)", p.display())],
                        ));
                        Some(t)
                    }
                    Err(e) => {
                        let (p, f) = auth_failure(&e);
                        self.push(Check::failed("access token file", vec![], p, f));
                        None
                    }
                };
            }
            CredentialsFrom::File(p) => match auth::credential_path(p.as_ref())
                .and_then(|path| auth::credfile::read(&path, auth::credfile::origin(p.as_ref())).map(|t| (path, t)))
            {
                Ok(found) => found,
                Err(e) => {
                    let (p, f) = auth_failure(&e);
                    self.push(Check::failed("credential config", vec![], p, f));
                    return None;
                }
            },
        };
        let loose: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match loose["type"].as_str() {
            Some("service_account") | Some("authorized_user") => self.oauth(&path, &text, &policy, g.retry).await,
            _ => self.external(&path, &text, &loose, &policy, g.retry).await,
        }
    }

    async fn oauth(
        &mut self,
        path: &Path,
        text: &str,
        policy: &EndpointPolicy,
        retry: crate::retry::Policy,
    ) -> Option<AccessToken> {
        let src = match auth::from_text(path, text, policy, retry, self.http.clone(), Arc::new(SystemClock)) {
            Ok(s) => s,
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("credential config", vec![], p, f));
                return None;
            }
        };
        self.push(Check::ok(
            "credential config",
            vec![format!("{}: a key or user credential for local runs", path.display())],
        ));
        match src.token().await {
            Ok(t) => {
                self.push(Check::ok(
                    "OAuth token",
                    vec![format!("access token, expires {}", minutes_until(t.expires_at))],
                ));
                Some(t)
            }
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("OAuth token", vec![], p, f));
                None
            }
        }
    }

    /// Credential config → subject token → STS → impersonation.
    async fn external(
        &mut self,
        path: &Path,
        text: &str,
        loose: &Value,
        policy: &EndpointPolicy,
        retry: crate::retry::Policy,
    ) -> Option<AccessToken> {
        let ext = match credentials::parse(path, text)
            .and_then(|c| ExternalAccount::new(c, policy, self.http.clone(), Arc::new(SystemClock)))
            .map(|e| e.with_retry(retry))
        {
            Ok(ext) => ext,
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("credential config", vec![], p, f));
                return None;
            }
        };
        let c = ext.config();
        let mut details = vec![
            format!("{}", path.display()),
            format!("audience {}", c.audience),
            format!("token_url {}", c.token_url),
        ];
        if let Some(imp) = &c.impersonation {
            details.push(format!("impersonates {} for {} s", imp.email, imp.lifetime_secs));
        }
        self.push(Check::ok("credential config", details));
        let subject_token_type = c.subject_token_type.clone();
        let mut subject = self.subject_token(loose, &subject_token_type).await;
        if self.broken() {
            return None;
        }
        let subject = match subject.take() {
            Some(s) => s,
            None => match ext.subject_token().await {
                Ok(s) => s,
                Err(e) => {
                    let (p, f) = auth_failure(&e);
                    self.push(Check::failed("STS token exchange", vec!["reading the subject token".into()], p, f));
                    return None;
                }
            },
        };
        let federated = match ext.exchange(&subject).await {
            Ok(t) => {
                self.push(Check::ok(
                    "STS token exchange",
                    vec![format!("federated token, expires {}", minutes_until(t.expires_at))],
                ));
                t
            }
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("STS token exchange", vec![], p, f));
                return None;
            }
        };
        let Some(imp) = ext.config().impersonation.clone() else {
            self.push(Check::skipped(
                "service account impersonation",
                "no service_account_impersonation_url: the federated token is used directly, so the pool \
                 principal itself needs the BigQuery roles",
            ));
            return Some(federated);
        };
        match ext.impersonate(&subject, federated).await {
            Ok(t) => {
                self.push(Check::ok(
                    "service account impersonation",
                    vec![format!("access token for {}, expires {}", imp.email, minutes_until(t.expires_at))],
                ));
                Some(t)
            }
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("service account impersonation", vec![], p, f));
                None
            }
        }
    }

    /// The pod's token file: exists, readable, a JWT, not expired. Shows its claims.
    async fn subject_token(&mut self, loose: &Value, subject_token_type: &str) -> Option<Secret> {
        let src = &loose["credential_source"];
        let Some(file) = src["file"].as_str() else {
            self.push(Check::skipped(
                "subject token",
                "the credential source is not a file; it is read during the STS check",
            ));
            return None;
        };
        let format = match src["format"]["subject_token_field_name"].as_str() {
            Some(f) if src["format"]["type"] == "json" => Format::Json { field: f.into() },
            _ => Format::Text,
        };
        let source = CredentialSource::File { path: file.into(), format };
        let token = match auth::subject::fetch(&source, &self.http).await {
            Ok(t) => t,
            Err(e) => {
                let (p, f) = auth_failure(&e);
                self.push(Check::failed("subject token", vec![file.to_owned()], p, f));
                return None;
            }
        };
        let claims = match jwt::claims(token.expose()) {
            Ok(c) => c,
            Err(e) => {
                self.push(Check::failed(
                    "subject token",
                    vec![file.to_owned()],
                    format!("{file}: {e}"),
                    Some("credential_source.file must be the projected service-account token (a JWT)".into()),
                ));
                return None;
            }
        };
        if !matches!(subject_token_type, credentials::JWT_TOKEN_TYPE | credentials::ID_TOKEN_TYPE) {
            self.push(Check::failed(
                "subject token",
                vec![file.to_owned()],
                format!("{file} holds a JWT, but the credential config says subject_token_type {subject_token_type:?}"),
                Some(format!(
                    "set \"subject_token_type\": \"{}\" in the credential config (what `aurora2bq cred-config` writes \
                     for an OIDC provider)",
                    credentials::JWT_TOKEN_TYPE
                )),
            ));
            return None;
        }
        let exp = claims.exp.map(super::checks::unix_time);
        let details = vec![
            file.to_owned(),
            format!("iss {}", claims.iss.as_deref().unwrap_or("(none)")),
            format!("sub {}", claims.sub.as_deref().unwrap_or("(none)")),
            format!("aud [{}]", claims.aud.join(", ")),
            format!("expires {}", exp.map(minutes_until).unwrap_or_else(|| "never (no exp)".into())),
        ];
        if exp.is_some_and(|e| e < SystemTime::now()) {
            self.push(Check::failed(
                "subject token",
                details,
                "the token has expired: nothing refreshes this file",
                Some(
                    "the kubelet rewrites a projected token in place; point credential_source.file at the \
                      projected volume itself (not a copy) and keep expirationSeconds at 600 or more"
                        .into(),
                ),
            ));
            return None;
        }
        self.push(Check::ok("subject token", details));
        Some(token)
    }
}
