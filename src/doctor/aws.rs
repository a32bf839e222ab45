//! The AWS links of RDS IAM authentication, checked before the database: the IRSA
//! environment and token file, then AssumeRoleWithWebIdentity. The database's own answer
//! to the token (rds-db:connect, the user's IAM grant) is the source check that follows.

use std::time::Duration;

use super::checks::{Doctor, minutes_until, unix_time};
use super::report::Check;
use crate::aws::{AwsLink, Identity, RdsIam};
use crate::config::{Config, SourceAuth};
use crate::describe::Diagnosis;

const TOKEN: &str = "AWS web-identity token";
const ROLE: &str = "AWS role (STS AssumeRoleWithWebIdentity)";

impl Doctor {
    pub(super) async fn aws(&mut self, cfg: &Config) {
        let SourceAuth::RdsIam(iam) = &cfg.source.auth else { return };
        let failed = |name, e: &crate::aws::AwsError| Check::failed(name, vec![], e.problem.clone(), e.fix());
        let identity = match Identity::resolve(iam) {
            Ok(i) => i,
            Err(e) => {
                self.push(failed(TOKEN, &e));
                self.push(Check::skipped(ROLE, "not checked"));
                return;
            }
        };
        let rds = RdsIam::new(identity.clone(), Duration::from_secs(30));
        match rds.web_identity_token() {
            Ok(token) => {
                let mut details = vec![format!("{} ({})", identity.token_file.display(), identity.region)];
                if let Ok(c) = crate::auth::jwt::claims(token.expose()) {
                    details.push(format!(
                        "for {} with audience {}{}",
                        c.sub.as_deref().unwrap_or("?"),
                        c.aud.join(", "),
                        c.exp.map(|e| format!(", expires {}", minutes_until(unix_time(e)))).unwrap_or_default()
                    ));
                }
                self.push(Check::ok(TOKEN, details));
            }
            Err(e) => {
                self.push(failed(TOKEN, &e));
                self.push(Check::skipped(ROLE, "not checked"));
                return;
            }
        }
        match rds.credentials().await {
            Ok(c) => self.push(Check::ok(
                ROLE,
                vec![format!(
                    "assumed {} at {}; credentials expire {}",
                    identity.role_arn,
                    identity.sts_url,
                    minutes_until(c.expiration)
                )],
            )),
            Err(e) if e.link == AwsLink::AssumeRole => self.push(failed(ROLE, &e)),
            Err(e) => self.push(failed(TOKEN, &e)),
        };
    }
}
