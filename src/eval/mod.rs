//! Measuring edgeid: accuracy on labelled data and latency per stage.
//! Behind the default-on `eval` cargo feature: a device build
//! (`--no-default-features --features camera`) leaves this module, the
//! `edgeid eval` and `edgeid bench` verbs, and plotters out.
//!
//! - `metrics`: ROC, TAR at FAR, EER, accuracy, percentiles.
//! - `faces`: the LFW pairs protocol; `faces_fusion`: fitting and
//!   cross-validating the score fusion of several embedders.
//! - `pad`: presentation-attack detection on live / spoof folders.
//! - `liveness`: liveness end to end on clips (rendered heads, prints,
//!   screens, or a dataset): APCER per attack kind, BPCER, time to decision.
//! - `runner`: analyses many images (threads, progress, per-image time).
//! - `voice`: speaker verification on speaker folders (`edgeid eval voice`).
//! - `fused`: face + voice on virtual persons (`edgeid eval fused`).
//! - `voice_bench`: latency of the voice stages (`edgeid bench --voice`).
//! - `plot`: ROC/DET curves and histograms as PNG.
//! - `rng`: seeded random numbers for generated data.
//! - `bench`: per-stage latency of the face pipeline (`edgeid bench`).
//! - `gallery_bench`: 1:N matching and gallery opening times.
//! - `daemon_bench`: frame → verdict on MQTT through the real daemon and a
//!   private Mosquitto (`edgeid bench --daemon`).

pub mod bench;
pub mod daemon_bench;
pub mod faces;
pub mod faces_fusion;
pub mod fused;
pub mod gallery_bench;
pub mod liveness;
pub mod metrics;
pub mod pad;
pub mod plot;
pub mod rng;
pub mod runner;
pub mod voice;
pub mod voice_bench;

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
