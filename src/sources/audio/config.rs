//! The `[microphone]` section of `edgeid.toml`: which ALSA device the
//! daemon listens to for voice requests and voice enrolment, and how it
//! retries one that fails. No device: the daemon has no voice factor.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AudioError, Microphone};
use crate::sources::capture::Backoff;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MicrophoneConfig {
    /// ALSA PCM name as cpal lists it ("default", "hw:CARD=U0x46d0x825,DEV=0",
    /// or a PCM of your asound.conf); unset: no microphone.
    pub device: Option<String>,
    /// Instead of a device: a FIFO of raw S16LE PCM (`mkfifo`, then e.g.
    /// `arecord -t raw -f S16_LE -r 16000 -c 1 > FIFO`).
    pub fifo: Option<PathBuf>,
    pub fifo_rate: u32,
    pub fifo_channels: u16,
    /// Seconds of audio the capture ring keeps while no request listens.
    pub ring_secs: u32,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for MicrophoneConfig {
    fn default() -> Self {
        Self {
            device: None,
            fifo: None,
            fifo_rate: 16_000,
            fifo_channels: 1,
            ring_secs: 15,
            retry_initial_ms: 200,
            retry_max_ms: 5000,
        }
    }
}

/// A value in `[microphone]` that cannot work; each names its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MicrophoneConfigError {
    #[error("microphone.device must be 1-256 printable characters")]
    Device,
    #[error("microphone.device and microphone.fifo are two inputs: set one")]
    TwoInputs,
    #[error("microphone.fifo_rate must be 8000..=192000 Hz and microphone.fifo_channels 1..=8")]
    FifoFormat,
    #[error("microphone.ring_secs must be in 2..=120 (it is {0})")]
    RingSecs(u32),
    #[error(
        "microphone.retry_initial_ms must be ≥ 1 and ≤ microphone.retry_max_ms, which must be ≤ 600000"
    )]
    Retry,
}

/// Chunks (ALSA periods) per second the ring is sized for: periods are
/// 10 ms or longer on every driver we know.
const CHUNKS_PER_SEC: usize = 100;

impl MicrophoneConfig {
    pub fn validate(&self) -> Result<(), MicrophoneConfigError> {
        if let Some(d) = &self.device
            && (d.is_empty() || d.len() > 256 || d.chars().any(char::is_control))
        {
            return Err(MicrophoneConfigError::Device);
        }
        if self.device.is_some() && self.fifo.is_some() {
            return Err(MicrophoneConfigError::TwoInputs);
        }
        if !(8_000..=192_000).contains(&self.fifo_rate) || !(1..=8).contains(&self.fifo_channels) {
            return Err(MicrophoneConfigError::FifoFormat);
        }
        if !(2..=120).contains(&self.ring_secs) {
            return Err(MicrophoneConfigError::RingSecs(self.ring_secs));
        }
        if self.retry_initial_ms == 0
            || self.retry_max_ms < self.retry_initial_ms
            || self.retry_max_ms > 600_000
        {
            return Err(MicrophoneConfigError::Retry);
        }
        Ok(())
    }

    /// Whether a microphone is configured.
    pub fn configured(&self) -> bool {
        self.device.is_some() || self.fifo.is_some()
    }

    /// Opens the configured input; `None` when there is none.
    pub fn open(&self) -> Option<Result<Microphone, AudioError>> {
        if let Some(device) = &self.device {
            return Some(Microphone::open(device, self.ring_chunks(), self.backoff()));
        }
        let fifo = self.fifo.as_ref()?;
        Some(Microphone::open_fifo(
            fifo,
            self.fifo_rate,
            self.fifo_channels,
            self.ring_chunks(),
            self.backoff(),
        ))
    }

    /// Ring capacity in chunks.
    pub fn ring_chunks(&self) -> usize {
        self.ring_secs as usize * CHUNKS_PER_SEC
    }

    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.retry_initial_ms),
            max: Duration::from_millis(self.retry_max_ms),
        }
    }
}
