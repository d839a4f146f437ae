//! The one error type of the audio sources.

use std::path::PathBuf;

/// Why audio could not be read. Each names the input, so a message read
/// out of context still says which file or device it is about.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot open {what}: {source}")]
    Open {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: read failed: {source}")]
    Read {
        what: String,
        source: std::io::Error,
    },
    /// Not audio, or a container/codec this build does not read.
    #[error("{path}: not a readable WAV or FLAC file: {source}")]
    Format {
        path: PathBuf,
        source: symphonia::core::errors::Error,
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
    #[error("resampling {from} Hz to {to} Hz failed: {source}")]
    Resample {
        from: u32,
        to: u32,
        source: rubato::ResampleError,
    },
    #[error("cannot build a {from} Hz to {to} Hz resampler: {source}")]
    ResamplerInit {
        from: u32,
        to: u32,
        source: rubato::ResamplerConstructionError,
    },
    /// The microphone could not be found, opened or started.
    #[error("microphone {device:?}: {detail}")]
    Microphone { device: String, detail: String },
}
