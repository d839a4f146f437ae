//! What travels between the sinks and the engine: the jobs the sinks
//! submit, the verdicts and events that come back, and the fixed facts
//! about the running engine.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{ApiError, Origin};
use crate::decision::{Modalities, Mode};

/// A signed verdict leaving the engine.
#[derive(Debug, Clone)]
pub struct VerdictOut {
    /// Compact JWS.
    pub verdict: String,
    /// `exp` claim, Unix seconds (for MQTT message expiry).
    pub exp: i64,
    pub origin: Origin,
    /// When the evidence the decision used was complete: the frame's
    /// capture, or the last audio of a voice probe (latency measurement).
    pub frame_captured_at: Option<Instant>,
}

#[derive(Debug, Clone)]
pub enum EnrollEvent {
    Progress {
        done: u32,
        needed: u32,
        hint: String,
    },
    Done {
        result: String,
    },
}

pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

pub enum Job {
    Decide {
        mode: Mode,
        subject: Option<String>,
        nonce: Option<String>,
        /// The policy the request runs under (the site's or a stronger one).
        modalities: Modalities,
        timeout: Duration,
        origin: Origin,
        received_at: Instant,
        reply: Reply<VerdictOut>,
    },
    Enroll {
        subject: String,
        /// What to enrol: `face`, `voice` or `face+voice`.
        modalities: Modalities,
        /// Replace an enrolled subject's templates (EnrollReplace); without
        /// it, an enrolled subject is refused, never silently replaced.
        replace: bool,
        by: Admin,
        events: mpsc::UnboundedSender<(String, EnrollEvent)>,
        reply: Reply<()>,
    },
    Revoke {
        subject: String,
        by: Admin,
        reply: Reply<usize>,
    },
    ListSubjects {
        reply: Reply<Vec<String>>,
    },
    /// Clear a subject's failed attempts (ends a lockout wait).
    Unlock {
        subject: String,
        by: Admin,
        reply: Reply<usize>,
    },
}

/// Who asked for an admin action, for its audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Admin {
    pub via: Origin,
    /// The caller's uid: as the bus daemon vouches for it, or this
    /// process's for the CLI verbs.
    pub uid: u32,
}

impl Admin {
    /// The user running this process (the CLI verbs).
    pub fn this_process() -> Self {
        Self {
            via: Origin::Cli,
            uid: nix::unistd::getuid().as_raw(),
        }
    }
}

/// A liveness challenge announced to the person at the camera (the D-Bus
/// sink sends it as the `Hint` signal). `nonce` is the request's ("" when
/// it had none).
#[derive(Debug, Clone)]
pub struct ChallengeHint {
    pub nonce: String,
    pub hint: String,
}

/// Fixed facts about the running daemon, for D-Bus properties.
#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub version: String,
    pub device_id: String,
    /// The device public key as an OKP JWK (JSON).
    pub device_key_jwk: String,
    /// "role id sha256" for each model in use.
    pub models: Vec<String>,
    pub identify_enabled: bool,
    /// The site's `[decision] modalities`.
    pub modalities: Modalities,
    /// Whether a microphone is configured (voice requests and enrolment).
    pub voice: bool,
    /// The camera's live status (state, source, frames, last error).
    #[serde(skip)]
    pub camera: Option<crate::sources::StatusProbe>,
}
