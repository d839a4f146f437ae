//! The passive presentation-attack rule for photos: a face's live score
//! from a `face_pad` model must reach the model's threshold. Which model
//! and threshold a verb uses is the verb's choice; the rule is here.

use image::RgbImage;
use serde::Serialize;

use super::Threshold;
use super::evidence::PadResult;
use crate::vision::VisionError;
use crate::vision::detect::Detection;
use crate::vision::pad::PadScorer;

/// A PAD model with the threshold a photo's live score must reach.
pub struct PadCheck {
    scorer: PadScorer,
    threshold: Threshold,
}

/// What the check is, for reports and the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct PadCheckInfo {
    pub model_id: String,
    pub model_sha256: String,
    pub threshold: f32,
    pub threshold_source: String,
}

impl PadCheck {
    pub fn new(scorer: PadScorer, threshold: Threshold) -> Self {
        Self { scorer, threshold }
    }

    pub fn info(&self) -> PadCheckInfo {
        let spec = self.scorer.spec();
        PadCheckInfo {
            model_id: spec.id.clone(),
            model_sha256: spec.sha256.clone(),
            threshold: self.threshold.value,
            threshold_source: self.threshold.source.clone(),
        }
    }

    /// The face's live score and whether it reaches the threshold.
    pub fn judge(&self, image: &RgbImage, face: &Detection) -> Result<PadResult, VisionError> {
        let score = self.scorer.score(image, face)?;
        Ok(PadResult {
            score,
            live: self.threshold.accepts(score),
        })
    }
}
