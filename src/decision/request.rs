//! What is asked of an attempt and by whom.

use serde::Serialize;

use crate::verdict::Mode;

/// Where a request came from: the audit record says so, and the daemon
/// sends the verdict back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `edgeid verify` / `identify` on photo files.
    Cli,
    Dbus,
    Mqtt,
    /// The daemon's walk-up mode (nobody asked).
    WalkUp,
}

/// One request: 1:1 against a claimed subject, or 1:N.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub mode: Mode,
    /// The claimed subject (verify only).
    pub subject: Option<&'a str>,
    /// The requester's nonce, echoed in the verdict.
    pub nonce: Option<&'a str>,
    pub origin: Origin,
}

impl<'a> Request<'a> {
    /// A request of `mode`; the subject is kept only for 1:1.
    pub fn new(
        mode: Mode,
        subject: Option<&'a str>,
        nonce: Option<&'a str>,
        origin: Origin,
    ) -> Self {
        let subject = match mode {
            Mode::Verify => subject,
            Mode::Identify => None,
        };
        Self {
            mode,
            subject,
            nonce,
            origin,
        }
    }
}
