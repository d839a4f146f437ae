//! What travels between the sinks and the engine: the jobs the sinks
//! submit, the verdicts and events that come back, and the fixed facts
//! about the running engine.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{ApiError, Origin};
use crate::decision::Mode;

/// A signed verdict leaving the engine.
#[derive(Debug, Clone)]
pub struct VerdictOut {
    /// Compact JWS.
    pub verdict: String,
    /// `exp` claim, Unix seconds (for MQTT message expiry).
    pub exp: i64,
    pub origin: Origin,
    /// When the frame the decision used was captured (latency measurement).
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
        timeout: Duration,
        origin: Origin,
        received_at: Instant,
        reply: Reply<VerdictOut>,
    },
    Enroll {
        subject: String,
        events: mpsc::UnboundedSender<(String, EnrollEvent)>,
        reply: Reply<()>,
    },
    Revoke {
        subject: String,
        reply: Reply<usize>,
    },
    ListSubjects {
        reply: Reply<Vec<String>>,
    },
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
    /// The camera's live status (state, source, frames, last error).
    #[serde(skip)]
    pub camera: Option<crate::sources::StatusProbe>,
}
