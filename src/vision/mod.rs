//! Vision stages, in the order a frame passes through them:
//! `detect` → `landmarks` → `align` → `quality` → `embed`; `liveness`
//! judges a sequence of meshes. `geometry` and `warp` are their shared
//! maths, `luma` their brightness. Stages know nothing of buses, stores or verdicts.

pub mod align;
mod chip_template;
pub mod detect;
pub mod embed;
pub mod geometry;
pub mod landmarks;
pub mod liveness;
pub mod luma;
pub mod pad;
pub mod quality;
pub mod warp;

use crate::infer::InferError;

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("model {model} is not what this stage expects: {what}")]
    UnexpectedModel { model: String, what: String },
    #[error("the landmarks are degenerate (all at one point); the face cannot be aligned")]
    DegenerateLandmarks,
}
