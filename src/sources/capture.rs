//! The capture thread: one source, read on its own thread into a bounded
//! latest-frame-wins slot, so a slow pipeline never builds a backlog of
//! stale frames and a fast one never waits for more than one frame period.
//!
//! A frame that is corrupt is counted and skipped; a source that fails or
//! vanishes is reopened with exponential backoff. Both show in
//! [`CaptureStatus`]; neither ever panics or stops the daemon.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Frame, ImageError};

/// Why a source could not produce a frame. These end up as text (the
/// capture status, logs), so a cause is part of the message and kept typed
/// in its field rather than repeated as a `source()`.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// This frame is unusable; the stream goes on.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// This frame's image could not be decoded; the stream goes on. Shared
    /// because a folder source reports the same bad file on every pass.
    #[error("bad frame: {0}")]
    BadImage(Arc<ImageError>),
    /// The stream ended (end of file, writer closed the FIFO).
    #[error("the stream ended")]
    Ended,
    /// The source cannot be used (no images in the folder, no header, ...).
    #[error("{0}")]
    Unavailable(String),
    /// The source cannot be opened or read any more (device gone, I/O error).
    #[error("{what}: {error}")]
    Io {
        /// The device, file or stream.
        what: String,
        error: std::io::Error,
    },
}

impl SourceError {
    /// `what` (a device, file or stream name) failed with `error`.
    pub fn io(what: impl std::fmt::Display, error: std::io::Error) -> Self {
        Self::Io {
            what: what.to_string(),
            error,
        }
    }

    /// This frame is unusable but the stream goes on.
    pub fn is_bad_frame(&self) -> bool {
        matches!(self, Self::BadFrame(_) | Self::BadImage(_))
    }
}

impl From<ImageError> for SourceError {
    fn from(e: ImageError) -> Self {
        Self::BadImage(Arc::new(e))
    }
}

/// Anything that yields frames: a camera, a Y4M or raw stream, an image folder.
pub trait FrameSource: Send {
    /// Blocks until the next frame. `BadFrame` leaves the source usable.
    fn next_frame(&mut self) -> Result<Frame, SourceError>;
    /// What it is, for logs and status ("y4m /dev/stdin 640x480").
    fn describe(&self) -> String;
}

/// Opens (or reopens) a source; called again after a failure.
pub type SourceFactory = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureState {
    Starting,
    Running,
    /// The source failed; waiting before the next attempt.
    Retrying,
    Stopped,
}

/// What the capture thread is doing, for `status` on the buses and logs.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureStatus {
    pub state: CaptureState,
    pub source: String,
    pub frames: u64,
    pub bad_frames: u64,
    pub reopen_attempts: u64,
    pub last_error: Option<String>,
}

/// A captured frame and its place in the stream.
#[derive(Debug, Clone)]
pub struct Captured {
    /// 1, 2, 3, ... over the life of the capture (across reopens).
    pub seq: u64,
    pub frame: Arc<Frame>,
}

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

struct Slot {
    latest: Option<Captured>,
    status: CaptureStatus,
}

struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    /// A poisoned lock only means another thread panicked while holding it;
    /// the slot's data is still consistent (plain values), so keep going.
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A read-only view of a capture's status, for whoever reports it (systemd
/// STATUS=, logs) while the engine owns the capture itself.
#[derive(Clone)]
pub struct StatusProbe(Arc<Shared>);

impl StatusProbe {
    pub fn status(&self) -> CaptureStatus {
        self.0.lock().status.clone()
    }
}

impl std::fmt::Debug for StatusProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatusProbe").field(&self.status()).finish()
    }
}

/// A running capture thread; dropping it stops the thread.
pub struct Capture {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    pub fn spawn(factory: SourceFactory, backoff: Backoff) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot {
                latest: None,
                status: CaptureStatus {
                    state: CaptureState::Starting,
                    source: String::new(),
                    frames: 0,
                    bad_frames: 0,
                    reopen_attempts: 0,
                    last_error: None,
                },
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("edgeid-capture".into())
            .spawn(move || run(&thread_shared, factory, backoff))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> CaptureStatus {
        self.shared.lock().status.clone()
    }

    /// False once the capture thread has ended without being stopped: the
    /// engine then stops feeding the watchdog, and systemd restarts the
    /// daemon rather than leaving every request to time out.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    pub fn probe(&self) -> StatusProbe {
        StatusProbe(Arc::clone(&self.shared))
    }

    /// The newest frame, if any has arrived.
    pub fn latest(&self) -> Option<Captured> {
        self.shared.lock().latest.clone()
    }

    /// Waits up to `timeout` for a frame newer than `after` (a `seq`; 0 for any).
    pub fn wait_newer(&self, after: u64, timeout: Duration) -> Option<Captured> {
        let deadline = Instant::now() + timeout;
        let mut slot = self.shared.lock();
        loop {
            if let Some(c) = &slot.latest
                && c.seq > after
            {
                return Some(c.clone());
            }
            let now = Instant::now();
            if now >= deadline || self.shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            slot = self
                .shared
                .changed
                .wait_timeout(slot, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        // The thread may be blocked in a read (a silent FIFO); it is detached
        // rather than joined so shutdown never hangs on it.
        self.thread.take();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, mut factory: SourceFactory, backoff: Backoff) {
    let mut delay = backoff.initial;
    let mut seq = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let mut source = match contained(&mut factory) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                retry_later(shared, &e.to_string(), &mut delay, backoff);
                continue;
            }
            Err(panic) => {
                retry_later(shared, &panic, &mut delay, backoff);
                continue;
            }
        };
        let name = source.describe();
        tracing::info!(source = %name, "capture source opened");
        {
            let mut slot = shared.lock();
            slot.status.source = name.clone();
            slot.status.state = CaptureState::Running;
        }
        let error = loop {
            if shared.stop.load(Ordering::Relaxed) {
                break None;
            }
            let next = match contained(|| source.next_frame()) {
                Ok(next) => next,
                Err(panic) => break Some(panic),
            };
            match next {
                Ok(frame) => {
                    seq += 1;
                    delay = backoff.initial;
                    let mut slot = shared.lock();
                    slot.latest = Some(Captured {
                        seq,
                        frame: Arc::new(frame),
                    });
                    slot.status.frames += 1;
                    slot.status.state = CaptureState::Running;
                    drop(slot);
                    shared.changed.notify_all();
                }
                Err(e) if e.is_bad_frame() => {
                    tracing::warn!(source = %name, error = %e, "bad frame skipped");
                    let mut slot = shared.lock();
                    slot.status.bad_frames += 1;
                    slot.status.last_error = Some(e.to_string());
                }
                Err(e) => break Some(e.to_string()),
            }
        };
        if let Some(e) = error {
            retry_later(shared, &format!("{name}: {e}"), &mut delay, backoff);
        }
    }
    shared.lock().status.state = CaptureState::Stopped;
    shared.changed.notify_all();
}

/// Runs a source's code so that a panic in it (a decoder bug, a value it
/// did not expect) becomes a source failure, retried with back-off like
/// any other, instead of a dead capture thread behind a daemon that still
/// looks alive.
fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        format!("the source panicked: {what}")
    })
}

fn retry_later(shared: &Shared, error: &str, delay: &mut Duration, backoff: Backoff) {
    tracing::warn!(
        error,
        retry_in_ms = delay.as_millis() as u64,
        "capture source failed; retrying"
    );
    {
        let mut slot = shared.lock();
        slot.status.state = CaptureState::Retrying;
        slot.status.reopen_attempts += 1;
        slot.status.last_error = Some(error.to_owned());
    }
    // Sleep in small steps so stop() is honoured promptly.
    let until = Instant::now() + *delay;
    while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20).min(*delay));
    }
    *delay = (*delay * 2).min(backoff.max);
}
