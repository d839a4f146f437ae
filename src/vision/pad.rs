//! Passive presentation-attack detection (PAD): a classifier looks at one
//! face crop and says how "live" it seems (a real face, not a print or a
//! screen replay).
//!
//! Added evidence at most, never the only liveness defence: the defence is
//! the active challenge and the planarity check in [`super::liveness`]. A
//! model's score means something only once `edgeid eval pad` has measured it;
//! the manifest marks a model without measured signal `shipped = false`, and
//! [`Manifest::by_role`](crate::infer::Manifest::by_role) then never picks it.
//!
//! The crop is the one Human (the package the models come from) feeds them:
//! a square of [`PAD_CROP_SCALE`] × the detector box's longer side around the
//! box centre, rotated so the detector's eyes are level, resized to the
//! model input; outside the image reads as black.

use image::RgbImage;

use super::VisionError;
use super::detect::{Detection, Keypoint};
use super::geometry::{Point, Similarity};
use super::warp::{to_input_tensor, warp_rgb};
use crate::infer::{Backend, InferError, Manifest, ModelRole, ModelSpec, Session};

/// Side of the PAD crop as a multiple of the detector box's longer side.
pub const PAD_CROP_SCALE: f32 = 1.5;

/// Channel order the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colour {
    Rgb,
    Bgr,
}

/// A loaded PAD model: scores a face, higher = more live.
pub struct PadScorer {
    session: Box<dyn Session>,
    colour: Colour,
}

impl PadScorer {
    /// Wraps a loaded `face_pad` session after checking it has one image
    /// input and one single-value output.
    pub fn new(session: Box<dyn Session>) -> Result<Self, VisionError> {
        let spec = session.spec();
        let unexpected = |what: String| VisionError::UnexpectedModel {
            model: spec.id.clone(),
            what,
        };
        if spec.role != ModelRole::FacePad {
            return Err(unexpected(format!(
                "its role is {}, a PAD stage needs {}",
                spec.role,
                ModelRole::FacePad
            )));
        }
        let (h, w) = spec.input.image_size();
        if h == 0 || w == 0 || spec.input.shape.iter().product::<usize>() != h * w * 3 {
            return Err(unexpected(format!(
                "the PAD model must take one RGB image, not shape {:?}",
                spec.input.shape
            )));
        }
        if spec.outputs.len() != 1 || spec.outputs[0].shape.iter().product::<usize>() != 1 {
            return Err(unexpected(
                "the PAD model must return one value (higher = more live)".into(),
            ));
        }
        let colour = match spec.input.colour.as_str() {
            "RGB" => Colour::Rgb,
            "BGR" => Colour::Bgr,
            other => return Err(unexpected(format!("input colour {other:?} (RGB or BGR)"))),
        };
        Ok(Self { session, colour })
    }

    /// Loads the shipped default `face_pad` model, checking its sha256.
    pub fn load_default(manifest: &Manifest, backend: &dyn Backend) -> Result<Self, VisionError> {
        Self::load(manifest, backend, manifest.by_role(ModelRole::FacePad)?)
    }

    /// Loads one manifest entry (shipped or not), checking its sha256.
    pub fn load(
        manifest: &Manifest,
        backend: &dyn Backend,
        spec: &ModelSpec,
    ) -> Result<Self, VisionError> {
        let bytes = manifest.read_verified(spec)?;
        Self::new(backend.load(spec, &bytes)?)
    }

    pub fn model_id(&self) -> &str {
        &self.session.spec().id
    }

    pub fn spec(&self) -> &ModelSpec {
        self.session.spec()
    }

    /// The face crop the model sees: interleaved RGB, 0..255, of the
    /// model's input size (for inspection and tests).
    pub fn crop(&self, image: &RgbImage, face: &Detection) -> Vec<f32> {
        let (h, w) = self.session.spec().input.image_size();
        let right = face.keypoint(Keypoint::RightEye);
        let left = face.keypoint(Keypoint::LeftEye);
        let angle = (left.y - right.y).atan2(left.x - right.x);
        let side = face.bbox.width.max(face.bbox.height) * PAD_CROP_SCALE;
        let centre = face.bbox.center();
        // Output pixel (i, j) samples centre + R(angle)·s·(i + 0.5 − w/2, j + 0.5 − h/2).
        let rot = Similarity::new(side / w as f32, angle, 0.0, 0.0);
        let corner = rot.apply(Point::new(0.5 - w as f32 / 2.0, 0.5 - h as f32 / 2.0));
        let pixel_to_image = Similarity {
            tx: centre.x + corner.x,
            ty: centre.y + corner.y,
            ..rot
        };
        warp_rgb(image, &pixel_to_image, w, h)
    }

    /// How live the face looks: the model's output, higher = more live (for
    /// the Human models a probability in 0..=1). Compare it with a threshold
    /// that `edgeid eval pad` measured for this model.
    pub fn score(&self, image: &RgbImage, face: &Detection) -> Result<f32, VisionError> {
        let mut rgb = self.crop(image, face);
        if self.colour == Colour::Bgr {
            for px in rgb.chunks_exact_mut(3) {
                px.swap(0, 2);
            }
        }
        let spec = self.session.spec();
        let outputs = self.session.run(to_input_tensor(&rgb, &spec.input))?;
        let value = outputs
            .first()
            .and_then(|t| t.data.first())
            .copied()
            .ok_or_else(|| InferError::Run {
                model: spec.id.clone(),
                message: "returned no value".into(),
            })?;
        if !value.is_finite() {
            return Err(VisionError::UnexpectedModel {
                model: spec.id.clone(),
                what: format!("returned a non-finite score {value}"),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::Tensor;
    use crate::infer::manifest::{InputSpec, Layout, OutputSpec, Provenance};
    use crate::vision::geometry::BBox;

    /// A fake PAD model: returns the mean of its input tensor.
    struct MeanModel(ModelSpec);

    impl Session for MeanModel {
        fn spec(&self) -> &ModelSpec {
            &self.0
        }
        fn run(&self, input: Tensor) -> Result<Vec<Tensor>, InferError> {
            let mean = input.data.iter().sum::<f32>() / input.data.len() as f32;
            Ok(vec![Tensor {
                shape: vec![1, 1],
                data: vec![mean],
            }])
        }
    }

    /// A fake PAD model: returns the first channel of the first pixel.
    struct FirstChannelModel(ModelSpec);

    impl Session for FirstChannelModel {
        fn spec(&self) -> &ModelSpec {
            &self.0
        }
        fn run(&self, input: Tensor) -> Result<Vec<Tensor>, InferError> {
            Ok(vec![Tensor {
                shape: vec![1, 1],
                data: vec![input.data[0]],
            }])
        }
    }

    fn spec(colour: &str, role: ModelRole) -> ModelSpec {
        ModelSpec {
            id: "test-pad".into(),
            file: "test.onnx".into(),
            sha256: String::new(),
            role,
            licence: String::new(),
            description: String::new(),
            input: InputSpec {
                name: "input".into(),
                shape: vec![1, 8, 8, 3],
                layout: Layout::Nhwc,
                colour: colour.into(),
                mean: [0.0; 3],
                std: [255.0; 3],
            },
            outputs: vec![OutputSpec {
                name: "live".into(),
                shape: vec![1, 1],
                meaning: String::new(),
            }],
            provenance: Provenance {
                package: String::new(),
                version: String::new(),
                source_file: String::new(),
                source_sha256: String::new(),
                converter: String::new(),
                tools: Default::default(),
                max_abs_diff: 0.0,
                verified_on: String::new(),
            },
            thresholds: Default::default(),
            shipped: true,
            metric: Default::default(),
            flip_tta: false,
            alignment: Default::default(),
            notice: None,
        }
    }

    fn face(x: f32, y: f32, side: f32) -> Detection {
        let c = Point::new(x + side / 2.0, y + side / 2.0);
        let mut keypoints = [c; 6];
        keypoints[Keypoint::RightEye as usize] = Point::new(c.x - side / 4.0, c.y);
        keypoints[Keypoint::LeftEye as usize] = Point::new(c.x + side / 4.0, c.y);
        Detection {
            bbox: BBox {
                x,
                y,
                width: side,
                height: side,
            },
            score: 0.9,
            keypoints,
        }
    }

    #[test]
    fn crop_is_centred_on_the_face_and_scaled() {
        // White square face 40 px wide at (30, 30) on black: the crop covers
        // 1.5 × 40 = 60 px, so the face fills the middle two thirds.
        let img = RgbImage::from_fn(100, 100, |x, y| {
            let inside = (30..70).contains(&x) && (30..70).contains(&y);
            image::Rgb(if inside { [255; 3] } else { [0; 3] })
        });
        let scorer = PadScorer::new(Box::new(MeanModel(spec("RGB", ModelRole::FacePad))))
            .expect("valid PAD model");
        let rgb = scorer.crop(&img, &face(30.0, 30.0, 40.0));
        let at = |i: usize, j: usize| rgb[(j * 8 + i) * 3];
        assert_eq!(at(4, 4), 255.0, "centre is face");
        assert_eq!(at(3, 3), 255.0);
        assert_eq!(at(0, 0), 0.0, "corner is background");
        assert_eq!(at(7, 7), 0.0);
        // Mean over the crop: (40/60)² of it is face.
        let score = scorer.score(&img, &face(30.0, 30.0, 40.0)).expect("scores");
        assert!((score - 4.0 / 9.0).abs() < 0.08, "{score}");
    }

    #[test]
    fn bgr_models_get_their_channels_swapped() {
        let img = RgbImage::from_pixel(50, 50, image::Rgb([255, 0, 0]));
        let red_first = |colour: &str| {
            let scorer = PadScorer::new(Box::new(FirstChannelModel(spec(
                colour,
                ModelRole::FacePad,
            ))))
            .expect("valid PAD model");
            assert_eq!(
                &scorer.crop(&img, &face(20.0, 20.0, 10.0))[..3],
                &[255.0, 0.0, 0.0]
            );
            scorer.score(&img, &face(20.0, 20.0, 10.0)).expect("scores")
        };
        assert_eq!(red_first("RGB"), 1.0, "an RGB model sees red first");
        assert_eq!(red_first("BGR"), 0.0, "a BGR model sees blue first");
    }

    #[test]
    fn refuses_models_of_another_role_or_colour() {
        let wrong_role = PadScorer::new(Box::new(MeanModel(spec("RGB", ModelRole::FaceEmbedder))));
        assert!(wrong_role.is_err());
        let wrong_colour = PadScorer::new(Box::new(MeanModel(spec("YUV", ModelRole::FacePad))));
        let err = wrong_colour
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("YUV"), "{err}");
    }
}
