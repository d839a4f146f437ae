//! Dense face landmarks with MediaPipe's face mesh (468 points, 192×192).
//!
//! The crop is a square around the detection, rotated so the detector's eye
//! keypoints are level: the mesh model was trained on upright faces, and
//! levelling first keeps tilted heads as accurate as upright ones.

use image::RgbImage;
use serde::Serialize;

use super::VisionError;
use super::detect::{Detection, Keypoint};
use super::geometry::{Point, Similarity};
use super::warp::{to_input_tensor, warp_rgb};
use crate::infer::Session;

/// Number of points the mesh model returns.
pub const MESH_POINTS: usize = 468;

/// Mesh indices this crate uses (MediaPipe canonical face mesh numbering;
/// "right" is the subject's right, on the left of an unmirrored photo).
pub mod index {
    pub const RIGHT_EYE_OUTER: usize = 33;
    pub const RIGHT_EYE_INNER: usize = 133;
    pub const LEFT_EYE_INNER: usize = 362;
    pub const LEFT_EYE_OUTER: usize = 263;
    pub const RIGHT_EYE_UPPER: usize = 159;
    pub const RIGHT_EYE_LOWER: usize = 145;
    pub const LEFT_EYE_UPPER: usize = 386;
    pub const LEFT_EYE_LOWER: usize = 374;
    pub const NOSE_TIP: usize = 1;
    pub const NOSE_BASE: usize = 2;
    pub const MOUTH_RIGHT: usize = 61;
    pub const MOUTH_LEFT: usize = 291;
    pub const CHIN: usize = 152;
    pub const FOREHEAD: usize = 10;
    pub const RIGHT_CHEEK: usize = 234;
    pub const LEFT_CHEEK: usize = 454;
}

/// The mesh in image pixels (x, y) with the model's relative depth z
/// (same scale as x, larger = further from the camera).
#[derive(Debug, Clone, Serialize)]
pub struct FaceMesh {
    #[serde(skip)]
    pub points: Vec<[f32; 3]>,
    /// Probability that the crop holds a face.
    pub presence: f32,
}

impl FaceMesh {
    pub fn point(&self, i: usize) -> Point {
        let p = self.points[i];
        Point::new(p[0], p[1])
    }
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LandmarkConfig {
    /// Side of the square crop as a multiple of the detection box.
    pub crop_scale: f32,
    /// Below this presence the mesh is treated as "no face".
    pub min_presence: f32,
}

impl Default for LandmarkConfig {
    fn default() -> Self {
        Self {
            crop_scale: 1.5,
            min_presence: 0.5,
        }
    }
}

pub struct FaceLandmarker {
    session: Box<dyn Session>,
    config: LandmarkConfig,
}

impl FaceLandmarker {
    pub fn new(session: Box<dyn Session>, config: LandmarkConfig) -> Result<Self, VisionError> {
        let spec = session.spec();
        let ok = spec.outputs.len() == 2
            && spec.outputs[0].shape.iter().product::<usize>() == MESH_POINTS * 3
            && spec.outputs[1].shape.iter().product::<usize>() == 1;
        if !ok {
            return Err(VisionError::UnexpectedModel {
                model: spec.id.clone(),
                what: format!("the landmark model must output {MESH_POINTS}×3 points and one flag"),
            });
        }
        Ok(Self { session, config })
    }

    pub fn model_id(&self) -> &str {
        &self.session.spec().id
    }

    pub fn config(&self) -> &LandmarkConfig {
        &self.config
    }

    /// Runs the mesh on a crop around `detection`.
    pub fn landmarks(
        &self,
        image: &RgbImage,
        detection: &Detection,
    ) -> Result<FaceMesh, VisionError> {
        let right = detection.keypoint(Keypoint::RightEye);
        let left = detection.keypoint(Keypoint::LeftEye);
        let angle = (left.y - right.y).atan2(left.x - right.x);
        let side = detection.bbox.width.max(detection.bbox.height) * self.config.crop_scale;
        self.landmarks_in_crop(image, detection.bbox.center(), side, angle)
    }

    /// Runs the mesh on a square crop of `side` pixels centred on `centre`,
    /// rotated by `angle` radians.
    pub fn landmarks_in_crop(
        &self,
        image: &RgbImage,
        centre: Point,
        side: f32,
        angle: f32,
    ) -> Result<FaceMesh, VisionError> {
        let spec = &self.session.spec().input;
        let (h, w) = spec.image_size();
        let s = side / w as f32;
        // Crop coordinate u (0 = crop edge) → image pixel centre.
        let rot = Similarity::new(s, angle, 0.0, 0.0);
        let half = Point::new(w as f32 / 2.0, h as f32 / 2.0);
        let r = rot.apply(half);
        let to_image = Similarity {
            tx: centre.x - r.x,
            ty: centre.y - r.y,
            ..rot
        };
        let pixel_to_image = Similarity {
            tx: to_image.tx + 0.5 * (rot.a - rot.b),
            ty: to_image.ty + 0.5 * (rot.b + rot.a),
            ..to_image
        };
        let rgb = warp_rgb(image, &pixel_to_image, w, h);
        let outputs = self.session.run(to_input_tensor(&rgb, spec))?;
        let raw = &outputs[0].data;
        let flag = outputs[1].data[0];
        let points = raw
            .chunks_exact(3)
            .map(|v| {
                let p = to_image.apply(Point::new(v[0], v[1]));
                [p.x, p.y, v[2] * s]
            })
            .collect();
        Ok(FaceMesh {
            points,
            // The graph ends in a sigmoid: the flag is already a probability.
            presence: flag.clamp(0.0, 1.0),
        })
    }
}
