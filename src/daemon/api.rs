//! What the sinks may ask of the engine, and the errors they get back. The
//! sinks (D-Bus, MQTT) translate these into their own wire forms; the
//! engine knows nothing of buses.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::decision::Mode;

/// Errors a caller can act on; each maps to a named D-Bus error
/// (`org.edgeid.Auth1.Error.<Variant>`) and an MQTT error message.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    NoSuchSubject(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    ShuttingDown(String),
    #[error("{0}")]
    PresentationAttack(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The last part of the D-Bus error name and the MQTT `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAuthorized(_) => "NotAuthorized",
            Self::NoSuchSubject(_) => "NoSuchSubject",
            Self::Busy(_) => "Busy",
            Self::Timeout(_) => "Timeout",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::Disabled(_) => "Disabled",
            Self::ShuttingDown(_) => "ShuttingDown",
            Self::PresentationAttack(_) => "PresentationAttack",
            Self::Internal(_) => "Internal",
        }
    }
}

/// Where a request came from (logs, and which sink carries the verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Dbus,
    Mqtt,
    WalkUp,
}

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

/// The sinks' side of the engine: cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: SyncSender<Job>,
    /// Cleared on SIGTERM: new requests are refused, taken ones answered.
    accepting: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub info: std::sync::Arc<EngineInfo>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default_timeout: Duration,
    pub max_timeout: Duration,
}

impl Limits {
    /// 0 means "the default"; longer than the maximum is clamped.
    pub fn timeout(&self, ms: u32) -> Duration {
        if ms == 0 {
            self.default_timeout
        } else {
            Duration::from_millis(u64::from(ms)).min(self.max_timeout)
        }
    }
}

pub const MAX_NONCE_LEN: usize = 128;

/// Nonces are echoed into signed verdicts: printable ASCII, bounded.
pub fn check_nonce(nonce: &str) -> Result<(), ApiError> {
    if nonce.is_empty()
        || nonce.len() > MAX_NONCE_LEN
        || !nonce.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::InvalidArgument(format!(
            "the nonce must be 1–{MAX_NONCE_LEN} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

pub fn check_subject(subject: &str) -> Result<(), ApiError> {
    crate::store::validate_subject(subject).map_err(|e| ApiError::InvalidArgument(e.to_string()))
}

impl EngineHandle {
    pub fn new(jobs: SyncSender<Job>, info: EngineInfo, limits: Limits) -> Self {
        Self {
            jobs,
            accepting: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            info: std::sync::Arc::new(info),
            limits,
        }
    }

    pub fn stop_accepting(&self) {
        self.accepting
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn submit<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Job,
    ) -> Result<oneshot::Receiver<Result<T, ApiError>>, ApiError> {
        if !self.is_accepting() {
            return Err(ApiError::ShuttingDown("edgeid is shutting down".into()));
        }
        let (tx, rx) = oneshot::channel();
        match self.jobs.try_send(make(tx)) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(ApiError::Busy(
                "too many requests are waiting for the camera: try again shortly".into(),
            )),
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::ShuttingDown("edgeid is shutting down".into()))
            }
        }
    }

    async fn wait<T>(rx: oneshot::Receiver<Result<T, ApiError>>) -> Result<T, ApiError> {
        rx.await.unwrap_or_else(|_| {
            Err(ApiError::ShuttingDown(
                "edgeid stopped before answering".into(),
            ))
        })
    }

    /// Verify (subject given) or identify; answers one signed verdict.
    pub async fn decide(
        &self,
        mode: Mode,
        subject: Option<String>,
        nonce: Option<String>,
        timeout_ms: u32,
        origin: Origin,
    ) -> Result<VerdictOut, ApiError> {
        if let Some(n) = &nonce {
            check_nonce(n)?;
        }
        match (mode, &subject) {
            (Mode::Verify, Some(s)) => check_subject(s)?,
            (Mode::Verify, None) => {
                return Err(ApiError::InvalidArgument("verify needs a subject".into()));
            }
            (Mode::Identify, Some(_)) => {
                return Err(ApiError::InvalidArgument(
                    "identify takes no subject".into(),
                ));
            }
            (Mode::Identify, None) => {
                if !self.info.identify_enabled {
                    return Err(ApiError::Disabled(
                        "1:N identification is off on this device (identify_enabled = false)"
                            .into(),
                    ));
                }
            }
        }
        let timeout = self.limits.timeout(timeout_ms);
        let received_at = Instant::now();
        let rx = self.submit(|reply| Job::Decide {
            mode,
            subject,
            nonce,
            timeout,
            origin,
            received_at,
            reply,
        })?;
        Self::wait(rx).await
    }

    pub async fn enroll(
        &self,
        subject: String,
        events: mpsc::UnboundedSender<(String, EnrollEvent)>,
    ) -> Result<(), ApiError> {
        check_subject(&subject)?;
        let rx = self.submit(|reply| Job::Enroll {
            subject,
            events,
            reply,
        })?;
        Self::wait(rx).await
    }

    pub async fn revoke(&self, subject: String) -> Result<usize, ApiError> {
        check_subject(&subject)?;
        let rx = self.submit(|reply| Job::Revoke { subject, reply })?;
        Self::wait(rx).await
    }

    pub async fn list_subjects(&self) -> Result<Vec<String>, ApiError> {
        let rx = self.submit(|reply| Job::ListSubjects { reply })?;
        Self::wait(rx).await
    }
}
