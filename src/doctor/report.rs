//! The doctor's checklist: one line per link for people, or JSON for machines.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    /// Not applicable to this configuration.
    Skipped,
    /// Not run because an earlier link is broken.
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found (never a token or password).
    pub details: Vec<String>,
    /// What is wrong, when it failed.
    pub problem: Option<String>,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, details: Vec<String>) -> Self {
        Self { name, status: Status::Ok, details, problem: None, fix: None }
    }

    pub fn skipped(name: &'static str, why: impl Into<String>) -> Self {
        Self { name, status: Status::Skipped, details: vec![why.into()], problem: None, fix: None }
    }

    pub fn failed(name: &'static str, details: Vec<String>, problem: impl Into<String>, fix: Option<String>) -> Self {
        Self { name, status: Status::Failed, details, problem: Some(problem.into()), fix }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        Self { ok: checks.iter().all(|c| c.status != Status::Failed), checks }
    }

    /// The first failed check, if any.
    pub fn broken(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == Status::Failed)
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.checks.iter().enumerate() {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Failed => "FAIL",
                Status::Skipped => "skip",
                Status::NotRun => "----",
            };
            out.push_str(&format!("[{mark}] {}. {}\n", i + 1, c.name));
            for d in &c.details {
                out.push_str(&format!("         {d}\n"));
            }
            if let Some(p) = &c.problem {
                out.push_str(&format!("         problem: {}\n", indent(p)));
            }
            if let Some(f) = &c.fix {
                out.push_str(&format!("         fix: {}\n", indent(f)));
            }
        }
        out.push_str(if self.ok {
            "all links work\n"
        } else {
            "a link is broken: fix it and run `aurora2bq doctor` again\n"
        });
        out
    }

    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}

fn indent(s: &str) -> String {
    s.replace('\n', "\n         ")
}
