//! An Aurora-like endpoint with IAM database authentication on loopback: the emulated AWS
//! account (the cluster's OIDC provider, a role whose trust policy names the pod's service
//! account, `rds-db:connect` on one database user) and the emulator's RDS front before the
//! real PostgreSQL or MariaDB, where that user exists without a password.

use std::path::PathBuf;

use aurora2bq_google_emulator::aws::{AwsConfig, AwsOidcProvider, AwsRole, provider_id};
use aurora2bq_google_emulator::{DbEngine, RdsFront, RdsFrontConfig};
use serde_json::json;

use super::chain::{Chain, good_project};
use super::{AnyDb, MyDb, PgDb, unique};

pub const ACCOUNT: &str = "111122223333";
pub const ROLE: &str = "aurora2bq-reader";
pub const REGION: &str = "eu-west-1";
pub const RESOURCE_ID: &str = "cluster-EMULATED0RESOURCE";

pub fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}")
}

/// The trust policy `aurora2bq setup` describes: this issuer, this service account, IRSA's audience.
pub fn trust_policy(issuer: &str, subject: &str) -> serde_json::Value {
    let id = provider_id(issuer);
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{id}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{id}:sub"): subject, format!("{id}:aud"): "sts.amazonaws.com"}}
    }]})
}

pub fn connect_policy(user: &str) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "rds-db:connect",
        "Resource": format!("arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{RESOURCE_ID}/{user}")
    }]})
}

/// The account as it should be for `user`.
pub fn good_account(issuer: &str, user: &str) -> AwsConfig {
    AwsConfig {
        account: ACCOUNT.into(),
        oidc_providers: vec![AwsOidcProvider { url: None, client_ids: vec!["sts.amazonaws.com".into()] }],
        roles: vec![AwsRole {
            name: ROLE.into(),
            trust_policy: trust_policy(issuer, "system:serviceaccount:analytics:aurora2bq"),
            policies: vec![connect_policy(user)],
        }],
        credential_lifetime_secs: 3600,
    }
}

pub struct IamDb {
    pub chain: Chain,
    pub db: AnyDb,
    pub front: RdsFront,
    pub engine: DbEngine,
    pub user: String,
    pub ca_file: PathBuf,
    /// The connection URL: user, the front, the database; no password.
    pub url: String,
}

impl IamDb {
    /// A database with `ddl` run in it and an IAM user that may read it.
    pub async fn new(engine: DbEngine, ddl: &str) -> IamDb {
        let chain = Chain::start(good_project()).await;
        let user = unique("iam");
        let (db, upstream) = match engine {
            DbEngine::Postgres => {
                let db = PgDb::new().await;
                db.exec(ddl).await;
                db.exec(&format!(
                    "DO $$ BEGIN CREATE ROLE rds_iam; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
                     CREATE ROLE {user} LOGIN; GRANT rds_iam TO {user};
                     GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user};"
                ))
                .await;
                (AnyDb::Pg(db), super::env_var("AURORA2BQ_TEST_PG_URL"))
            }
            DbEngine::Mysql => {
                let db = MyDb::new().await;
                db.exec(ddl).await;
                let name = db.name.clone();
                db.exec(&format!(
                    "CREATE USER '{user}'@'localhost'; CREATE USER '{user}'@'127.0.0.1';
                     GRANT SELECT ON {name}.* TO '{user}'@'localhost'; GRANT SELECT ON {name}.* TO '{user}'@'127.0.0.1';"
                ))
                .await;
                (AnyDb::My(db), super::env_var("AURORA2BQ_TEST_MYSQL_URL"))
            }
        };
        let upstream = url::Url::parse(&upstream).expect("database URL");
        let upstream = format!("127.0.0.1:{}", upstream.port().unwrap_or(5432)).parse().expect("address");
        let issuer = chain.emulator.issuer();
        chain.emulator.update(|c| c.aws = good_account(&issuer, &user));
        let mut chain = chain;
        let front = chain
            .emulator
            .start_rds_front(
                RdsFrontConfig {
                    engine,
                    upstream,
                    region: REGION.into(),
                    resource_id: RESOURCE_ID.into(),
                    hostname: "localhost".into(),
                    iam_users: vec![user.clone()],
                },
                0,
            )
            .await
            .expect("RDS front");
        let ca_file = chain.dir.path().join("rds-ca.pem");
        std::fs::write(&ca_file, &front.ca_pem).expect("write CA");
        let (scheme, name) = match &db {
            AnyDb::Pg(d) => ("postgres", d.name.clone()),
            AnyDb::My(d) => ("mysql", d.name.clone()),
        };
        let url = format!("{scheme}://{user}@localhost:{}/{name}", front.addr.port());
        IamDb { chain, db, front, engine, user, ca_file, url }
    }

    /// The `[source]` keys that select RDS IAM through this emulator (role and token from
    /// IRSA's variables, see [`IamDb::irsa_env`]).
    pub fn source_keys(&self) -> String {
        format!(
            "auth = \"rds_iam\"\naws_region = \"{REGION}\"\naws_sts_url = \"{}\"\nca_file = \"{}\"\n",
            self.chain.emulator.aws_sts_url(),
            self.ca_file.display()
        )
    }

    /// What EKS sets in a pod whose ServiceAccount carries the role annotation.
    pub fn irsa_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ROLE_ARN", role_arn()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", self.chain.token_path.display().to_string()),
            ("TEST_SOURCE_URL", self.url.clone()),
        ]
    }

    /// Writes a run config for `tables` into the chain's folder.
    pub fn write_config(&self, dataset: &str, tables: &[&str]) -> PathBuf {
        let path = super::write_config(self.chain.dir.path(), &self.chain, dataset, tables, "");
        let mut text = std::fs::read_to_string(&path).expect("config");
        if self.engine == DbEngine::Mysql {
            text = text.replace("engine = \"postgres\"", "engine = \"mysql\"");
        }
        let text = text.replace(
            "url_env = \"TEST_SOURCE_URL\"\n",
            &format!("url_env = \"TEST_SOURCE_URL\"\n{}", self.source_keys()),
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// The tokens the front was given, and why any was refused.
    pub fn seen(&self) -> Vec<aurora2bq_google_emulator::TokenSeen> {
        self.front.seen.lock().expect("seen lock").clone()
    }
}
