//! Lockout: after `max_failures` failed verifications of one subject within
//! `window`, verification answers `locked_out` without running the models
//! until the window has passed. Failures live in the store, so a restart
//! does not reset the count.

use serde::Serialize;

use super::Reason;
use crate::config::LockoutConfig;
use crate::store::{Store, StoreError, lockout as records};

/// What a 1:1 result tells the lockout: `Some(true)` for a match (clears
/// the count), `Some(false)` for a failed attempt, `None` when it says
/// nothing about the claimant (no face, poor quality, timeout). A
/// presentation attack is a failed attempt: whoever keeps presenting
/// prints or screens must not get unlimited tries.
pub fn attempt(reason: Reason) -> Option<bool> {
    match reason {
        Reason::Match => Some(true),
        Reason::NoMatch | Reason::PresentationAttack => Some(false),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LockState {
    Open { recent_failures: u32 },
    Locked { until_ms: i64, failures: u32 },
}

#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub max_failures: u32,
    pub window_ms: i64,
}

impl From<LockoutConfig> for Lockout {
    fn from(c: LockoutConfig) -> Self {
        Self {
            max_failures: c.max_failures.max(1),
            window_ms: (c.window_secs as i64).saturating_mul(1000),
        }
    }
}

impl Lockout {
    /// Locked while `max_failures` failures fall within the last window; no
    /// failure is recorded while locked, so it lifts one window after the
    /// failure that started it.
    pub fn check(
        &self,
        store: &Store,
        subject: &str,
        now_ms: i64,
    ) -> Result<LockState, StoreError> {
        let failures = records::failures_since(store, subject, now_ms - self.window_ms)?;
        let n = failures.len() as u32;
        if n >= self.max_failures {
            let first = failures[failures.len() - self.max_failures as usize];
            return Ok(LockState::Locked {
                until_ms: first + self.window_ms,
                failures: n,
            });
        }
        Ok(LockState::Open { recent_failures: n })
    }

    /// Records the result of a verification that ran; returns the state after it.
    pub fn record(
        &self,
        store: &mut Store,
        subject: &str,
        accepted: bool,
        now_ms: i64,
    ) -> Result<LockState, StoreError> {
        if accepted {
            records::clear(store, subject)?;
        } else {
            records::record_failure(store, subject, now_ms, now_ms - self.window_ms)?;
        }
        self.check(store, subject, now_ms)
    }
}
