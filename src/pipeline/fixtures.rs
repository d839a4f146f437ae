//! Hand-made frame analyses for the decision stages' unit tests: a face
//! with the given landmarks, size and embedding, as the pipeline would
//! report it, without running a model.

use super::{FaceEvidence, FrameAnalysis, StageTimings};
use crate::vision::align::FaceChip;
use crate::vision::detect::Detection;
use crate::vision::embed::Embedding;
use crate::vision::geometry::{BBox, Point, Similarity};
use crate::vision::landmarks::FaceMesh;
use crate::vision::quality::{QualityFailure, QualityReport};

/// One confirmed, frontal face; `quality_failures` say what the quality
/// stage found wrong with it (none: usable).
pub fn face_frame(
    mesh: FaceMesh,
    eye_distance_px: f32,
    embedding: Embedding,
    quality_failures: Vec<QualityFailure>,
) -> FrameAnalysis {
    FrameAnalysis {
        faces_detected: 1,
        ambiguous: false,
        face: Some(FaceEvidence {
            detection: Detection {
                bbox: BBox::from_center(320.0, 240.0, 200.0, 200.0),
                score: 0.9,
                keypoints: [Point::default(); 6],
            },
            mesh,
            chip: FaceChip {
                size: 0,
                rgb: Vec::new(),
                to_image: Similarity::IDENTITY,
            },
            quality: QualityReport {
                eye_distance_px,
                sharpness: 1.0,
                yaw_deg: 0.0,
                pitch_deg: 0.0,
                roll_deg: 0.0,
                brightness: 0.5,
                clipped: 0.0,
                detection_score: 0.9,
            },
            quality_failures,
            embeddings: Vec::new(),
            embedding,
        }),
        timings: StageTimings::default(),
    }
}

/// A frame in which the detector found nothing.
pub fn empty_frame() -> FrameAnalysis {
    FrameAnalysis {
        faces_detected: 0,
        ambiguous: false,
        face: None,
        timings: StageTimings::default(),
    }
}
