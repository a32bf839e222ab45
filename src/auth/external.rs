//! The `external_account` chain, uncached: subject token → STS → (impersonation). Each
//! call runs every link again; [`super::cache::CachedTokenSource`] decides when to call.

use std::sync::Arc;

use async_trait::async_trait;

use super::clock::Clock;
use super::credentials::{CredentialSource, ExternalAccountConfig};
use super::diagnose::ChainContext;
use super::{AccessToken, AuthError, CLOUD_PLATFORM_SCOPE, Link, TokenSource, jwt, sts, subject};
use crate::retry::Policy;
use crate::secret::Secret;
use crate::trust::{self, EndpointPolicy, Service};

pub struct ExternalAccount {
    config: ExternalAccountConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    retry: Policy,
}

impl ExternalAccount {
    /// Checks the universe and every URL against the policy before any token is sent or
    /// fetched anywhere.
    pub fn new(
        mut config: ExternalAccountConfig,
        policy: &EndpointPolicy,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let refuse = |problem: String| {
            AuthError::broken(
                Link::CredentialConfig,
                format!("{}: {problem}", config.path.display()),
                Some(format!(
                    "regenerate the credential config with `aurora2bq cred-config` or `gcloud iam \
                     workload-identity-pools create-cred-config`: it writes universe_domain {:?}, \
                     token_url https://sts.{0}/v1/token and an https://iamcredentials.{0}/... \
                     impersonation URL",
                    policy.universe.as_ref()
                )),
            )
        };
        policy.check_universe(config.universe_domain.as_deref()).map_err(refuse)?;
        if config.token_url.is_empty() {
            config.token_url = format!("https://sts.{}/v1/token", policy.universe);
        }
        trust::check(policy, Service::Sts, "token_url", &config.token_url).map_err(refuse)?;
        if let Some(imp) = &config.impersonation {
            trust::check(policy, Service::IamCredentials, "service_account_impersonation_url", &imp.url)
                .map_err(refuse)?;
        }
        if let CredentialSource::Url { url, .. } = &config.source {
            trust::check_fetch(policy, "credential_source.url", url).map_err(refuse)?;
        }
        Ok(Self { config, http, clock, retry: Policy::STANDARD })
    }

    /// Overrides the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: Policy) -> Self {
        self.retry = retry;
        self
    }

    pub fn config(&self) -> &ExternalAccountConfig {
        &self.config
    }

    /// Link 1: the subject token, read now.
    pub async fn subject_token(&self) -> Result<Secret, AuthError> {
        subject::fetch(&self.config.source, &self.http).await
    }

    /// What is known for error messages, from a subject token's claims.
    pub fn context(&self, subject: Option<&Secret>) -> ChainContext {
        ChainContext {
            audience: self.config.audience.clone(),
            pool: self.config.pool_parts(),
            claims: subject.and_then(|s| jwt::claims(s.expose()).ok()),
        }
    }

    /// Link 3: exchange the subject token at STS.
    pub async fn exchange(&self, subject: &Secret) -> Result<AccessToken, AuthError> {
        let cx = self.context(Some(subject));
        let req = sts::StsRequest {
            token_url: &self.config.token_url,
            audience: &self.config.audience,
            subject_token: subject,
            subject_token_type: &self.config.subject_token_type,
            scope: CLOUD_PLATFORM_SCOPE,
            client_auth: self.config.client_auth.as_ref(),
        };
        sts::exchange(&self.http, &self.retry, &req, self.clock.now(), &cx).await
    }

    /// Link 4: impersonate the service account, if the config names one.
    pub async fn impersonate(&self, subject: &Secret, federated: AccessToken) -> Result<AccessToken, AuthError> {
        let Some(imp) = &self.config.impersonation else { return Ok(federated) };
        let cx = self.context(Some(subject));
        super::impersonate::generate(
            &self.http,
            &self.retry,
            imp,
            &federated.token,
            CLOUD_PLATFORM_SCOPE,
            self.clock.now(),
            &cx,
        )
        .await
    }
}

#[async_trait]
impl TokenSource for ExternalAccount {
    async fn token(&self) -> Result<AccessToken, AuthError> {
        let subject = self.subject_token().await?;
        let federated = self.exchange(&subject).await?;
        self.impersonate(&subject, federated).await
    }
}
