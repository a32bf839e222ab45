//! Errors of the BigQuery sink, each saying which call failed and, apart, what to do
//! ([`Diagnosis`]).

use crate::auth::AuthError;
use crate::describe::{Diagnosis, is_refused};
use crate::retry::Verdict;

#[derive(Debug)]
pub enum SinkError {
    /// No access token for BigQuery.
    Auth(AuthError),
    /// BigQuery answered with an error status.
    Http {
        what: String,
        status: u16,
        message: String,
        fix: Option<String>,
        transient: bool,
    },
    /// No answer arrived.
    Transport {
        what: String,
        detail: String,
        attempts: u32,
    },
    /// A query job ran and failed.
    Query {
        what: String,
        message: String,
    },
    /// The Storage Write API answered with an error status.
    Grpc {
        what: String,
        code: String,
        message: String,
        verdict: Verdict,
    },
    RowErrors {
        table: String,
        rows: Vec<(i64, String)>,
    },
    Encode(super::encode::EncodeError),
    /// The target's or the load's columns do not fit.
    Schema {
        table: String,
        detail: String,
    },
    /// BigQuery holds fewer or more rows than were sent: nothing was committed.
    RowCount {
        table: String,
        sent: i64,
        acknowledged: i64,
        finalized: i64,
    },
    /// The stored state of a table cannot be read.
    State {
        table: String,
        detail: String,
    },
    /// The configuration of the BigQuery side is not usable.
    Config(String),
    /// A task of ours ended without an answer (a defect, never the user's input).
    Task(String),
    Cancelled,
}

impl From<AuthError> for SinkError {
    fn from(e: AuthError) -> Self {
        SinkError::Auth(e)
    }
}

impl From<super::encode::EncodeError> for SinkError {
    fn from(e: super::encode::EncodeError) -> Self {
        SinkError::Encode(e)
    }
}

fn format_rows(rows: &[(i64, String)]) -> String {
    let shown: Vec<String> = rows.iter().take(5).map(|(i, m)| format!("row {i}: {m}")).collect();
    let more = rows.len().saturating_sub(5);
    if more > 0 { format!("{} (and {more} more)", shown.join("; ")) } else { shown.join("; ") }
}

impl Diagnosis for SinkError {
    fn problem(&self) -> String {
        use SinkError::*;
        match self {
            Auth(e) => format!("getting an access token for BigQuery: {}", e.problem()),
            Http { what, status, message, .. } => format!("BigQuery {what}: HTTP {status}: {message}"),
            Transport { what, detail, attempts } => format!("BigQuery {what}: {detail} (after {attempts} attempts)"),
            Query { what, message } => format!("BigQuery {what}: the query failed: {message}"),
            Grpc { what, code, message, .. } => format!("Storage Write API {what}: {code}: {message}"),
            RowErrors { table, rows } => format!("Storage Write API refused rows of {table}: {}", format_rows(rows)),
            Encode(e) => e.to_string(),
            Schema { table, detail } | State { table, detail } => format!("{table}: {detail}"),
            RowCount { table, sent, acknowledged, finalized } => format!(
                "{table}: row count mismatch: {sent} sent, {acknowledged} acknowledged, {finalized} in the finalized \
                 stream; nothing was committed"
            ),
            Config(detail) => detail.clone(),
            Task(detail) => format!("an internal task failed: {detail}"),
            Cancelled => "the run was stopped".into(),
        }
    }

    fn fix(&self) -> Option<String> {
        use SinkError::*;
        match self {
            Auth(e) => e.fix(),
            Http { fix, .. } => fix.clone(),
            Transport { detail, .. } => Some(
                if is_refused(detail) {
                    "check google.bigquery_url (unset, it is Google's own endpoint) and that the pod may reach it"
                } else {
                    "check that the pod can reach BigQuery over HTTPS (NAT or proxy in private subnets), then retry"
                }
                .into(),
            ),
            RowCount { .. } => Some("run again: the next run reloads the same window".into()),
            State { .. } => Some(
                "aurora2bq wrote this state; if it was edited by hand, delete that table's row from the state \
                 table, and the next run loads the table from the start"
                    .into(),
            ),
            Task(_) => Some("report it as a bug, with the log; the next run starts afresh".into()),
            _ => None,
        }
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::describe::render(self, f)
    }
}

impl std::error::Error for SinkError {}

impl SinkError {
    /// Whether a sink failure may pass on its own, and after how long (the rule itself is
    /// [`crate::retry::transient`]'s; this reads what each variant recorded of it).
    pub fn verdict(&self) -> Verdict {
        match self {
            SinkError::Auth(e) => Verdict::from_bool(e.is_transient()),
            SinkError::Transport { detail, .. } => Verdict::from_bool(!is_refused(detail)),
            SinkError::Http { transient, .. } => Verdict::from_bool(*transient),
            SinkError::Grpc { verdict, .. } => *verdict,
            _ => Verdict::Permanent,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.verdict().is_transient()
    }
}
