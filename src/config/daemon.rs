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
    /// Used instead when such a request also listens (its policy has a
    /// voice): the probe is 2.7 s of speech heard after the request
    /// arrives, and the person needs a moment to start speaking.
    pub default_voice_timeout_ms: u32,
    /// Longer timeouts (D-Bus and MQTT alike) are cut to this, at most
    /// [`MAX_TIMEOUT_MS`].
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
            default_voice_timeout_ms: 8000,
            max_timeout_ms: 10_000,
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
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DaemonConfigError {
    #[error(
        "daemon.default_timeout_ms must be ≥ 1 and ≤ daemon.max_timeout_ms, which must be ≤ {MAX_TIMEOUT_MS}; daemon.default_voice_timeout_ms ≥ 1"
    )]
    Timeouts,
    #[error("daemon.enroll_samples must be 1..=50 (it is {0})")]
    EnrollSamples(u32),
    #[error("daemon.max_pending_requests must be 1..={MAX_PENDING} (it is {0})")]
    MaxPendingRequests(usize),
    #[error("daemon.threshold must be a similarity in [-1, 1] (it is {0})")]
    Threshold(f32),
    #[error("daemon.{key} must be {min}..={max} (it is {value})")]
    OutOfRange {
        key: &'static str,
        min: u64,
        max: u64,
        value: u64,
    },
}

/// The longest a request may hold the camera, whatever the config says:
/// requests wait for the camera together, so the longest timeout is how
/// long a handful of callers asking for it can keep the door busy (and a
/// caller renews it at will). A decision with liveness takes a few seconds
/// of head movement; 20 s is ample, the default 10 s.
pub const MAX_TIMEOUT_MS: u32 = 20_000;
/// Requests that may wait for the camera at once.
pub const MAX_PENDING: usize = 1024;

impl DaemonConfig {
    /// Checks the section on its own; `daemon.walk_up` also needs
    /// `identify_enabled`, which `Config::validate` checks.
    pub fn validate(&self) -> Result<(), DaemonConfigError> {
        // The listening default may exceed a lowered maximum: it is cut to
        // it, as a request's own timeout is, so old configs stay valid.
        if self.default_timeout_ms == 0
            || self.default_voice_timeout_ms == 0
            || self.max_timeout_ms < self.default_timeout_ms
            || self.max_timeout_ms > MAX_TIMEOUT_MS
        {
            return Err(DaemonConfigError::Timeouts);
        }
        if !(1..=50).contains(&self.enroll_samples) {
            return Err(DaemonConfigError::EnrollSamples(self.enroll_samples));
        }
        if !(1..=MAX_PENDING).contains(&self.max_pending_requests) {
            return Err(DaemonConfigError::MaxPendingRequests(
                self.max_pending_requests,
            ));
        }
        if let Some(t) = self.threshold
            && !(-1.0..=1.0).contains(&t)
        {
            return Err(DaemonConfigError::Threshold(t));
        }
        for (key, value, min, max) in [
            ("debounce_secs", self.debounce_secs, 0, 3600),
            (
                "enroll_timeout_ms",
                u64::from(self.enroll_timeout_ms),
                1000,
                600_000,
            ),
            ("shutdown_grace_ms", self.shutdown_grace_ms, 0, 60_000),
        ] {
            if !(min..=max).contains(&value) {
                return Err(DaemonConfigError::OutOfRange {
                    key,
                    min,
                    max,
                    value,
                });
            }
        }
        Ok(())
    }
}
