//! The one rule for what a test needs and a machine may lack.
//!
//! A test states its prerequisites with `require!`, which returns from the
//! test when [`require`] decides to skip:
//!
//! ```ignore
//! let samples = require!(samples());
//! require!(tools(&["mosquitto", "mosquitto_sub"]));
//! ```
//!
//! (A helper that returns an `Option` uses `require(samples())?` instead.)
//!
//! Something the setup scripts install (a tool, the sample photos, the
//! Python venv) and that is missing makes the test fail when `CI` is set,
//! and skip loudly otherwise. Hardware (camera, microphone, GPU) that the
//! machine does not have always skips: no script can install it.

use std::fmt;
use std::io::Write;

/// A prerequisite that is not there.
#[derive(Debug)]
pub struct Missing {
    what: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Installed by a setup script; `fix` says which one to run.
    Setup { fix: &'static str },
    /// A device this machine may simply not have.
    Hardware,
}

impl Missing {
    /// `what` is missing and `fix` (e.g. "run scripts/setup-system")
    /// provides it.
    pub fn setup(what: impl Into<String>, fix: &'static str) -> Missing {
        Missing {
            what: what.into(),
            kind: Kind::Setup { fix },
        }
    }

    /// This machine has no `what` (a camera, a microphone, a GPU).
    pub fn hardware(what: impl Into<String>) -> Missing {
        Missing {
            what: what.into(),
            kind: Kind::Hardware,
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Setup { fix } => write!(f, "missing: {}; {fix}", self.what),
            Kind::Hardware => write!(f, "no {} on this machine", self.what),
        }
    }
}

/// Whether missing prerequisites are failures: `CI` is set, non-empty and
/// not `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The prerequisite's value, or `None` after a loud skip message (the
/// caller returns). Panics instead when `CI` is set and the missing thing
/// is not hardware.
pub fn require<T>(prerequisite: Result<T, Missing>) -> Option<T> {
    let missing = match prerequisite {
        Ok(found) => return Some(found),
        Err(missing) => missing,
    };
    let test = test_name();
    match missing.kind {
        Kind::Setup { .. } if in_ci() => {
            panic!("{test}: {missing} (CI is set: a missing prerequisite is a failure, not a skip)")
        }
        Kind::Setup { .. } => loud(&format!(
            "SKIPPED {test}: {missing}; scripts/test sets up everything \
             (set CI=1 to make this a failure)"
        )),
        Kind::Hardware => loud(&format!("SKIPPED {test}: {missing}")),
    }
    None
}

/// Straight to the process's stderr: `eprintln!` would be captured by the
/// test harness and never shown for a test that passes.
fn loud(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "\n*** {message} ***\n");
}

/// The running test, as the test harness names its thread.
fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("this test")
        .to_owned()
}

/// `require!(prerequisite)`: the prerequisite's value, or `return` from the
/// calling test after [`require`] skipped it (or panic under `CI`).
#[macro_export]
macro_rules! require {
    ($prerequisite:expr) => {
        match $crate::support::require($prerequisite) {
            Some(found) => found,
            None => return,
        }
    };
}
