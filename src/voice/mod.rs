//! Voice stages: 16 kHz mono samples in, a speaker embedding out.
//! The front end is Resemblyzer's (PyPI `resemblyzer` 0.1.4), reproduced
//! step for step because the embedder was trained on exactly its output;
//! tests/voice_golden.rs holds it to the Python reference.
//!
//! - `level`: volume normalisation to -30 dBFS (increase only).
//! - `vad`: voice activity per 30 ms window and the silence trim.
//! - `mel`: the mel spectrogram (power, 40 Slaney bands, 25 ms / 10 ms).
//! - `partials`: where the 1.6 s partial utterances start.
//! - `embed`: the GE2E embedder through the inference trait.
//! - `pipeline`: all of it for one clip, with its speech duration.

pub mod embed;
pub mod level;
pub mod mel;
pub mod partials;
pub mod pipeline;
pub mod vad;

pub use embed::VoiceEmbedder;
pub use mel::MelFrontEnd;
pub use pipeline::{VoiceError, VoicePipeline, VoicePrint};

/// Samples per second everywhere in this module.
pub const RATE: usize = 16_000;
