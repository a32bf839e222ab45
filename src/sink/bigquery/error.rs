//! Errors of the BigQuery sink, each saying which call failed and, where it is known,
//! what to do.

use crate::auth::AuthError;
use crate::retry::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("getting an access token for BigQuery")]
    Auth(#[from] AuthError),
    #[error("BigQuery {what}: HTTP {status}: {message}{}", fix.as_ref().map(|f| format!("\n  fix: {f}")).unwrap_or_default())]
    Http { what: String, status: u16, message: String, fix: Option<String>, transient: bool },
    #[error("BigQuery {what}: {detail} (after {attempts} attempts){}", transport_fix(detail))]
    Transport { what: String, detail: String, attempts: u32 },
    #[error("BigQuery {what}: the query failed: {message}")]
    Query { what: String, message: String },
    #[error("Storage Write API {what}: {code}: {message}")]
    Grpc { what: String, code: String, message: String, verdict: Verdict },
    #[error("Storage Write API refused rows of {table}: {}", format_rows(.rows))]
    RowErrors { table: String, rows: Vec<(i64, String)> },
    #[error(transparent)]
    Encode(#[from] super::encode::EncodeError),
    #[error("{table}: {detail}")]
    Schema { table: String, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("the run was stopped")]
    Cancelled,
}

fn format_rows(rows: &[(i64, String)]) -> String {
    let shown: Vec<String> = rows.iter().take(5).map(|(i, m)| format!("row {i}: {m}")).collect();
    let more = rows.len().saturating_sub(5);
    if more > 0 { format!("{} (and {more} more)", shown.join("; ")) } else { shown.join("; ") }
}

impl SinkError {
    /// Whether a sink failure may pass on its own, and after how long (the rule itself is
    /// [`crate::retry::transient`]'s; this reads what each variant recorded of it).
    pub fn verdict(&self) -> Verdict {
        match self {
            SinkError::Auth(e) => Verdict::from_bool(e.is_transient()),
            SinkError::Transport { detail, .. } => Verdict::from_bool(!crate::describe::is_refused(detail)),
            SinkError::Http { transient, .. } => Verdict::from_bool(*transient),
            SinkError::Grpc { verdict, .. } => *verdict,
            _ => Verdict::Permanent,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.verdict().is_transient()
    }

    /// What is wrong and what to do, apart, for reports that print the fix on its own line.
    pub fn problem_and_fix(&self) -> (String, Option<String>) {
        match self {
            SinkError::Http { what, status, message, fix, .. } => {
                (format!("BigQuery {what}: HTTP {status}: {message}"), fix.clone())
            }
            SinkError::Transport { what, detail, attempts } => (
                format!("BigQuery {what}: {detail} (after {attempts} attempts)"),
                Some(transport_fix_text(detail).to_owned()),
            ),
            SinkError::Auth(AuthError::Broken { problem, fix, .. }) => (problem.clone(), fix.clone()),
            other => (crate::describe::error_chain(other), None),
        }
    }
}

/// The fix line for a call that never got an answer.
fn transport_fix(detail: &str) -> String {
    format!("\n  fix: {}", transport_fix_text(detail))
}

fn transport_fix_text(detail: &str) -> &'static str {
    if crate::describe::is_refused(detail) {
        "check google.bigquery_url (unset, it is Google's own endpoint) and that the pod may reach it"
    } else {
        "check that the pod can reach BigQuery over HTTPS (NAT or proxy in private subnets), then retry"
    }
}
