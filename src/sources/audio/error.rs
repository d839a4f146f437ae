//! The one error type of the audio sources.

use std::path::PathBuf;

/// Why audio could not be read. Each names the input, so a message read
/// out of context still says which file or device it is about. As with the
/// camera sources' errors, a cause is part of the message and kept typed in
/// its `error` field rather than repeated as a `source()`.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot open {what}: {error}")]
    Open { what: String, error: std::io::Error },
    #[error("{what}: read failed: {error}")]
    Read { what: String, error: std::io::Error },
    /// Not audio, or a container/codec this build does not read.
    #[error("{path}: not a readable WAV or FLAC file: {error}")]
    Format {
        path: PathBuf,
        error: symphonia::core::errors::Error,
    },
    /// The file ends or breaks before any usable sample.
    #[error("{path}: no audio track with a sample rate and channel count")]
    NoTrack { path: PathBuf },
    #[error("{what}: unsupported format: {detail}")]
    Unsupported { what: String, detail: String },
    /// The input holds no samples at all.
    #[error("{what}: no audio samples")]
    Empty { what: String },
    /// Longer than the caller's limit; nothing past the limit was read.
    #[error("{what}: longer than the {limit_s:.0} s limit")]
    TooLong { what: String, limit_s: f64 },
    #[error("resampling {from} Hz to {to} Hz failed: {error}")]
    Resample {
        from: u32,
        to: u32,
        error: rubato::ResampleError,
    },
    #[error("cannot build a {from} Hz to {to} Hz resampler: {error}")]
    ResamplerInit {
        from: u32,
        to: u32,
        error: rubato::ResamplerConstructionError,
    },
    /// The microphone could not be found, opened or started.
    #[error("microphone {device:?}: {detail}")]
    Microphone { device: String, detail: String },
}
