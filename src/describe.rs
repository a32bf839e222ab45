//! Errors in words a user can act on: every error enum says what is wrong and, apart, what
//! to do ([`Diagnosis`]); an error and its causes fit on one line, with library wording said
//! plainly.

use std::fmt;

/// The one shape of an error here: the problem, and the fix when one is known. Each module's
/// error enum implements it and prints itself with [`render`], so a run's log and `doctor`
/// show the same words, and `doctor` prints each fix once, on its own line.
pub trait Diagnosis {
    /// What is wrong, without the fix.
    fn problem(&self) -> String;
    /// What to do about it, when that is known.
    fn fix(&self) -> Option<String>;
}

/// The Display of a [`Diagnosis`]: the problem, then `fix:` on its own line.
pub fn render(d: &dyn Diagnosis, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&d.problem())?;
    match d.fix() {
        Some(fix) => write!(f, "\n  fix: {fix}"),
        None => Ok(()),
    }
}

/// Whether an error text says the connection was refused.
pub fn is_refused(detail: &str) -> bool {
    detail.to_ascii_lowercase().contains("connection refused")
}

/// Library wording a user cannot act on, said plainly (the original stays after it).
fn plain(text: String) -> String {
    const SAID: &[(&str, &str)] = &[
        (
            "tunnel error: unsuccessful",
            "the HTTP proxy (HTTPS_PROXY) refused to open a connection to the host; allow it on the proxy or list \
             the host in NO_PROXY",
        ),
        ("dns error", "the host name does not resolve (check the URL and the pod's DNS)"),
        (
            "pool timed out while waiting for an open connection",
            "no database connection could be opened in time (source.connect_timeout_seconds): check host and port, \
             and that the network path (security group, NAT) allows it",
        ),
        ("connection refused", "nothing accepts connections there (check the URL and port)"),
        ("certificate", "the server's TLS certificate was not accepted"),
    ];
    let lower = text.to_ascii_lowercase();
    match SAID.iter().find(|(k, _)| lower.contains(k)) {
        Some((_, said)) => format!("{said} ({text})"),
        None => text,
    }
}

/// An error and all its causes on one line, in plain words where the library's are terse.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    plain(raw_chain(e))
}

/// An error and all its causes on one line: reqwest's own message omits the cause
/// ("connection refused", "certificate expired") that a user needs.
fn raw_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}
