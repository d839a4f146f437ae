//! The engine thread: the one place that runs the face pipeline and touches
//! the store. Requests arrive as [`Job`]s; each turn of its loop also pings
//! the systemd watchdog, so a pipeline that hangs stops the pings and
//! systemd restarts the service.
//!
//! One thread on purpose: inference is CPU-bound and the store is a single
//! SQLite connection, so requests are served in order; a bounded job queue
//! turns overload into a `Busy` answer rather than growing latency.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;
use crate::decision::{Mode, Outcome, Reason};
use crate::sources::Capture;
use crate::sources::capture::Captured;

use super::api::{ApiError, Job, Origin, VerdictOut};
use super::decide::{Decided, Decider, Seen, usable};
use super::notify::Notifier;

/// Longest the loop sleeps between watchdog pings when idle.
const IDLE_TURN: Duration = Duration::from_millis(100);

pub struct Engine {
    pub(super) decider: Decider,
    pub(super) capture: Capture,
    pub(super) config: Config,
    pub(super) jobs: Receiver<Job>,
    pub(super) notifier: Arc<Notifier>,
    pub(super) shutdown: Arc<AtomicBool>,
    /// Walk-up verdicts go to every sink listed here.
    pub(super) outlets: Vec<UnboundedSender<VerdictOut>>,
    /// Test hook (`EDGEID_TEST_WEDGE_FILE`): while this file exists the loop
    /// hangs without pinging, as a stuck inference call would.
    pub(super) wedge_file: Option<PathBuf>,
    pub(super) last_seq: u64,
    walk_up_seen: HashMap<String, Instant>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        decider: Decider,
        capture: Capture,
        config: Config,
        jobs: Receiver<Job>,
        notifier: Arc<Notifier>,
        shutdown: Arc<AtomicBool>,
        outlets: Vec<UnboundedSender<VerdictOut>>,
        wedge_file: Option<PathBuf>,
    ) -> Self {
        Self {
            decider,
            capture,
            config,
            jobs,
            notifier,
            shutdown,
            outlets,
            wedge_file,
            last_seq: 0,
            walk_up_seen: HashMap::new(),
        }
    }

    pub fn run(mut self) {
        loop {
            self.turn();
            if self.shutdown.load(Ordering::Relaxed) {
                break;
            }
            let job = if self.config.daemon.walk_up {
                match self.jobs.try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Empty) => {
                        self.walk_up_turn();
                        None
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match self.jobs.recv_timeout(IDLE_TURN) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            if let Some(job) = job {
                self.handle(job);
            }
        }
        self.drain();
        self.capture.stop();
        tracing::info!("engine stopped");
    }

    /// Every turn of every loop in the engine comes through here.
    pub(super) fn turn(&self) {
        if let Some(wedge) = &self.wedge_file {
            while wedge.exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.notifier.watchdog();
    }

    pub(super) fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// On shutdown: requests still queued get `timeout` verdicts, the rest an error.
    fn drain(&mut self) {
        while let Ok(job) = self.jobs.try_recv() {
            match job {
                Job::Decide {
                    mode,
                    subject,
                    nonce,
                    origin,
                    reply,
                    ..
                } => {
                    let decided = Decided {
                        outcome: Outcome::reject(mode, Reason::Timeout, subject.as_deref()),
                        detail: serde_json::json!({"cause": "shutdown"}),
                    };
                    let _ =
                        reply.send(self.decider.finish(decided, nonce.as_deref(), origin, None));
                }
                Job::Enroll { reply, .. } => {
                    let _ = reply.send(Err(shutting_down()));
                }
                Job::Revoke { reply, .. } => {
                    let _ = reply.send(Err(shutting_down()));
                }
                Job::ListSubjects { reply } => {
                    let _ = reply.send(Err(shutting_down()));
                }
            }
        }
    }

    pub(super) fn handle(&mut self, job: Job) {
        match job {
            Job::Decide {
                mode,
                subject,
                nonce,
                timeout,
                origin,
                received_at,
                reply,
            } => {
                let result = self.serve_decide(
                    mode,
                    subject.as_deref(),
                    nonce.as_deref(),
                    received_at + timeout,
                    origin,
                    received_at,
                );
                let _ = reply.send(result);
            }
            Job::Enroll {
                subject,
                events,
                reply,
            } => self.serve_enroll(subject, events, reply),
            Job::Revoke { subject, reply } => {
                let _ = reply.send(self.revoke(&subject));
            }
            Job::ListSubjects { reply } => {
                let _ = reply.send(self.list_subjects());
            }
        }
    }

    /// Frames captured after the request arrived, until one has a usable
    /// face or the deadline passes; then one verdict.
    fn serve_decide(
        &mut self,
        mode: Mode,
        subject: Option<&str>,
        nonce: Option<&str>,
        deadline: Instant,
        origin: Origin,
        received_at: Instant,
    ) -> Result<VerdictOut, ApiError> {
        if let Some(decided) = self.decider.precheck(subject)? {
            return self.decider.finish(decided, nonce, origin, None);
        }
        let mut seen = Seen::default();
        loop {
            self.turn();
            let now = Instant::now();
            if now >= deadline || self.stopping() {
                let reason = if self.stopping() {
                    Reason::Timeout
                } else {
                    seen.reason()
                };
                let decided = Decided {
                    outcome: Outcome::reject(mode, reason, subject),
                    detail: serde_json::json!({"frames_analysed": seen.frames, "cause": "deadline"}),
                };
                return self.decider.finish(decided, nonce, origin, None);
            }
            let Some(captured) = self.fresh_frame(received_at, (deadline - now).min(IDLE_TURN))
            else {
                continue;
            };
            let analysis = match self.decider.pipeline.analyse(&captured.frame.image) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "frame could not be analysed");
                    continue;
                }
            };
            if usable(&analysis) {
                let mut decided = self.decider.score(mode, subject, analysis);
                decided.detail["frames_analysed"] = (seen.frames + 1).into();
                return self.decider.finish(
                    decided,
                    nonce,
                    origin,
                    Some(captured.frame.captured_at),
                );
            }
            seen.note(&analysis);
        }
    }

    /// The next frame newer than the last one used, captured at or after `since`.
    pub(super) fn fresh_frame(&mut self, since: Instant, wait: Duration) -> Option<Captured> {
        let captured = self.capture.wait_newer(self.last_seq, wait)?;
        self.last_seq = captured.seq;
        (captured.frame.captured_at >= since).then_some(captured)
    }

    /// Walk-up mode: identify whoever is in view; the same subject (or the
    /// same "no match") is not announced again within the debounce window.
    fn walk_up_turn(&mut self) {
        let Some(captured) = self.fresh_frame(Instant::now() - Duration::from_secs(1), IDLE_TURN)
        else {
            return;
        };
        let analysis = match self.decider.pipeline.analyse(&captured.frame.image) {
            Ok(a) if usable(&a) => a,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "walk-up frame could not be analysed");
                return;
            }
        };
        let decided = self.decider.score(Mode::Identify, None, analysis);
        let key = decided
            .outcome
            .subject
            .clone()
            .unwrap_or_else(|| format!("({})", decided.outcome.reason));
        let debounce = Duration::from_secs(self.config.daemon.debounce_secs);
        if self
            .walk_up_seen
            .get(&key)
            .is_some_and(|t| t.elapsed() < debounce)
        {
            return;
        }
        self.walk_up_seen.retain(|_, t| t.elapsed() < debounce);
        self.walk_up_seen.insert(key, Instant::now());
        match self.decider.finish(
            decided,
            None,
            Origin::WalkUp,
            Some(captured.frame.captured_at),
        ) {
            Ok(out) => self.outlets.retain(|o| o.send(out.clone()).is_ok()),
            Err(e) => tracing::error!(error = %e, "walk-up verdict failed"),
        }
    }

    fn revoke(&mut self, subject: &str) -> Result<usize, ApiError> {
        let event = crate::store::audit::Event {
            event: "revoke",
            subject: Some(subject),
            decision: None,
            reason: None,
            detail: serde_json::json!({"origin": "dbus"}),
        };
        let n = crate::store::templates::revoke(&mut self.decider.store, subject, Some(&event))
            .map_err(|e| match e {
                crate::store::StoreError::UnknownSubject(s) => {
                    ApiError::NoSuchSubject(format!("{s} is not enrolled"))
                }
                other => ApiError::Internal(other.to_string()),
            })?;
        self.decider.reload()?;
        Ok(n)
    }

    fn list_subjects(&self) -> Result<Vec<String>, ApiError> {
        crate::store::templates::list_subjects(&self.decider.store)
            .map(|v| v.into_iter().map(|s| s.subject).collect())
            .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

pub(super) fn shutting_down() -> ApiError {
    ApiError::ShuttingDown("edgeid is shutting down".into())
}
