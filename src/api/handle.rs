//! The sinks' handle on the engine: argument checks, the bounded job
//! queue (full → `Busy`), and waiting for the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{
    Admin, ApiError, EngineInfo, EnrollEvent, Job, Origin, ReplayGuard, Reply, VerdictOut,
};
use crate::decision::{Modalities, Mode};

/// The sinks' side of the engine: cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: SyncSender<Job>,
    /// Cleared on SIGTERM: new requests are refused, taken ones answered.
    accepting: Arc<AtomicBool>,
    pub info: Arc<EngineInfo>,
    pub limits: Limits,
    /// Shared by every sink: a nonce is good for one verdict on any bus.
    replay: Arc<ReplayGuard>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default_timeout: Duration,
    /// The default for a request that listens (its policy has a voice).
    pub default_voice_timeout: Duration,
    pub max_timeout: Duration,
}

impl Limits {
    /// 0 means "the default" (the listening one when `listens`); longer
    /// than the maximum is clamped.
    pub fn timeout(&self, ms: u32, listens: bool) -> Duration {
        if ms == 0 && listens {
            self.default_voice_timeout
        } else if ms == 0 {
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
    pub fn new(
        jobs: SyncSender<Job>,
        info: EngineInfo,
        limits: Limits,
        replay: ReplayGuard,
    ) -> Self {
        Self {
            jobs,
            accepting: Arc::new(AtomicBool::new(true)),
            info: Arc::new(info),
            limits,
            replay: Arc::new(replay),
        }
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Relaxed);
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
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

    /// The policy a request runs under: the site's, or the stronger one
    /// it asked for; refused when weaker or when it needs a microphone
    /// this device lacks.
    pub fn policy(&self, mode: Mode, asked: Option<Modalities>) -> Result<Modalities, ApiError> {
        let policy = Modalities::for_request(self.info.modalities, asked)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        if mode == Mode::Identify {
            policy
                .check_identify()
                .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        }
        if policy.uses_voice() && !self.info.voice {
            return Err(ApiError::Disabled(format!(
                "{policy} needs a microphone and none is configured ([microphone] in the config)"
            )));
        }
        Ok(policy)
    }

    /// Verify (subject given) or identify; answers one signed verdict.
    /// `modalities`: a stronger policy than the site's, if asked for.
    pub async fn decide(
        &self,
        mode: Mode,
        subject: Option<String>,
        nonce: Option<String>,
        timeout_ms: u32,
        origin: Origin,
        modalities: Option<Modalities>,
    ) -> Result<VerdictOut, ApiError> {
        if let Some(n) = &nonce {
            check_nonce(n)?;
        }
        let modalities = self.policy(mode, modalities)?;
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
        // Last, so a refused request does not spend its nonce.
        if let Some(n) = &nonce {
            self.replay.spend(n, Instant::now())?;
        }
        let timeout = self.limits.timeout(timeout_ms, modalities.uses_voice());
        let received_at = Instant::now();
        let rx = self.submit(|reply| Job::Decide {
            mode,
            subject,
            nonce,
            modalities,
            timeout,
            origin,
            received_at,
            reply,
        })?;
        Self::wait(rx).await
    }

    /// Enrols `modalities` (`face`, `voice` or `face+voice`) of `subject`.
    pub async fn enroll(
        &self,
        subject: String,
        modalities: Modalities,
        replace: bool,
        by: Admin,
        events: mpsc::UnboundedSender<(String, EnrollEvent)>,
    ) -> Result<(), ApiError> {
        check_subject(&subject)?;
        if modalities == Modalities::FaceOrVoice {
            return Err(ApiError::InvalidArgument(
                "enrol face, voice or both, not one of them".into(),
            ));
        }
        if modalities.uses_voice() && !self.info.voice {
            return Err(ApiError::Disabled(
                "voice enrolment needs a microphone and none is configured ([microphone] in the config)".into(),
            ));
        }
        let rx = self.submit(|reply| Job::Enroll {
            subject,
            modalities,
            replace,
            by,
            events,
            reply,
        })?;
        Self::wait(rx).await
    }

    pub async fn revoke(&self, subject: String, by: Admin) -> Result<usize, ApiError> {
        check_subject(&subject)?;
        let rx = self.submit(|reply| Job::Revoke { subject, by, reply })?;
        Self::wait(rx).await
    }

    pub async fn unlock(&self, subject: String, by: Admin) -> Result<usize, ApiError> {
        check_subject(&subject)?;
        let rx = self.submit(|reply| Job::Unlock { subject, by, reply })?;
        Self::wait(rx).await
    }

    pub async fn list_subjects(&self) -> Result<Vec<String>, ApiError> {
        let rx = self.submit(|reply| Job::ListSubjects { reply })?;
        Self::wait(rx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_listens_gets_the_listening_default_and_every_timeout_is_capped() {
        let limits = Limits {
            default_timeout: Duration::from_millis(3000),
            default_voice_timeout: Duration::from_millis(8000),
            max_timeout: Duration::from_millis(10_000),
        };
        assert_eq!(limits.timeout(0, false), Duration::from_millis(3000));
        assert_eq!(limits.timeout(0, true), Duration::from_millis(8000));
        // A timeout the caller gives is kept, whatever the policy.
        assert_eq!(limits.timeout(2000, true), Duration::from_millis(2000));
        assert_eq!(limits.timeout(60_000, false), Duration::from_millis(10_000));
    }
}
