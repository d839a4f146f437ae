//! The `[daemon]` section of `edgeid.toml`: how `edgeid run` serves
//! requests (timeouts, queue bound, walk-up, enrollment, detector). Here
//! rather than in `daemon/` so the config can be assembled without
//! importing the daemon that reads it.

use serde::{Deserialize, Serialize};

use crate::vision::detect::DetectorRange;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Used when a request gives timeout 0.
    pub default_timeout_ms: u32,
    /// Longer timeouts are clamped to this.
    pub max_timeout_ms: u32,
    /// Identify whoever stands in front of the camera and publish each
    /// verdict (needs `identify_enabled`: it is 1:N identification).
    pub walk_up: bool,
    /// Walk-up: the same outcome for the same subject is not repeated within this window.
    pub debounce_secs: u64,
    /// Usable face samples an enrollment collects.
    pub enroll_samples: u32,
    pub enroll_timeout_ms: u32,
    /// Similarity threshold; default the manifest's value at FAR 1e-3.
    pub threshold: Option<f32>,
    /// Requests waiting for the pipeline beyond this are answered `busy`.
    pub max_pending_requests: usize,
    /// On SIGTERM, how long to keep trying to deliver queued verdicts.
    pub shutdown_grace_ms: u64,
    /// Face detector: "short" (128×128, faces within ~2 m) or "full"
    /// (256×256, smaller faces, four times the cost).
    pub detector: DetectorRange,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            default_timeout_ms: 3000,
            max_timeout_ms: 30_000,
            walk_up: false,
            debounce_secs: 10,
            enroll_samples: 5,
            enroll_timeout_ms: 30_000,
            threshold: None,
            max_pending_requests: 16,
            shutdown_grace_ms: 5000,
            detector: Default::default(),
        }
    }
}

/// A value in `[daemon]` the daemon cannot work with; each names its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaemonConfigError {
    #[error("daemon.default_timeout_ms must be ≥ 1 and ≤ daemon.max_timeout_ms")]
    Timeouts,
    #[error("daemon.enroll_samples must be 1..=50 (it is {0})")]
    EnrollSamples(u32),
    #[error("daemon.max_pending_requests must be at least 1")]
    MaxPendingRequests,
}

impl DaemonConfig {
    /// Checks the section on its own; `daemon.walk_up` also needs
    /// `identify_enabled`, which `Config::validate` checks.
    pub fn validate(&self) -> Result<(), DaemonConfigError> {
        if self.default_timeout_ms == 0 || self.max_timeout_ms < self.default_timeout_ms {
            return Err(DaemonConfigError::Timeouts);
        }
        if !(1..=50).contains(&self.enroll_samples) {
            return Err(DaemonConfigError::EnrollSamples(self.enroll_samples));
        }
        if self.max_pending_requests == 0 {
            return Err(DaemonConfigError::MaxPendingRequests);
        }
        Ok(())
    }
}
