//! A "microphone" that is a FIFO of raw S16LE PCM: `arecord -t raw` or a
//! GStreamer pipeline writing into a named pipe, for boards whose audio
//! cpal cannot open directly and for tests (ALSA's virtual devices deliver
//! audio faster than real time, a pipe at the writer's pace). The same
//! capture ring and status as a cpal device; a writer that goes away is
//! waited for again, with backoff after errors.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Microphone, Shared, mic_err};
use crate::sources::audio::{AudioError, AudioSource, PcmStream};
use crate::sources::capture::Backoff;

impl Microphone {
    /// Captures raw signed 16-bit little-endian PCM of `rate` Hz ×
    /// `channels` from the FIFO at `path`. The path must exist and be a
    /// FIFO (a regular file would play once and end, which no microphone
    /// does).
    pub fn open_fifo(
        path: &Path,
        rate: u32,
        channels: u16,
        ring_chunks: usize,
        backoff: Backoff,
    ) -> Result<Self, AudioError> {
        use std::os::unix::fs::FileTypeExt;
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|error| AudioError::Open {
            what: name.clone(),
            error,
        })?;
        if !meta.file_type().is_fifo() {
            return Err(mic_err(&name, "not a FIFO (create one with mkfifo)"));
        }
        // Checks the format once, as the stream will.
        PcmStream::new(name.clone(), std::io::empty(), rate, channels)?;
        let shared = Shared::new(&name, (rate, channels), ring_chunks);
        let thread_shared = Arc::clone(&shared);
        let fifo = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("edgeid-mic".into())
            .spawn(move || fifo_loop(&fifo, rate, channels, &thread_shared, backoff))
            .map_err(|e| mic_err(&name, format!("cannot start the capture thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
            format: (rate, channels),
            device: name,
            fifo: Some(path.to_owned()),
        })
    }
}

fn fifo_loop(path: &Path, rate: u32, channels: u16, shared: &Arc<Shared>, backoff: Backoff) {
    let name = path.display().to_string();
    let mut delay = backoff.initial;
    while !shared.stop.load(Ordering::Relaxed) {
        // Opening a FIFO for reading blocks until a writer opens it; the
        // daemon's Drop unblocks it by opening the write end itself.
        let file = match File::open(path) {
            Ok(f) => f,
            Err(error) => {
                let e = AudioError::Open {
                    what: name.clone(),
                    error,
                };
                tracing::warn!(fifo = %name, "microphone FIFO failed: {e}; retrying in {delay:?}");
                shared.fail(e.to_string());
                shared.lock().status.reopen_attempts += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(backoff.max);
                continue;
            }
        };
        tracing::debug!(fifo = %name, "microphone FIFO: a writer opened it");
        shared.lock().status.running = true;
        let Ok(mut stream) = PcmStream::new(name.clone(), file, rate, channels) else {
            return; // checked at open
        };
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            match stream.next_chunk() {
                Ok(Some(mut chunk)) => {
                    let span = Duration::from_secs_f64(chunk.frames() as f64 / f64::from(rate));
                    let now = Instant::now();
                    chunk.captured_at = Some(now.checked_sub(span).unwrap_or(now));
                    shared.push(chunk);
                    delay = backoff.initial;
                }
                // The writer closed the pipe: wait for the next one.
                Ok(None) => {
                    tracing::debug!(fifo = %name, "microphone FIFO: the writer closed it");
                    break;
                }
                Err(e) => {
                    tracing::warn!(fifo = %name, "microphone FIFO read failed: {e}");
                    shared.fail(e.to_string());
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(backoff.max);
                    break;
                }
            }
        }
        shared.lock().status.running = false;
    }
}

/// Unblocks a capture thread waiting in `open` for a writer: opening the
/// write end without blocking lets its `open` return, then it sees `stop`.
pub(super) fn wake(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path);
}
