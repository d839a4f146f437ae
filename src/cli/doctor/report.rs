//! One check's verdict, and the screen (or JSON) that shows them all.

use serde::Serialize;

use crate::cli::output::emit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report: what was checked, what was found, what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name scripts can look for: camera, microphone, models, ...
    pub name: &'static str,
    pub status: Status,
    /// One line: what was found.
    pub summary: String,
    /// What to do about it (none when ok).
    pub fix: Option<String>,
    /// What the probe measured, for `--json` readers.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Check {
    pub fn ok(name: &'static str, summary: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, summary, None::<String>)
    }

    pub fn warn(name: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, summary, Some(fix))
    }

    pub fn fail(name: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, summary, Some(fix))
    }

    fn new(
        name: &'static str,
        status: Status,
        summary: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) -> Self {
        Self {
            name,
            status,
            summary: summary.into(),
            fix: fix.map(Into::into),
            detail: serde_json::Value::Null,
        }
    }

    /// Attaches what the probe measured.
    pub fn with_detail(mut self, detail: impl Serialize) -> Self {
        self.detail = serde_json::to_value(detail).unwrap_or_default();
        self
    }
}

/// An error and its causes on one line (the library's errors keep their
/// causes as sources).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub failed: usize,
    pub warned: usize,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        let count = |s| checks.iter().filter(|c| c.status == s).count();
        let (failed, warned) = (count(Status::Fail), count(Status::Warn));
        Self {
            ok: failed == 0,
            failed,
            warned,
            checks,
        }
    }

    pub fn failed_names(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name)
            .collect()
    }

    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        emit(json, self, |r| {
            for c in &r.checks {
                println!("{:<4}  {:<10}  {}", c.status.label(), c.name, c.summary);
                if let Some(fix) = &c.fix {
                    println!("{:<4}  {:<10}  -> {fix}", "", "");
                }
            }
            println!(
                "{} checks: {} failed, {} warnings",
                r.checks.len(),
                r.failed,
                r.warned
            );
        })
    }
}
