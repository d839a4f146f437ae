//! The face pipeline: one still frame in, the main face's evidence out
//! (detection, mesh, aligned chip, quality, embedding, stage timings).
//!
//! It decides nothing: whether a face is good enough, live, or a match is
//! for `decision`, which reads the evidence.

#[cfg(test)]
pub(crate) mod fixtures;
mod timings;

use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use timings::StageTimings;

use crate::infer::{Backend, Manifest, ModelRole};
use crate::vision::VisionError;
use crate::vision::align::{Alignment, ChipTemplate, FaceChip, align};
use crate::vision::detect::{Detection, DetectorConfig, FaceDetector};
use crate::vision::embed::{Embedding, FaceEmbedder};
use crate::vision::landmarks::{FaceLandmarker, FaceMesh, LandmarkConfig};
use crate::vision::quality::{QualityConfig, QualityFailure, QualityReport, measure};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    pub detector: DetectorConfig,
    pub landmarks: LandmarkConfig,
    pub quality: QualityConfig,
    pub faces: FaceSelection,
    pub alignment: Alignment,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaceSelection {
    /// A second face whose box area is at least this fraction of the
    /// largest one makes the frame ambiguous (`multiple_faces`).
    pub multiple_face_ratio: f32,
}

impl Default for FaceSelection {
    fn default() -> Self {
        Self {
            multiple_face_ratio: 0.6,
        }
    }
}

/// Everything measured on the main face of a frame.
#[derive(Debug, Clone)]
pub struct FaceEvidence {
    pub detection: Detection,
    pub mesh: FaceMesh,
    pub chip: FaceChip,
    pub quality: QualityReport,
    pub quality_failures: Vec<QualityFailure>,
    pub embedding: Embedding,
}

/// The result of analysing one frame.
#[derive(Debug, Clone)]
pub struct FrameAnalysis {
    /// Faces the detector found (before the mesh confirmed any).
    pub faces_detected: usize,
    /// Another face is nearly as large as the main one.
    pub ambiguous: bool,
    /// The main face, when one was found and confirmed by the mesh.
    pub face: Option<FaceEvidence>,
    pub timings: StageTimings,
}

pub struct FacePipeline {
    detector: FaceDetector,
    landmarker: FaceLandmarker,
    template: ChipTemplate,
    embedder: FaceEmbedder,
    config: PipelineConfig,
}

impl FacePipeline {
    /// Loads and verifies the default face models from the manifest.
    pub fn load(
        manifest: &Manifest,
        backend: &dyn Backend,
        config: PipelineConfig,
    ) -> Result<Self, VisionError> {
        let detector_spec =
            manifest.by_id(config.detector.range.model_id(), ModelRole::FaceDetector)?;
        let detector =
            FaceDetector::new(manifest.load_spec(detector_spec, backend)?, config.detector)?;
        let landmarker = FaceLandmarker::new(
            manifest.load_session(ModelRole::FaceLandmarks, backend)?,
            config.landmarks,
        )?;
        let embedder = FaceEmbedder::new(manifest.load_session(ModelRole::FaceEmbedder, backend)?)?;
        let template = ChipTemplate::for_alignment(config.alignment, embedder.chip_size());
        Ok(Self {
            detector,
            landmarker,
            template,
            embedder,
            config,
        })
    }

    pub fn embedder(&self) -> &FaceEmbedder {
        &self.embedder
    }

    pub fn embedder_spec(&self) -> &crate::infer::ModelSpec {
        self.embedder.spec()
    }

    pub fn detector(&self) -> &FaceDetector {
        &self.detector
    }

    pub fn landmarker(&self) -> &FaceLandmarker {
        &self.landmarker
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Runs every stage on the largest face of `image`.
    pub fn analyse(&self, image: &RgbImage) -> Result<FrameAnalysis, VisionError> {
        let mut timings = StageTimings::default();
        let started = Instant::now();
        let mut detections = self.detector.detect(image)?;
        timings.detect = started.elapsed();
        detections.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        let faces_detected = detections.len();
        let ambiguous = detections.get(1).is_some_and(|second| {
            second.bbox.area() >= self.config.faces.multiple_face_ratio * detections[0].bbox.area()
        });
        // The largest detection the mesh confirms as a face is the main one;
        // a detector false positive (a pattern on a shirt) is skipped.
        let mut face = None;
        for detection in detections.into_iter().take(3) {
            let t = Instant::now();
            let mesh = self.landmarker.landmarks(image, &detection)?;
            timings.landmarks += t.elapsed();
            if mesh.presence >= self.landmarker.config().min_presence {
                face = Some((detection, mesh));
                break;
            }
        }
        let face = match face {
            Some((detection, mesh)) => Some(self.evidence(image, detection, mesh, &mut timings)?),
            None => None,
        };
        timings.total = started.elapsed();
        Ok(FrameAnalysis {
            faces_detected,
            ambiguous,
            face,
            timings,
        })
    }

    fn evidence(
        &self,
        image: &RgbImage,
        detection: Detection,
        mesh: FaceMesh,
        timings: &mut StageTimings,
    ) -> Result<FaceEvidence, VisionError> {
        let t = Instant::now();
        let chip = align(image, &mesh, &self.template)?;
        timings.align = t.elapsed();
        let t = Instant::now();
        let quality = measure(&detection, &mesh, &chip);
        let quality_failures = self.config.quality.failures(&quality);
        timings.quality = t.elapsed();
        let t = Instant::now();
        let embedding = self.embedder.embed(&chip)?;
        timings.embed = t.elapsed();
        Ok(FaceEvidence {
            detection,
            mesh,
            chip,
            quality,
            quality_failures,
            embedding,
        })
    }
}
