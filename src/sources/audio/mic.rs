//! A microphone through cpal (ALSA on Linux and JetPack), opened by device
//! name. cpal's stream lives on its own capture thread; its callback copies
//! each period into a bounded ring of timestamped chunks, so a slow
//! consumer costs the oldest audio (counted as overruns in the status),
//! never memory or the callback's deadline. A device that fails or vanishes
//! is reopened with exponential backoff, shown in [`MicStatus`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use serde::Serialize;

use super::{AudioChunk, AudioError, AudioSource, VOICE_RATE};
use crate::sources::capture::Backoff;

mod fifo;

/// What the capture thread is doing, for status and `doctor`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MicStatus {
    pub device: String,
    pub running: bool,
    pub rate: u32,
    pub channels: u16,
    pub chunks: u64,
    /// Chunks dropped because the ring was full (the consumer fell behind).
    pub overruns: u64,
    pub reopen_attempts: u64,
    pub last_error: Option<String>,
}

struct Shared {
    ring: Mutex<Ring>,
    ready: Condvar,
    stop: AtomicBool,
}

struct Ring {
    chunks: VecDeque<AudioChunk>,
    capacity: usize,
    status: MicStatus,
}

impl Shared {
    /// An empty ring of `capacity` chunks (at least 2) for `device`.
    fn new(device: &str, (rate, channels): (u32, u16), capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: Mutex::new(Ring {
                chunks: VecDeque::new(),
                capacity: capacity.max(2),
                status: MicStatus {
                    device: device.to_owned(),
                    rate,
                    channels,
                    ..MicStatus::default()
                },
            }),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, chunk: AudioChunk) {
        let mut ring = self.lock();
        if ring.chunks.len() >= ring.capacity {
            ring.chunks.pop_front();
            ring.status.overruns += 1;
        }
        ring.status.chunks += 1;
        ring.chunks.push_back(chunk);
        drop(ring);
        self.ready.notify_one();
    }

    fn fail(&self, error: String) {
        let mut ring = self.lock();
        ring.status.running = false;
        ring.status.last_error = Some(error);
        drop(ring);
        self.ready.notify_all();
    }
}

pub struct Microphone {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    format: (u32, u16),
    device: String,
    /// The FIFO read instead of a cpal device ([`Microphone::open_fifo`]).
    fifo: Option<std::path::PathBuf>,
}

impl Microphone {
    /// Opens `device` (an ALSA PCM name as cpal lists it, e.g. "default" or
    /// "hw:CARD=U0x46d0x825,DEV=0") and starts capturing. `ring_chunks`
    /// bounds the buffered audio (one chunk = one ALSA period). Fails if the
    /// device is not there on the first attempt; later failures are retried.
    pub fn open(device: &str, ring_chunks: usize, backoff: Backoff) -> Result<Self, AudioError> {
        let (found, config) = find(device)?;
        let format = (config.sample_rate().0, config.channels());
        let shared = Shared::new(device, format, ring_chunks);
        let thread_shared = Arc::clone(&shared);
        let name = device.to_owned();
        let thread = std::thread::Builder::new()
            .name("edgeid-mic".into())
            .spawn(move || capture_loop(&name, Some((found, config)), &thread_shared, backoff))
            .map_err(|e| mic_err(device, format!("cannot start the capture thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
            format,
            device: device.to_owned(),
            fifo: None,
        })
    }

    pub fn status(&self) -> MicStatus {
        self.shared.lock().status.clone()
    }

    /// The next chunk, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn next_timeout(&self, timeout: Duration) -> Option<AudioChunk> {
        let deadline = Instant::now() + timeout;
        let mut ring = self.shared.lock();
        loop {
            if let Some(c) = ring.chunks.pop_front() {
                return Some(c);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if self.shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            ring = self
                .shared
                .ready
                .wait_timeout(ring, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Drop for Microphone {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
        let Some(t) = self.thread.take() else { return };
        if let Some(fifo) = &self.fifo {
            // A FIFO reader may sit in a blocking open or read of a silent
            // writer: wake the open, and leave a read to end with the
            // process rather than hang the daemon's shutdown on it.
            fifo::wake(fifo);
        } else {
            let _ = t.join();
        }
    }
}

impl AudioSource for Microphone {
    /// Blocks until audio arrives; a device outage shows as a wait (the
    /// thread reopens it) and in the status, not as the end of the stream.
    fn next_chunk(&mut self) -> Result<Option<AudioChunk>, AudioError> {
        while !self.shared.stop.load(Ordering::Relaxed) {
            if let Some(c) = self.next_timeout(Duration::from_millis(500)) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn format(&self) -> (u32, u16) {
        self.format
    }

    fn describe(&self) -> String {
        format!(
            "microphone {} {} Hz {} ch",
            self.device, self.format.0, self.format.1
        )
    }
}

fn mic_err(device: &str, detail: impl Into<String>) -> AudioError {
    AudioError::Microphone {
        device: device.to_owned(),
        detail: detail.into(),
    }
}

/// The device named `name` and the input configuration to use: 16 kHz mono
/// when the device offers it (no resampling), else its default.
fn find(name: &str) -> Result<(cpal::Device, cpal::SupportedStreamConfig), AudioError> {
    let host = cpal::default_host();
    let devices = host
        .input_devices()
        .map_err(|e| mic_err(name, format!("cannot list input devices: {e}")))?;
    let mut seen = Vec::new();
    for d in devices {
        let Ok(n) = d.name() else { continue };
        if n == name {
            let wanted = cpal::SampleRate(VOICE_RATE);
            let exact = d.supported_input_configs().ok().and_then(|mut cs| {
                cs.find(|c| {
                    c.channels() == 1
                        && c.min_sample_rate() <= wanted
                        && wanted <= c.max_sample_rate()
                        && matches!(
                            c.sample_format(),
                            cpal::SampleFormat::I16 | cpal::SampleFormat::F32
                        )
                })
            });
            let config = match exact {
                Some(c) => c.with_sample_rate(wanted),
                None => d
                    .default_input_config()
                    .map_err(|e| mic_err(name, format!("no usable input format: {e}")))?,
            };
            return Ok((d, config));
        }
        seen.push(n);
    }
    Err(mic_err(
        name,
        format!("not found; input devices: {}", seen.join(", ")),
    ))
}

fn capture_loop(
    name: &str,
    mut first: Option<(cpal::Device, cpal::SupportedStreamConfig)>,
    shared: &Arc<Shared>,
    backoff: Backoff,
) {
    let mut delay = backoff.initial;
    while !shared.stop.load(Ordering::Relaxed) {
        let opened = match first.take() {
            Some(found) => Ok(found),
            None => find(name),
        };
        let result = opened.and_then(|(device, config)| run_stream(name, &device, &config, shared));
        match result {
            Ok(()) => return, // stopped
            Err(e) => {
                tracing::warn!(
                    device = name,
                    "microphone failed: {e}; retrying in {delay:?}"
                );
                shared.fail(e.to_string());
                shared.lock().status.reopen_attempts += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}

/// Runs one stream until stopped (`Ok`) or until it fails (`Err`).
fn run_stream(
    name: &str,
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    shared: &Arc<Shared>,
) -> Result<(), AudioError> {
    let (rate, channels) = (config.sample_rate().0, config.channels());
    let stream_config: cpal::StreamConfig = config.config();
    let failed = Arc::new(AtomicBool::new(false));
    let on_error = {
        let (shared, failed) = (Arc::clone(shared), Arc::clone(&failed));
        move |e: cpal::StreamError| {
            failed.store(true, Ordering::Relaxed);
            shared.fail(format!("stream error: {e}"));
        }
    };
    let push = {
        let shared = Arc::clone(shared);
        move |samples: Vec<f32>| {
            let frames = samples.len() / usize::from(channels.max(1));
            let span = Duration::from_secs_f64(frames as f64 / f64::from(rate));
            let now = Instant::now();
            shared.push(AudioChunk {
                samples,
                rate,
                channels,
                // The callback runs as the period completes: its first
                // sample was captured one period earlier.
                captured_at: Some(now.checked_sub(span).unwrap_or(now)),
            });
        }
    };
    let build = |e: cpal::BuildStreamError| mic_err(name, format!("cannot open: {e}"));
    let stream = match config.sample_format() {
        cpal::SampleFormat::F32 => device
            .build_input_stream(
                &stream_config,
                move |data: &[f32], _: &_| push(data.to_vec()),
                on_error,
                None,
            )
            .map_err(build)?,
        cpal::SampleFormat::I16 => device
            .build_input_stream(
                &stream_config,
                move |data: &[i16], _: &_| {
                    push(data.iter().map(|&s| f32::from(s) / 32768.0).collect());
                },
                on_error,
                None,
            )
            .map_err(build)?,
        other => {
            return Err(mic_err(
                name,
                format!("sample format {other} is not supported"),
            ));
        }
    };
    stream
        .play()
        .map_err(|e| mic_err(name, format!("cannot start: {e}")))?;
    {
        let mut ring = shared.lock();
        ring.status.running = true;
        ring.status.rate = rate;
        ring.status.channels = channels;
    }
    while !shared.stop.load(Ordering::Relaxed) {
        if failed.load(Ordering::Relaxed) {
            return Err(mic_err(name, "the device stopped delivering audio"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.lock().status.running = false;
    Ok(())
}
