//! Face detection with BlazeFace: the short-range model (128×128, the
//! default: a door or kiosk camera sees faces within about 2 m) or the
//! full-range one (256×256, for smaller, farther faces; four times the cost).
//!
//! The image is letterboxed into the model input, the 896 anchors are
//! decoded (box and six keypoints are offsets from the anchor centre in input
//! pixels) and overlapping candidates are merged by weighted NMS, which is
//! steadier from frame to frame than keeping only the best box.

use image::RgbImage;
use serde::Serialize;

use super::VisionError;
use super::geometry::{BBox, Point, Similarity};
use super::warp::{to_input_tensor, warp_rgb};
use crate::infer::Session;

/// Values per anchor: logit, cx, cy, w, h, then six (x, y) keypoints.
const VALUES_PER_ANCHOR: usize = 17;
/// Anchor grids of both models: (cells per side, anchors per cell); the
/// stride is the input side divided by the cells.
const ANCHOR_GRIDS: [(usize, usize); 2] = [(16, 2), (8, 6)];

/// Which BlazeFace model the detector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorRange {
    /// 128×128 short-range model: faces larger than about a tenth of the frame.
    #[default]
    Short,
    /// 256×256 full-range model: smaller faces, four times the cost.
    Full,
}

impl DetectorRange {
    /// The manifest id of the model.
    pub fn model_id(self) -> &'static str {
        match self {
            Self::Short => "blazeface-front",
            Self::Full => "blazeface-back",
        }
    }
}

impl std::str::FromStr for DetectorRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "short" => Ok(Self::Short),
            "full" => Ok(Self::Full),
            other => Err(format!("unknown detector range {other:?} (short or full)")),
        }
    }
}

/// Keypoints in BlazeFace order; "right" is the subject's right, which
/// appears on the left of an unmirrored photo.
#[derive(Debug, Clone, Copy)]
pub enum Keypoint {
    RightEye = 0,
    LeftEye = 1,
    NoseTip = 2,
    Mouth = 3,
    RightEar = 4,
    LeftEar = 5,
}

#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: [Point; 6],
}

impl Detection {
    pub fn keypoint(&self, k: Keypoint) -> Point {
        self.keypoints[k as usize]
    }
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Minimum face probability for a candidate.
    pub min_score: f32,
    /// Candidates overlapping more than this are merged.
    pub nms_iou: f32,
    /// Short-range (default) or full-range model.
    pub range: DetectorRange,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            min_score: 0.5,
            nms_iou: 0.3,
            range: DetectorRange::default(),
        }
    }
}

pub struct FaceDetector {
    session: Box<dyn Session>,
    anchors: Vec<Point>,
    config: DetectorConfig,
}

impl FaceDetector {
    pub fn new(session: Box<dyn Session>, config: DetectorConfig) -> Result<Self, VisionError> {
        let spec = session.spec();
        let (h, w) = spec.input.image_size();
        if h != w || w % 16 != 0 || w == 0 {
            return Err(VisionError::UnexpectedModel {
                model: spec.id.clone(),
                what: format!(
                    "the detector input must be square and a multiple of 16, not {w}×{h}"
                ),
            });
        }
        let anchors = anchors(w);
        let expected = [1, anchors.len(), VALUES_PER_ANCHOR];
        if spec.outputs.len() != 1 || spec.outputs[0].shape != expected {
            return Err(VisionError::UnexpectedModel {
                model: spec.id.clone(),
                what: format!("the detector must have one output of shape {expected:?}"),
            });
        }
        Ok(Self {
            session,
            anchors,
            config,
        })
    }

    pub fn model_id(&self) -> &str {
        &self.session.spec().id
    }

    /// All faces in the image, most confident first, in image pixels.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        let spec = &self.session.spec().input;
        let (size_h, size_w) = spec.image_size();
        let size = size_w.max(size_h) as f32;
        // Letterbox: one scale for both axes, content centred.
        let scale = image.width().max(image.height()) as f32 / size;
        let pad_x = (size - image.width() as f32 / scale) / 2.0;
        let pad_y = (size - image.height() as f32 / scale) / 2.0;
        // Model coordinate u (0 = left edge of the input) → image pixel centre.
        let to_image = Similarity {
            a: scale,
            b: 0.0,
            tx: -pad_x * scale - 0.5,
            ty: -pad_y * scale - 0.5,
        };
        // Output pixel index x has its centre at u = x + 0.5.
        let pixel_to_image = Similarity {
            tx: to_image.tx + 0.5 * scale,
            ty: to_image.ty + 0.5 * scale,
            ..to_image
        };
        let rgb = warp_rgb(image, &pixel_to_image, size_w, size_h);
        let outputs = self.session.run(to_input_tensor(&rgb, spec))?;
        let raw = &outputs[0].data;
        let mut candidates = decode(raw, &self.anchors, self.config.min_score);
        for c in &mut candidates {
            map_detection(c, &to_image);
        }
        Ok(weighted_nms(candidates, self.config.nms_iou))
    }
}

/// Anchor centres in input pixels, in the models' output order.
fn anchors(input_side: usize) -> Vec<Point> {
    let mut out = Vec::with_capacity(896);
    for (cells, per_cell) in ANCHOR_GRIDS {
        let stride = (input_side / cells) as f32;
        for y in 0..cells {
            for x in 0..cells {
                let c = Point::new((x as f32 + 0.5) * stride, (y as f32 + 0.5) * stride);
                out.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    out
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-80.0, 80.0)).exp())
}

/// Candidates above `min_score`, in model-input coordinates.
fn decode(raw: &[f32], anchors: &[Point], min_score: f32) -> Vec<Detection> {
    raw.chunks_exact(VALUES_PER_ANCHOR)
        .zip(anchors)
        .filter_map(|(v, a)| {
            let score = sigmoid(v[0]);
            if score < min_score || !v.iter().all(|x| x.is_finite()) {
                return None;
            }
            let bbox = BBox::from_center(v[1] + a.x, v[2] + a.y, v[3], v[4]);
            let keypoints =
                std::array::from_fn(|k| Point::new(v[5 + 2 * k] + a.x, v[6 + 2 * k] + a.y));
            Some(Detection {
                bbox,
                score,
                keypoints,
            })
        })
        .collect()
}

fn map_detection(d: &mut Detection, to_image: &Similarity) {
    let s = to_image.scale();
    let c = to_image.apply(d.bbox.center());
    d.bbox = BBox::from_center(c.x, c.y, d.bbox.width * s, d.bbox.height * s);
    for k in &mut d.keypoints {
        *k = to_image.apply(*k);
    }
}

/// Merges overlapping candidates into their score-weighted average.
fn weighted_nms(mut candidates: Vec<Detection>, iou: f32) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = candidates.first().cloned() {
        let (cluster, rest): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|c| c.bbox.iou(&best.bbox) > iou);
        candidates = rest;
        let total: f32 = cluster.iter().map(|c| c.score).sum();
        let avg = |f: &dyn Fn(&Detection) -> f32| -> f32 {
            cluster.iter().map(|c| f(c) * c.score).sum::<f32>() / total
        };
        let merged = Detection {
            bbox: BBox {
                x: avg(&|c| c.bbox.x),
                y: avg(&|c| c.bbox.y),
                width: avg(&|c| c.bbox.width),
                height: avg(&|c| c.bbox.height),
            },
            score: best.score,
            keypoints: std::array::from_fn(|k| {
                Point::new(avg(&|c| c.keypoints[k].x), avg(&|c| c.keypoints[k].y))
            }),
        };
        out.push(merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_layout_matches_the_back_model() {
        let a = anchors(256);
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], Point::new(8.0, 8.0));
        assert_eq!(a[1], Point::new(8.0, 8.0));
        assert_eq!(a[2], Point::new(24.0, 8.0));
        assert_eq!(a[512], Point::new(16.0, 16.0));
        assert_eq!(a[895], Point::new(240.0, 240.0));
    }

    #[test]
    fn anchor_layout_matches_the_front_model() {
        let a = anchors(128);
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], Point::new(4.0, 4.0));
        assert_eq!(a[2], Point::new(12.0, 4.0));
        assert_eq!(a[511], Point::new(124.0, 124.0));
        assert_eq!(a[512], Point::new(8.0, 8.0));
        assert_eq!(a[895], Point::new(120.0, 120.0));
    }

    #[test]
    fn decode_offsets_from_anchor_centres_and_thresholds() {
        let a = anchors(256);
        let mut raw = vec![-10.0f32; 896 * VALUES_PER_ANCHOR];
        let i = 600;
        raw[i * 17..i * 17 + 5].copy_from_slice(&[3.0, 2.0, -1.0, 40.0, 50.0]);
        for k in 0..6 {
            raw[i * 17 + 5 + 2 * k] = k as f32;
            raw[i * 17 + 6 + 2 * k] = -(k as f32);
        }
        let d = decode(&raw, &a, 0.5);
        assert_eq!(d.len(), 1);
        let c = d[0].bbox.center();
        assert!((c.x - (a[i].x + 2.0)).abs() < 1e-4 && (c.y - (a[i].y - 1.0)).abs() < 1e-4);
        assert_eq!(d[0].keypoints[3], Point::new(a[i].x + 3.0, a[i].y - 3.0));
        assert!((d[0].score - sigmoid(3.0)).abs() < 1e-6);
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_separate_faces() {
        let det = |cx: f32, score: f32| Detection {
            bbox: BBox::from_center(cx, 50.0, 40.0, 40.0),
            score,
            keypoints: [Point::new(cx, 50.0); 6],
        };
        let out = weighted_nms(vec![det(50.0, 0.9), det(54.0, 0.9), det(150.0, 0.8)], 0.3);
        assert_eq!(out.len(), 2);
        assert!((out[0].bbox.center().x - 52.0).abs() < 1e-3);
        assert!((out[1].bbox.center().x - 150.0).abs() < 1e-3);
    }
}
