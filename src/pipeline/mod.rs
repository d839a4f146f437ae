//! The face pipeline: one still frame in, the main face's evidence out
//! (detection, mesh, aligned chip, quality, embedding, stage timings).
//!
//! The main face is the subject, the person using the device, chosen by a
//! [`SubjectRule`]: by default a large face near the image centre, so a
//! bystander at the edge of the picture loses to the person in front of
//! the camera.
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

use crate::infer::manifest::FusionSpec;
use crate::infer::{Backend, Manifest, ModelRole};
use crate::vision::VisionError;
use crate::vision::align::{Alignment, ChipTemplate, FaceChip, align};
use crate::vision::detect::{Detection, DetectorConfig, FaceDetector};
use crate::vision::embed::{Embedding, FaceEmbedder};
use crate::vision::geometry::BBox;
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
    /// Test-time flip augmentation of the embedder; `None`: the manifest's
    /// `flip_tta` for the model (its thresholds were measured with it).
    pub flip_tta: Option<bool>,
    /// Which face embedder(s) run on the subject.
    pub embedder: EmbedderChoice,
}

/// The face embedders a pipeline runs (`[face] embedder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderChoice {
    /// dlib's ResNet (CC0).
    #[default]
    Dlib,
    /// MobileFaceNet (MS1M-trained weights: see models/NOTICE.md).
    Mobilefacenet,
    /// Both, scores fused (`[[fusion]]` in the manifest).
    Fused,
}

impl EmbedderChoice {
    pub const ALL: [EmbedderChoice; 3] = [Self::Dlib, Self::Mobilefacenet, Self::Fused];
    pub const DLIB_ID: &'static str = "dlib-resnet-v1";
    pub const MOBILEFACENET_ID: &'static str = "mobilefacenet";

    pub fn name(self) -> &'static str {
        match self {
            Self::Dlib => "dlib",
            Self::Mobilefacenet => "mobilefacenet",
            Self::Fused => "fused",
        }
    }

    /// The manifest ids of the embedders it runs, the primary first.
    pub fn model_ids(self) -> &'static [&'static str] {
        match self {
            Self::Dlib => &[Self::DLIB_ID],
            Self::Mobilefacenet => &[Self::MOBILEFACENET_ID],
            Self::Fused => &[Self::DLIB_ID, Self::MOBILEFACENET_ID],
        }
    }
}

impl std::fmt::Display for EmbedderChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EmbedderChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown embedder {s:?}: use dlib, mobilefacenet or fused"))
    }
}

/// Which detected face is the subject: the person using the device.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaceSelection {
    pub rule: SubjectRule,
    /// A second face whose score under `rule` is at least this fraction of
    /// the best one's makes the frame ambiguous (`multiple_faces`).
    pub multiple_face_ratio: f32,
}

impl Default for FaceSelection {
    fn default() -> Self {
        Self {
            rule: SubjectRule::default(),
            multiple_face_ratio: 0.6,
        }
    }
}

/// How the faces of a frame are ranked to find the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectRule {
    /// The largest box (area).
    Largest,
    /// The box nearest the image centre (the LFW protocol's subject).
    Central,
    /// Box area weighted by centrality: the person in front of the camera
    /// beats a bystander at the edge of the picture even when the
    /// bystander's face is somewhat larger.
    #[default]
    LargeAndCentral,
}

/// Spread of the centrality weight, in half-image units: a face centred
/// half-way to the edge keeps 61 % of its weight, one at the edge midpoint
/// 14 %, one in a corner 2 %.
const CENTRALITY_SIGMA: f32 = 0.5;

impl SubjectRule {
    pub const ALL: [SubjectRule; 3] = [Self::Largest, Self::Central, Self::LargeAndCentral];

    pub fn name(self) -> &'static str {
        match self {
            Self::Largest => "largest",
            Self::Central => "central",
            Self::LargeAndCentral => "large_and_central",
        }
    }

    /// The rule's score of a face box in an image of `size` (width,
    /// height): higher is more likely the subject; always ≥ 0.
    pub fn score(self, bbox: &BBox, size: (u32, u32)) -> f32 {
        match self {
            Self::Largest => bbox.area(),
            Self::Central => centrality(bbox, size),
            Self::LargeAndCentral => bbox.area() * centrality(bbox, size),
        }
    }
}

impl std::fmt::Display for SubjectRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SubjectRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name() == s || r.name().replace('_', "-") == s)
            .ok_or_else(|| {
                format!("unknown face selection {s:?}: use largest, central or large_and_central")
            })
    }
}

/// 1 at the image centre, falling off as a Gaussian of the box centre's
/// offset measured in half-widths and half-heights.
fn centrality(bbox: &BBox, (width, height): (u32, u32)) -> f32 {
    let (hw, hh) = (
        (width as f32 / 2.0).max(1.0),
        (height as f32 / 2.0).max(1.0),
    );
    let c = bbox.center();
    let (dx, dy) = ((c.x - hw) / hw, (c.y - hh) / hh);
    (-(dx * dx + dy * dy) / (2.0 * CENTRALITY_SIGMA * CENTRALITY_SIGMA)).exp()
}

impl FaceSelection {
    /// `detections` best first under the rule, and whether the runner-up
    /// is close enough to make the frame ambiguous.
    pub fn rank(&self, mut detections: Vec<Detection>, size: (u32, u32)) -> (Vec<Detection>, bool) {
        let score = |d: &Detection| self.rule.score(&d.bbox, size);
        // Stable: equal scores keep the detector's order (most confident first).
        detections.sort_by(|a, b| score(b).total_cmp(&score(a)));
        let ambiguous = match detections.as_slice() {
            [first, second, ..] => score(second) >= self.multiple_face_ratio * score(first),
            _ => false,
        };
        (detections, ambiguous)
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
    /// The primary embedder's descriptor (the first of `embeddings`).
    pub embedding: Embedding,
    /// Every configured embedder's descriptor, in `EmbedderChoice` order.
    pub embeddings: Vec<ModelEmbedding>,
}

/// One embedder's descriptor of the face, labelled with the model that
/// made it (templates are only ever compared with the same model's).
#[derive(Debug, Clone)]
pub struct ModelEmbedding {
    pub model_id: String,
    pub model_sha256: String,
    pub embedding: Embedding,
}

/// An embedder with the chip it was trained on.
pub struct ChipEmbedder {
    pub embedder: FaceEmbedder,
    pub template: ChipTemplate,
}

/// The result of analysing one frame.
#[derive(Debug, Clone)]
pub struct FrameAnalysis {
    /// Faces the detector found (before the mesh confirmed any).
    pub faces_detected: usize,
    /// Another face ranks close to the main one under the selection rule
    /// (`multiple_faces`).
    pub ambiguous: bool,
    /// The main face, when one was found and confirmed by the mesh.
    pub face: Option<FaceEvidence>,
    pub timings: StageTimings,
}

/// A frame's subject, before alignment and embedding.
#[derive(Debug, Clone)]
pub struct Subject {
    pub faces_detected: usize,
    /// Another face ranks close to the subject under the selection rule.
    pub ambiguous: bool,
    /// The subject's detection and mesh, when the mesh confirmed one.
    pub face: Option<(Detection, FaceMesh)>,
}

pub struct FacePipeline {
    detector: FaceDetector,
    landmarker: FaceLandmarker,
    /// The configured embedders, the primary first (never empty).
    embedders: Vec<ChipEmbedder>,
    /// The manifest's fusion of the embedders (fused only).
    fusion: Option<FusionSpec>,
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
        let embedders = config
            .embedder
            .model_ids()
            .iter()
            .map(|id| {
                let spec = manifest.by_id(id, ModelRole::FaceEmbedder)?;
                let mut embedder = FaceEmbedder::new(manifest.load_spec(spec, backend)?)?;
                if let Some(flip) = config.flip_tta {
                    embedder = embedder.with_flip(flip);
                }
                let template = ChipTemplate::for_embedder(
                    spec.alignment,
                    config.alignment,
                    embedder.chip_size(),
                );
                Ok(ChipEmbedder { embedder, template })
            })
            .collect::<Result<Vec<_>, VisionError>>()?;
        // Absent until fitted (`edgeid eval faces --compare fused`); the
        // matcher refuses a fused configuration without it.
        let ids = config.embedder.model_ids();
        let fusion = (ids.len() > 1)
            .then(|| manifest.fusion(ids).cloned())
            .flatten();
        Ok(Self {
            detector,
            landmarker,
            embedders,
            fusion,
            config,
        })
    }

    /// The primary embedder (the only one unless fused).
    pub fn embedder(&self) -> &FaceEmbedder {
        &self.embedders[0].embedder
    }

    /// Every configured embedder with its chip, the primary first.
    pub fn embedders(&self) -> &[ChipEmbedder] {
        &self.embedders
    }

    pub fn embedder_spec(&self) -> &crate::infer::ModelSpec {
        self.embedder().spec()
    }

    /// The embedders after the primary (fused only).
    pub fn extra_specs(&self) -> Vec<&crate::infer::ModelSpec> {
        self.embedders[1..]
            .iter()
            .map(|e| e.embedder.spec())
            .collect()
    }

    /// The manifest's fusion of the embedders, when fused.
    pub fn fusion(&self) -> Option<&FusionSpec> {
        self.fusion.as_ref()
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

    /// Runs every stage on the subject of `image` (the configured
    /// [`FaceSelection`]).
    pub fn analyse(&self, image: &RgbImage) -> Result<FrameAnalysis, VisionError> {
        let mut timings = StageTimings::default();
        let started = Instant::now();
        let detections = self.detector.detect(image)?;
        timings.detect = started.elapsed();
        let subject = self.subject(image, detections, &self.config.faces, &mut timings)?;
        let face = match subject.face {
            Some((detection, mesh)) => Some(self.evidence(image, detection, mesh, &mut timings)?),
            None => None,
        };
        timings.total = started.elapsed();
        Ok(FrameAnalysis {
            faces_detected: subject.faces_detected,
            ambiguous: subject.ambiguous,
            face,
            timings,
        })
    }

    /// The subject among `detections` (of `image`) under `selection`: the
    /// best-ranked of the first three candidates the mesh confirms as a
    /// face, so a detector false positive (a pattern on a shirt) is skipped.
    pub fn subject(
        &self,
        image: &RgbImage,
        detections: Vec<Detection>,
        selection: &FaceSelection,
        timings: &mut StageTimings,
    ) -> Result<Subject, VisionError> {
        let faces_detected = detections.len();
        let (ranked, ambiguous) = selection.rank(detections, image.dimensions());
        let mut face = None;
        for detection in ranked.into_iter().take(3) {
            let t = Instant::now();
            let mesh = self.landmarker.landmarks(image, &detection)?;
            timings.landmarks += t.elapsed();
            if mesh.presence >= self.landmarker.config().min_presence {
                face = Some((detection, mesh));
                break;
            }
        }
        Ok(Subject {
            faces_detected,
            ambiguous,
            face,
        })
    }

    /// The primary embedder's aligned chip of a face.
    pub fn chip(&self, image: &RgbImage, mesh: &FaceMesh) -> Result<FaceChip, VisionError> {
        align(image, mesh, &self.embedders[0].template)
    }

    fn evidence(
        &self,
        image: &RgbImage,
        detection: Detection,
        mesh: FaceMesh,
        timings: &mut StageTimings,
    ) -> Result<FaceEvidence, VisionError> {
        let t = Instant::now();
        let chip = self.chip(image, &mesh)?;
        timings.align = t.elapsed();
        let t = Instant::now();
        let quality = measure(&detection, &mesh, &chip);
        let quality_failures = self.config.quality.failures(&quality);
        timings.quality = t.elapsed();
        let t = Instant::now();
        let mut embeddings = Vec::with_capacity(self.embedders.len());
        for (i, e) in self.embedders.iter().enumerate() {
            let own;
            let chip = if i == 0 {
                &chip
            } else {
                own = align(image, &mesh, &e.template)?;
                &own
            };
            embeddings.push(ModelEmbedding {
                model_id: e.embedder.model_id().to_owned(),
                model_sha256: e.embedder.model_sha256().to_owned(),
                embedding: e.embedder.embed(chip)?,
            });
        }
        timings.embed = t.elapsed();
        Ok(FaceEvidence {
            detection,
            mesh,
            chip,
            quality,
            quality_failures,
            embedding: embeddings[0].embedding.clone(),
            embeddings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::geometry::Point;

    const FRAME: (u32, u32) = (640, 480);

    fn face(cx: f32, cy: f32, side: f32) -> Detection {
        Detection {
            bbox: BBox::from_center(cx, cy, side, side),
            score: 0.9,
            keypoints: [Point::default(); 6],
        }
    }

    fn ranked(rule: SubjectRule, faces: Vec<Detection>) -> (Vec<f32>, bool) {
        let selection = FaceSelection {
            rule,
            ..FaceSelection::default()
        };
        let (ranked, ambiguous) = selection.rank(faces, FRAME);
        (
            ranked.iter().map(|d| d.bbox.center().x).collect(),
            ambiguous,
        )
    }

    #[test]
    fn the_default_prefers_a_large_and_central_face() {
        assert_eq!(FaceSelection::default().rule, SubjectRule::LargeAndCentral);
    }

    #[test]
    fn a_larger_bystander_at_the_edge_loses_to_the_central_face() {
        // The user in front of the camera (120 px face, slightly off
        // centre) and a bystander at the right edge, closer to the lens.
        let faces = || vec![face(600.0, 220.0, 150.0), face(350.0, 250.0, 120.0)];
        let (order, ambiguous) = ranked(SubjectRule::Largest, faces());
        assert_eq!(order[0], 600.0, "largest: the bystander");
        assert!(ambiguous, "largest: 120² ≥ 0.6·150²");
        for rule in [SubjectRule::LargeAndCentral, SubjectRule::Central] {
            let (order, ambiguous) = ranked(rule, faces());
            assert_eq!(order, vec![350.0, 600.0], "{rule}");
            assert!(!ambiguous, "{rule}: the bystander is not a close candidate");
        }
    }

    #[test]
    fn a_small_face_at_the_centre_does_not_beat_a_large_one_nearby() {
        // A photo on the wall behind the user, dead centre, a fifth of the
        // user's size: only the pure centre rule picks it.
        let faces = || vec![face(320.0, 240.0, 40.0), face(250.0, 260.0, 180.0)];
        assert_eq!(ranked(SubjectRule::LargeAndCentral, faces()).0[0], 250.0);
        assert_eq!(ranked(SubjectRule::Central, faces()).0[0], 320.0);
    }

    #[test]
    fn two_close_candidates_are_ambiguous() {
        // Two people of the same size either side of the centre.
        let faces = || vec![face(220.0, 240.0, 130.0), face(420.0, 240.0, 125.0)];
        for rule in SubjectRule::ALL {
            let (order, ambiguous) = ranked(rule, faces());
            assert_eq!(order.len(), 2);
            assert!(ambiguous, "{rule}");
        }
        let (_, ambiguous) = ranked(SubjectRule::LargeAndCentral, vec![face(320.0, 240.0, 99.0)]);
        assert!(!ambiguous, "one face is never ambiguous");
    }

    #[test]
    fn rules_parse_by_name() {
        for rule in SubjectRule::ALL {
            assert_eq!(rule.name().parse::<SubjectRule>(), Ok(rule));
        }
        assert_eq!(
            "large-and-central".parse::<SubjectRule>(),
            Ok(SubjectRule::LargeAndCentral)
        );
        assert!("biggest".parse::<SubjectRule>().is_err());
        let toml: PipelineConfig = toml::from_str("[faces]\nrule = \"central\"\n").expect("parses");
        assert_eq!(toml.faces.rule, SubjectRule::Central);
        assert_eq!(toml.faces.multiple_face_ratio, 0.6);
    }
}
