//! `aurora2bq setup`: the whole keyless set-up, generated from the config and a few names
//! instead of typed by hand. It writes (or prints as one script) every step in order, each
//! value filled in: the EKS OIDC issuer; the AWS OIDC provider, role (trusted by this
//! service account alone) and its `rds-db:connect` policy; the database user and grants;
//! the Google pool, provider, service account and roles; the credential config; and a
//! kustomize overlay of `k8s/`. `doctor` then checks what it set up.

mod grants;
mod overlay;
mod script;

use std::path::{Path, PathBuf};

use super::exit;
use crate::config::{Config, SourceAuth, UrlFrom};

pub const EXAMPLES: &str = "Examples:
  aurora2bq setup --config config.toml --cluster prod-eks --namespace analytics --service-account aurora2bq \\
    --project-id my-analytics --project-number 123456789012 --aws-account 111122223333 --region eu-west-1 \\
    --db-cluster app-aurora --db-endpoint app-aurora.cluster-abc.eu-west-1.rds.amazonaws.com --database app \\
    --db-user aurora2bq --out aurora2bq-setup
  bash aurora2bq-setup/setup.sh && kubectl apply -k aurora2bq-setup/overlay
  # the same steps as one script on standard output, with a token whose audience is Google's provider:
  aurora2bq setup ... --token audience > setup.sh";

/// Which token the pod shows Google.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPath {
    /// IRSA's token (audience sts.amazonaws.com), the same one AWS takes.
    Irsa,
    /// A projected token of its own whose audience is the Google provider: Google never
    /// accepts an AWS audience, and a leaked Google token is no use at AWS.
    Audience,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// The EKS cluster the CronJob runs in.
    #[arg(long)]
    cluster: String,
    #[arg(long)]
    namespace: String,
    /// The Kubernetes ServiceAccount of the pod.
    #[arg(long)]
    service_account: String,
    #[arg(long)]
    project_id: String,
    /// The project NUMBER (`gcloud projects describe ID --format='value(projectNumber)'`).
    #[arg(long)]
    project_number: String,
    #[arg(long)]
    aws_account: String,
    /// The AWS region of the cluster and the database.
    #[arg(long)]
    region: String,
    /// The database user aurora2bq logs in as, with IAM tokens.
    #[arg(long)]
    db_user: String,
    /// The Aurora DB cluster identifier.
    #[arg(long)]
    db_cluster: String,
    /// The cluster endpoint, HOST or HOST:PORT (a reader endpoint keeps load off the writer).
    #[arg(long)]
    db_endpoint: String,
    /// The database to read (PostgreSQL: required; MySQL: the default schema).
    #[arg(long)]
    database: Option<String>,
    #[arg(long, value_enum, default_value = "irsa")]
    token: TokenPath,
    #[arg(long, default_value = "eks")]
    pool: String,
    #[arg(long, default_value = "eks-oidc")]
    provider: String,
    /// The Google service account's name (the part before `@`).
    #[arg(long, default_value = "aurora2bq")]
    google_service_account: String,
    #[arg(long, default_value = "aurora2bq")]
    aws_role: String,
    /// The base manifests the overlay builds on.
    #[arg(long, default_value = "k8s")]
    k8s_base: PathBuf,
    /// Write the files here instead of printing one script.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Development only: the emulator's STS and IAM Credentials, for the credential config.
    #[arg(long, hide = true)]
    sts_url: Option<String>,
    #[arg(long, hide = true)]
    iam_url: Option<String>,
}

/// Every value the steps use, checked.
pub(super) struct Values {
    pub a: Args,
    pub config: Config,
    pub config_text: String,
    pub url_env: String,
    pub host: String,
    pub port: u16,
    pub gsa: String,
    pub role_arn: String,
    pub audience: String,
    pub db_url: String,
}

/// Where the pod's tokens are mounted.
pub(super) const IRSA_TOKEN: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
pub(super) const GOOGLE_TOKEN_DIR: &str = "/var/run/secrets/aurora2bq/google";

/// A generated file, relative to the output folder.
pub(super) struct File {
    pub path: &'static str,
    pub text: String,
}

pub fn run(a: Args) -> u8 {
    let values = match check(a) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("aurora2bq setup: {e}");
            return exit::SETUP_FAILED;
        }
    };
    let overlay_dir = values.a.out.clone().unwrap_or_default().join("overlay");
    let files = match overlay::files(&values, &overlay_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("aurora2bq setup: {e}");
            return exit::SETUP_FAILED;
        }
    };
    let files: Vec<File> = [grants::file(&values), credential_file(&values)].into_iter().chain(files).collect();
    let result = match &values.a.out {
        None => {
            print!("{}", script::render(&values, Some(&files)));
            Ok(())
        }
        Some(dir) => write_all(dir, &files, &script::render(&values, None)),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("aurora2bq setup: {e}");
            exit::SETUP_FAILED
        }
    }
}

fn write_all(dir: &Path, files: &[File], script: &str) -> Result<(), String> {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    for f in files {
        write(f.path, &f.text)?;
    }
    write("setup.sh", script)?;
    eprintln!(
        "wrote {} files to {}; review them, then run: bash {}/setup.sh",
        files.len() + 1,
        dir.display(),
        dir.display()
    );
    Ok(())
}

fn credential_file(v: &Values) -> File {
    let token_path = match v.a.token {
        TokenPath::Irsa => PathBuf::from(IRSA_TOKEN),
        TokenPath::Audience => Path::new(GOOGLE_TOKEN_DIR).join("token"),
    };
    let json = super::cred_config::credential_config(&super::cred_config::Wif {
        project_number: &v.a.project_number,
        pool: &v.a.pool,
        provider: &v.a.provider,
        service_account: Some(&v.gsa),
        token_path: &token_path,
        lifetime_seconds: None,
        sts_url: v.a.sts_url.as_deref(),
        iam_url: v.a.iam_url.as_deref(),
    });
    File { path: "credential-config.json", text: serde_json::to_string_pretty(&json).expect("JSON") + "\n" }
}

/// Names as each cloud accepts them; every value reaches a shell line, so none may carry a
/// quote, a space or a `$`.
fn check(a: Args) -> Result<Values, String> {
    let text = std::fs::read_to_string(&a.config).map_err(|e| format!("cannot read {}: {e}", a.config.display()))?;
    let config = crate::config::parse(&a.config, &text).map_err(|e| e.to_string())?;
    if !matches!(config.source.auth, SourceAuth::RdsIam(_)) {
        return Err(format!(
            "{} does not use RDS IAM authentication, which the set-up is for: add `auth = \"rds_iam\"` under [source] \
             (the URL then carries no password)",
            a.config.display()
        ));
    }
    let UrlFrom::Env(url_env) = &config.source.url else {
        return Err("the set-up passes the connection URL in an environment variable: use source.url_env = \
                    \"AURORA2BQ_SOURCE_URL\" instead of url_file"
            .into());
    };
    let url_env = url_env.clone();
    let digits = |s: &str, n: Option<usize>| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && n.is_none_or(|n| s.len() == n)
    };
    let name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let rules: [(&str, &str, bool); 12] = [
        ("--project-number", &a.project_number, digits(&a.project_number, None)),
        ("--aws-account", &a.aws_account, digits(&a.aws_account, Some(12))),
        ("--region", &a.region, crate::trust::is_aws_region(&a.region)),
        ("--cluster", &a.cluster, name(&a.cluster)),
        ("--namespace", &a.namespace, name(&a.namespace) && !a.namespace.contains('_')),
        ("--service-account", &a.service_account, name(&a.service_account) && !a.service_account.contains('_')),
        ("--project-id", &a.project_id, name(&a.project_id)),
        (
            "--db-user",
            &a.db_user,
            a.db_user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !a.db_user.is_empty(),
        ),
        ("--db-cluster", &a.db_cluster, name(&a.db_cluster)),
        ("--pool / --provider", &a.pool, name(&a.pool) && name(&a.provider)),
        ("--google-service-account", &a.google_service_account, name(&a.google_service_account)),
        ("--aws-role", &a.aws_role, name(&a.aws_role)),
    ];
    if let Some((flag, value, _)) = rules.iter().find(|(_, _, ok)| !ok) {
        return Err(format!("{flag} {value:?} is not a valid name for it"));
    }
    let (host, port) = match a.db_endpoint.rsplit_once(':') {
        Some((h, p)) => {
            (h.to_owned(), p.parse::<u16>().map_err(|_| format!("--db-endpoint {:?}: bad port", a.db_endpoint))?)
        }
        None => {
            (a.db_endpoint.clone(), if config.source.engine == crate::config::Engine::Postgres { 5432 } else { 3306 })
        }
    };
    if !name(&host) {
        return Err(format!("--db-endpoint {:?} is not a host name", a.db_endpoint));
    }
    let database = match (&a.database, config.source.engine) {
        (Some(d), _) if name(d) => d.clone(),
        (Some(d), _) => return Err(format!("--database {d:?} is not a database name")),
        (None, crate::config::Engine::Postgres) => return Err("--database is required for PostgreSQL".into()),
        (None, crate::config::Engine::Mysql) => String::new(),
    };
    let scheme = config.source.engine.name();
    let db_url = format!("{scheme}://{}@{host}:{port}/{database}", a.db_user);
    let gsa = format!("{}@{}.iam.gserviceaccount.com", a.google_service_account, a.project_id);
    let pool_path = format!("projects/{}/locations/global/workloadIdentityPools/{}", a.project_number, a.pool);
    Ok(Values {
        role_arn: format!("arn:aws:iam::{}:role/{}", a.aws_account, a.aws_role),
        audience: format!("//iam.googleapis.com/{pool_path}/providers/{}", a.provider),
        gsa,
        db_url,
        host,
        port,
        url_env,
        config_text: text,
        config,
        a,
    })
}
