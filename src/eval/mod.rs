//! Measuring edgeid: accuracy on labelled data and latency per stage.
//!
//! - `metrics`: ROC, TAR at FAR, EER, accuracy, percentiles.
//! - `faces`: the LFW pairs protocol.
//! - `pad`: presentation-attack detection on live / spoof folders.
//! - `runner`: analyses many images (threads, progress, per-image time).
//! - `plot`: ROC/DET curves and histograms as PNG.

pub mod bench;
pub mod daemon_bench;
pub mod faces;
pub mod metrics;
pub mod pad;
pub mod plot;
pub mod runner;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Pairs {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("dataset {0} has no usable samples")]
    Empty(PathBuf),
    #[error("cannot write plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
}
