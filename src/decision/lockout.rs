//! Lockout with progressive back-off. Failed 1:1 attempts of a subject are
//! counted over `window_secs`; the first `max_failures` cost nothing, each
//! one after that makes the subject wait before the next attempt, twice as
//! long as the last (`backoff_initial_secs`, doubling, at most
//! `backoff_max_secs`), answered `locked_out` without running the models.
//! A hard lock of a whole window let anyone who could send five requests
//! lock a person out for a minute, renewably; a back-off costs a guesser
//! exponentially more time while a few wrong faces cost the person seconds.
//!
//! Only an attempt that judged a face counts (`attempt`), failures live in
//! the store (a restart does not reset them), and an admin can clear them
//! (`Unlock` on D-Bus, `edgeid subjects unlock`), audited.

use serde::{Deserialize, Serialize};

use super::Reason;
use crate::store::{Store, StoreError, lockout as records};

/// The `[lockout]` section of `edgeid.toml`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failed attempts within the window that cost no wait.
    pub max_failures: u32,
    /// How long a failure is remembered, seconds.
    pub window_secs: u64,
    /// The wait after the first failure beyond `max_failures`, seconds;
    /// each further failure doubles it.
    pub backoff_initial_secs: u64,
    /// The longest wait, seconds.
    pub backoff_max_secs: u64,
}

/// A `[lockout]` value that would disable or break lockout.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LockoutConfigError {
    #[error("lockout.max_failures must be 1..=1000 (it is {0})")]
    MaxFailures(u32),
    #[error("lockout.window_secs must be 1..=86400 (it is {0}): 0 would turn lockout off")]
    Window(u64),
    #[error(
        "lockout.backoff_initial_secs must be 1..=3600 and lockout.backoff_max_secs from it to 86400 \
         (they are {0} and {1})"
    )]
    Backoff(u64, u64),
}

impl LockoutConfig {
    pub fn validate(&self) -> Result<(), LockoutConfigError> {
        if !(1..=1000).contains(&self.max_failures) {
            return Err(LockoutConfigError::MaxFailures(self.max_failures));
        }
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(LockoutConfigError::Window(self.window_secs));
        }
        if !(1..=3600).contains(&self.backoff_initial_secs)
            || !(self.backoff_initial_secs..=86_400).contains(&self.backoff_max_secs)
        {
            return Err(LockoutConfigError::Backoff(
                self.backoff_initial_secs,
                self.backoff_max_secs,
            ));
        }
        Ok(())
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 900,
            backoff_initial_secs: 2,
            backoff_max_secs: 300,
        }
    }
}

/// What a 1:1 result tells the lockout: `Some(true)` for a match (clears
/// the count), `Some(false)` for a failed attempt, `None` when no face was
/// judged against the claim. Only `no_match` is a failure: a usable face
/// was scored (past liveness, when it is on) and was not the subject's. A
/// presentation attack, no face, poor quality or a timeout say nothing
/// about the claimant: counting them let anyone holding up a photo, or
/// sending requests to an empty camera, lock a person out.
pub fn attempt(reason: Reason) -> Option<bool> {
    match reason {
        Reason::Match => Some(true),
        // A judged face or voice that was someone else's.
        Reason::NoMatch | Reason::VoiceMismatch => Some(false),
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
    pub initial_ms: i64,
    pub max_ms: i64,
}

impl From<LockoutConfig> for Lockout {
    fn from(c: LockoutConfig) -> Self {
        let ms = |secs: u64| i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000);
        Self {
            max_failures: c.max_failures.max(1),
            window_ms: ms(c.window_secs),
            initial_ms: ms(c.backoff_initial_secs),
            max_ms: ms(c.backoff_max_secs),
        }
    }
}

impl Lockout {
    /// The wait after `failures` failures within the window (0: none).
    pub fn wait_ms(&self, failures: u32) -> i64 {
        if failures < self.max_failures {
            return 0;
        }
        let doublings = (failures - self.max_failures).min(40);
        self.initial_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_ms)
    }

    /// Locked until the wait since the latest failure has passed.
    pub fn check(
        &self,
        store: &Store,
        subject: &str,
        now_ms: i64,
    ) -> Result<LockState, StoreError> {
        let failures = records::failures_since(store, subject, now_ms - self.window_ms)?;
        let n = u32::try_from(failures.len()).unwrap_or(u32::MAX);
        if let Some(&latest) = failures.last() {
            let until_ms = latest.saturating_add(self.wait_ms(n));
            if now_ms < until_ms {
                return Ok(LockState::Locked {
                    until_ms,
                    failures: n,
                });
            }
        }
        Ok(LockState::Open { recent_failures: n })
    }

    /// Records the result of an attempt that judged a face; returns the
    /// state after it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_and_is_capped() {
        let l = Lockout::from(LockoutConfig::default());
        let waits: Vec<i64> = (0..14).map(|n| l.wait_ms(n)).collect();
        assert_eq!(
            waits,
            [
                0, 0, 0, 0, 0, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000,
                300_000
            ]
        );
        assert_eq!(l.wait_ms(u32::MAX), 300_000);
    }

    #[test]
    fn only_a_judged_face_counts() {
        assert_eq!(attempt(Reason::Match), Some(true));
        assert_eq!(attempt(Reason::NoMatch), Some(false));
        for r in [
            Reason::PresentationAttack,
            Reason::NoFace,
            Reason::LowQuality,
            Reason::MultipleFaces,
            Reason::Timeout,
            Reason::LockedOut,
        ] {
            assert_eq!(attempt(r), None, "{r}");
        }
    }

    #[test]
    fn config_bounds() {
        let ok = LockoutConfig::default();
        assert!(ok.validate().is_ok());
        let bad = LockoutConfig {
            backoff_max_secs: 1,
            ..ok
        };
        assert_eq!(bad.validate(), Err(LockoutConfigError::Backoff(2, 1)));
    }
}
