//! Lockout: after `max_failures` failed verifications of one subject within
//! `window`, verification answers `locked_out` without running the models
//! until the window has passed. Failures live in the store, so a restart
//! does not reset the count.

use serde::{Deserialize, Serialize};

use super::Reason;
use crate::store::{Store, StoreError, lockout as records};

/// The `[lockout]` section of `edgeid.toml`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failed verifications of one subject that trigger a lockout.
    pub max_failures: u32,
    /// Window in which they are counted, and how long the lockout lasts, seconds.
    pub window_secs: u64,
}

/// A `[lockout]` value that would disable or break lockout.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LockoutConfigError {
    #[error("lockout.max_failures must be 1..=1000 (it is {0})")]
    MaxFailures(u32),
    #[error("lockout.window_secs must be 1..=86400 (it is {0}): 0 would turn lockout off")]
    Window(u64),
}

impl LockoutConfig {
    pub fn validate(&self) -> Result<(), LockoutConfigError> {
        if !(1..=1000).contains(&self.max_failures) {
            return Err(LockoutConfigError::MaxFailures(self.max_failures));
        }
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(LockoutConfigError::Window(self.window_secs));
        }
        Ok(())
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 60,
        }
    }
}

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
