//! RDS IAM authentication on the source side: a fresh auth token as each connection's
//! password, TLS verified against the RDS CA bundle, and the database's refusals turned into
//! the link to fix (the role's `rds-db:connect` permission, or the user's IAM grant).

use std::sync::Arc;

use super::SourceError;
use crate::aws::{Identity, RdsIam};
use crate::config::{Engine, IamConfig, SourceConfig};
use crate::secret::Secret;

/// The RDS certificate authorities (certs/README.md), for verify-full by default.
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../../certs/rds-ca-bundle.pem");

/// Signs a token for each new connection of one database user.
pub(crate) struct DbIam {
    iam: Arc<RdsIam>,
    host: String,
    port: u16,
    pub user: String,
    engine: Engine,
}

impl DbIam {
    /// From the URL (which must carry no password) and the AWS settings.
    pub fn new(config: &SourceConfig, iam: &IamConfig, url: &Secret) -> Result<DbIam, SourceError> {
        let u = url::Url::parse(url.expose())
            .map_err(|e| SourceError::Url(format!("the connection URL is not valid: {e}")))?;
        if u.password().is_some() {
            return Err(SourceError::Url(
                "the URL carries a password, but source.auth = \"rds_iam\" signs a token for each connection: \
                 remove the password from the URL (postgres://USER@HOST:PORT/DB)"
                    .into(),
            ));
        }
        let user = url_decode(u.username());
        if user.is_empty() {
            return Err(SourceError::Url("the URL names no user; RDS IAM tokens are signed for one user".into()));
        }
        let host = u.host_str().unwrap_or_default().to_owned();
        let port = u.port().unwrap_or(match config.engine {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        });
        let identity = Identity::resolve(iam).map_err(SourceError::Aws)?;
        let iam = Arc::new(RdsIam::new(identity, config.connect_timeout));
        Ok(DbIam { iam, host, port, user, engine: config.engine })
    }

    /// A token signed now: valid for 15 minutes, for this connection.
    pub async fn password(&self) -> Result<String, SourceError> {
        let token = self.iam.token(&self.host, self.port, &self.user).await.map_err(SourceError::Aws)?;
        Ok(token.expose().to_owned())
    }

    /// The database's refusal of a token, said as the link to fix; `None` for other errors.
    pub fn denied(&self, target: &str, e: &sqlx::Error) -> Option<SourceError> {
        let db = e.as_database_error()?;
        let code = db.code().unwrap_or_default().to_string();
        let id = &self.iam.identity;
        let resource =
            format!("arn:aws:rds-db:{}:{}:dbuser:<cluster resource id>/{}", id.region, id.account(), self.user);
        let policy = format!(
            "give the role {} the statement {{\"Effect\": \"Allow\", \"Action\": \"rds-db:connect\", \"Resource\": \
             \"{resource}\"}} (the resource id is `aws rds describe-db-clusters --db-cluster-identifier <cluster> \
             --query 'DBClusters[0].DbClusterResourceId'`; `aurora2bq setup` writes this policy)",
            id.role_arn
        );
        let (problem, fix) = match (self.engine, code.as_str()) {
            // RDS answers "PAM authentication failed" when the user takes IAM tokens but
            // this one does not pass: a role without rds-db:connect on this user, or a token
            // for another host, port or region.
            (Engine::Postgres, "28000") if db.message().contains("PAM") => (
                format!("the database refused the IAM token for user {:?}: {}", self.user, db.message()),
                format!("{policy}; the token is signed for {}:{} in {}", self.host, self.port, id.region),
            ),
            // "password authentication failed": the user is not in rds_iam, so the token was
            // compared with a password.
            (Engine::Postgres, "28P01") => (
                format!(
                    "the database compared the IAM token with a password: user {:?} is not granted rds_iam ({})",
                    self.user,
                    db.message()
                ),
                format!("as a superuser of the database: GRANT rds_iam TO {};", quote_pg(&self.user)),
            ),
            (Engine::Mysql, "28000" | "1045") => (
                format!("the database refused the IAM token for user {:?}: {}", self.user, db.message()),
                format!(
                    "MySQL does not say which link failed; check both: the user takes IAM tokens only if created \
                     with CREATE USER '{}' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'; and {policy}",
                    self.user
                ),
            ),
            _ => return None,
        };
        Some(SourceError::Refused { table: target.to_owned(), problem, fix })
    }
}

/// Opens a connection with `options`, or, with IAM, with a token signed for it as the
/// password; the database's refusal of a token is said as the link to fix.
pub(crate) async fn connect<O>(
    iam: Option<&DbIam>,
    options: &O,
    with_password: impl Fn(O, &str) -> O,
    target: &str,
    err: impl Fn(sqlx::Error) -> SourceError,
) -> Result<O::Connection, SourceError>
where
    O: sqlx::ConnectOptions + Clone,
    O::Connection: Sized,
{
    match iam {
        None => options.connect().await.map_err(err),
        Some(iam) => {
            let options = with_password(options.clone(), &iam.password().await?);
            options.connect().await.map_err(|e| iam.denied(target, &e).unwrap_or_else(|| err(e)))
        }
    }
}

fn url_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("u={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn quote_pg(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
