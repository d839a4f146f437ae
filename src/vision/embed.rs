//! Embedding: an aligned chip in, a unit-length face descriptor out.

use serde::Serialize;

use super::VisionError;
use super::align::FaceChip;
use super::warp::to_input_tensor;
use crate::infer::Session;

/// A unit-length face descriptor; cosine similarity is a dot product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// L2-normalises `v`; `None` for an all-zero or non-finite vector.
    pub fn normalised(mut v: Vec<f32>) -> Option<Self> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Some(Self(v))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// Cosine similarity of two unit vectors, in −1..=1.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

pub struct FaceEmbedder {
    session: Box<dyn Session>,
}

impl FaceEmbedder {
    pub fn new(session: Box<dyn Session>) -> Result<Self, VisionError> {
        let spec = session.spec();
        if spec.outputs.len() != 1 || spec.input.image_size().0 == 0 {
            return Err(VisionError::UnexpectedModel {
                model: spec.id.clone(),
                what: "the embedder must take one image and return one vector".into(),
            });
        }
        Ok(Self { session })
    }

    pub fn model_id(&self) -> &str {
        &self.session.spec().id
    }

    pub fn model_sha256(&self) -> &str {
        &self.session.spec().sha256
    }

    pub fn spec(&self) -> &crate::infer::ModelSpec {
        self.session.spec()
    }

    /// The chip side the embedder expects.
    pub fn chip_size(&self) -> usize {
        self.session.spec().input.image_size().1
    }

    pub fn embed(&self, chip: &FaceChip) -> Result<Embedding, VisionError> {
        let spec = &self.session.spec().input;
        if spec.image_size() != (chip.size, chip.size) {
            return Err(VisionError::UnexpectedModel {
                model: self.model_id().to_owned(),
                what: format!(
                    "chip is {0}×{0}, the model takes {1:?}",
                    chip.size,
                    spec.image_size()
                ),
            });
        }
        let out = self.session.run(to_input_tensor(&chip.rgb, spec))?;
        let v = out.into_iter().next().map(|t| t.data).unwrap_or_default();
        Embedding::normalised(v).ok_or_else(|| VisionError::UnexpectedModel {
            model: self.model_id().to_owned(),
            what: "returned a zero or non-finite embedding".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_vectors_have_unit_cosine_with_themselves() {
        let e = Embedding::normalised(vec![3.0, 4.0]).expect("non-zero");
        assert!((e.cosine(&e) - 1.0).abs() < 1e-6);
        assert_eq!(e.0, vec![0.6, 0.8]);
        assert!(Embedding::normalised(vec![0.0, 0.0]).is_none());
        assert!(Embedding::normalised(vec![f32::NAN, 1.0]).is_none());
    }
}
