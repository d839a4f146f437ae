//! Audio sources: where samples come from. Every source yields
//! [`AudioChunk`]s of interleaved f32 samples at its own rate and channel
//! count; [`resample::To16kMono`] turns any of them into the 16 kHz mono
//! stream the voice stages want, so nothing downstream knows whether the
//! audio came from a file, a pipe or a microphone.
//!
//! - `config`: the `[microphone]` section.
//! - `error`: [`AudioError`], one typed error for every source.
//! - `file`: WAV and FLAC files (symphonia), decoded packet by packet.
//! - `pcm`: raw signed 16-bit little-endian PCM on stdin, a FIFO or a file
//!   (`arecord -t raw`, GStreamer `fdsink`).
//! - `resample`: down-mix and a real (FFT, band-limited) resampler to 16 kHz.
//! - `mic`: a microphone through cpal (ALSA), captured on its own thread
//!   into a bounded ring of timestamped chunks.
//! - `load`: reads a whole source to 16 kHz mono under a length limit.
//! - `probe`: a microphone listened to for a moment (`edgeid doctor`).

pub mod config;
pub mod error;
pub mod file;
pub mod load;
pub mod mic;
pub mod pcm;
pub mod probe;
pub mod resample;

use std::time::Instant;

pub use config::{MicrophoneConfig, MicrophoneConfigError};
pub use error::AudioError;
pub use file::AudioFile;
pub use load::{Clip, load_clip, load_file};
pub use mic::{MicStatus, Microphone};
pub use pcm::PcmStream;
pub use resample::To16kMono;

/// The rate the voice stages work at.
pub const VOICE_RATE: u32 = 16_000;

/// A run of interleaved samples in -1.0..=1.0.
#[derive(Debug, Clone)]
pub struct AudioChunk {
    pub samples: Vec<f32>,
    pub rate: u32,
    pub channels: u16,
    /// When the first sample was captured (live sources); `None` for files.
    pub captured_at: Option<Instant>,
}

impl AudioChunk {
    /// Frames (samples per channel) in the chunk.
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

/// Anything that yields audio: a file, a PCM stream, a microphone.
pub trait AudioSource: Send {
    /// The next chunk, or `Ok(None)` at the end of the stream.
    fn next_chunk(&mut self) -> Result<Option<AudioChunk>, AudioError>;
    /// Sample rate and channel count of the chunks.
    fn format(&self) -> (u32, u16);
    /// Frames the source says it holds, when it knows (a file header).
    fn declared_frames(&self) -> Option<u64> {
        None
    }
    /// What it is, for logs and errors ("flac a.flac 16000 Hz 1 ch").
    fn describe(&self) -> String;
}
