//! Liveness measured end to end on clips (`edgeid eval liveness`): live
//! heads and attacks, rendered here with real 3-D geometry or read from a
//! dataset, played through the real face pipeline and liveness track.
//!
//! - `mesh`: the head (a photo's face mesh, MediaPipe's triangles) and
//!   the print / screen sheets.
//! - `render`: a z-buffered textured-triangle rasteriser.
//! - `optics`: camera exposure, noise and blur; screen gamma and moiré;
//!   the seeded random numbers.
//! - `clips`: the clip kinds and their motion paths.
//! - `dataset`: DIR/live, DIR/attack/<kind>; Y4M and frame folders.
//! - `run`: a clip through the pipeline and the liveness tracks.
//! - `report`: APCER per kind, BPCER, time to decision, the DET sweep.

pub mod clips;
pub mod dataset;
pub mod mesh;
pub mod optics;
pub mod render;
pub mod report;
pub mod run;

use image::RgbImage;

pub use clips::{Clip, ClipKind, ClipSpec, Subject, render_clip};

use crate::pipeline::FacePipeline;
use crate::vision::VisionError;

/// Why a photo cannot be the subject of the clips.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error("no face found in the photo")]
    NoFace,
    #[error(transparent)]
    Vision(#[from] VisionError),
}

impl Subject {
    /// The photo's main face mesh, through the same pipeline the clips are
    /// judged with.
    pub fn from_photo(pipeline: &FacePipeline, photo: RgbImage) -> Result<Self, SubjectError> {
        let face = pipeline
            .analyse(&photo)?
            .face
            .ok_or(SubjectError::NoFace)?
            .mesh;
        Ok(Self { photo, face })
    }
}
