//! The engine thread: the one place that runs the face pipeline and touches
//! the store. Requests arrive as [`Job`]s; each turn of its loop also pings
//! the systemd watchdog, so a pipeline that hangs stops the pings and
//! systemd restarts the service.
//!
//! One thread on purpose: inference is CPU-bound and the store is a single
//! SQLite connection, so requests are served in order; a bounded job queue
//! turns overload into a `Busy` answer rather than growing latency.
//!
//! - `request`: Verify / Identify over the frames of one request, with liveness.
//! - `walk_up`: identify whoever is in view, with the same liveness track.
//! - `listen`: the microphone's audio for a request or an enrolment.

mod listen;
mod request;
mod walk_up;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;
use crate::decision::liveness::Track;
use crate::decision::{Ended, Evidence, Liveness, Request, Seen};
use crate::sources::Capture;
use crate::sources::audio::Microphone;
use crate::sources::capture::Captured;

use super::decide::{Decider, internal};
use super::notify::Notifier;
use crate::api::{Admin, ApiError, ChallengeHint, Job, VerdictOut};

/// Longest the loop sleeps between watchdog pings when idle.
const IDLE_TURN: Duration = Duration::from_millis(100);

pub struct Engine {
    pub(super) decider: Decider,
    pub(super) capture: Capture,
    /// The microphone, when one is configured and could be opened.
    pub(super) mic: Option<Microphone>,
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
    /// Walk-up: the liveness track of the face in view.
    walk_up_track: Option<Track>,
    /// Draws the challenge side per request.
    rng: ring::rand::SystemRandom,
    /// Challenges announced to the person at the camera (the D-Bus sink
    /// sends them as `Hint` signals); with no sink listening they go nowhere.
    hints: broadcast::Sender<ChallengeHint>,
    /// The dead capture thread was logged (once).
    capture_dead_reported: AtomicBool,
    /// When the audit log is next pruned (`[audit]` retention).
    next_prune: Instant,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        decider: Decider,
        capture: Capture,
        mic: Option<Microphone>,
        config: Config,
        jobs: Receiver<Job>,
        notifier: Arc<Notifier>,
        shutdown: Arc<AtomicBool>,
        outlets: Vec<UnboundedSender<VerdictOut>>,
        hints: broadcast::Sender<ChallengeHint>,
        wedge_file: Option<PathBuf>,
    ) -> Self {
        Self {
            decider,
            capture,
            mic,
            config,
            jobs,
            notifier,
            shutdown,
            outlets,
            wedge_file,
            last_seq: 0,
            walk_up_seen: HashMap::new(),
            walk_up_track: None,
            rng: ring::rand::SystemRandom::new(),
            hints,
            capture_dead_reported: AtomicBool::new(false),
            next_prune: Instant::now(),
        }
    }

    pub fn run(mut self) {
        loop {
            self.turn();
            if self.shutdown.load(Ordering::Relaxed) {
                break;
            }
            if Instant::now() >= self.next_prune {
                self.prune_audit();
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
        // A capture thread that died (it contains its sources' panics, so
        // this should not happen) must not hide behind a healthy loop.
        if !self.capture.is_alive() && !self.stopping() {
            if !self.capture_dead_reported.swap(true, Ordering::Relaxed) {
                tracing::error!("the capture thread has ended: watchdog pings stop");
            }
            return;
        }
        self.notifier.watchdog();
    }

    /// Applies `[audit]` retention, a bounded batch at a time, between
    /// requests; a failure is logged and retried at the next interval.
    fn prune_audit(&mut self) {
        use crate::store::audit::retention::{DAEMON_BATCH, DAEMON_CATCH_UP, DAEMON_INTERVAL};
        let d = &mut self.decider;
        let limits = self.config.audit;
        let next = match crate::store::audit::prune(
            &mut d.store,
            &d.keys,
            &limits,
            Some(DAEMON_BATCH),
            "daemon",
        ) {
            Ok(p) if p.more_due => DAEMON_CATCH_UP,
            Ok(_) => DAEMON_INTERVAL,
            Err(e) => {
                tracing::error!(error = %e, "audit retention: pruning failed");
                DAEMON_INTERVAL
            }
        };
        self.next_prune = Instant::now() + next;
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
                    let req = Request::new(mode, subject.as_deref(), nonce.as_deref(), origin);
                    let evidence = Evidence {
                        samples: Vec::new(),
                        seen: Seen::default(),
                        liveness: Liveness::unchecked(self.config.liveness.mode.into()),
                        ended: Ended::Shutdown,
                        capture: self.config.camera.source.into(),
                    };
                    let _ = reply.send(self.decider.conclude(&req, &evidence, None, None));
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
                Job::Unlock { reply, .. } => {
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
                modalities,
                timeout,
                origin,
                received_at,
                reply,
            } => {
                let req = Request::new(mode, subject.as_deref(), nonce.as_deref(), origin);
                let result =
                    self.serve_decide(&req, modalities, received_at + timeout, received_at);
                let _ = reply.send(result);
            }
            Job::Enroll {
                subject,
                modalities,
                replace,
                by,
                events,
                reply,
            } => self.serve_enroll(subject, modalities, replace, by, events, reply),
            Job::Revoke { subject, by, reply } => {
                let _ = reply.send(self.revoke(&subject, by));
            }
            Job::ListSubjects { reply } => {
                let _ = reply.send(self.list_subjects());
            }
            Job::Unlock { subject, by, reply } => {
                let _ = reply.send(self.unlock(&subject, by));
            }
        }
    }

    /// The next frame newer than the last one used, captured at or after `since`.
    pub(super) fn fresh_frame(&mut self, since: Instant, wait: Duration) -> Option<Captured> {
        let captured = self.capture.wait_newer(self.last_seq, wait)?;
        self.last_seq = captured.seq;
        (captured.frame.captured_at >= since).then_some(captured)
    }

    fn revoke(&mut self, subject: &str, by: Admin) -> Result<usize, ApiError> {
        let event = crate::store::audit::Event::Revoke {
            subject,
            detail: serde_json::json!({"origin": "dbus", "by": by}),
        };
        let n = crate::store::templates::revoke(&mut self.decider.store, subject, Some(&event))
            .map_err(|e| match e {
                crate::store::StoreError::UnknownSubject(s) => {
                    ApiError::NoSuchSubject(format!("{s} is not enrolled"))
                }
                other => internal("revoking the subject", &other),
            })?;
        self.decider.reload()?;
        Ok(n)
    }

    fn unlock(&mut self, subject: &str, by: Admin) -> Result<usize, ApiError> {
        let event = crate::store::audit::Event::Unlock {
            subject,
            detail: serde_json::json!({"origin": "dbus", "by": by}),
        };
        crate::store::lockout::unlock(&mut self.decider.store, subject, &event)
            .map_err(|e| internal("clearing the failed attempts", &e))
    }

    fn list_subjects(&self) -> Result<Vec<String>, ApiError> {
        crate::store::templates::list_subjects(&self.decider.store)
            .map(|v| v.into_iter().map(|s| s.subject).collect())
            .map_err(|e| internal("listing the subjects", &e))
    }
}

pub(super) fn shutting_down() -> ApiError {
    ApiError::ShuttingDown("edgeid is shutting down".into())
}
