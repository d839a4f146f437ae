//! The speaker embedder (GE2E, `voice_embedder` in the manifest) through
//! the inference trait: partials of 1.6 s go through in batches of the
//! manifest's batch size ([B, 160, 40] mels in, [B, 256] L2-normalised
//! embeddings out; a short last batch is padded with zeros whose outputs
//! are ignored). The manifest ships B = 1: with tract, a batch of 3 took
//! as long as 3 single runs (`edgeid bench --voice`), so padding only cost.
//! The utterance embedding is the L2-normalised mean of the partials', as
//! Resemblyzer's `embed_utterance`.

use ndarray::{Array2, s};

use super::partials::FRAMES;
use crate::infer::manifest::Metric;
use crate::infer::{Backend, InferError, Manifest, ModelRole, ModelSpec, Session, Tensor};

pub struct VoiceEmbedder {
    session: Box<dyn Session>,
    batch: usize,
    dim: usize,
}

impl VoiceEmbedder {
    /// Loads the manifest's default voice embedder (sha256 checked).
    pub fn load(manifest: &Manifest, backend: &dyn Backend) -> Result<Self, InferError> {
        Self::new(manifest.load_session(ModelRole::VoiceEmbedder, backend)?)
    }

    pub fn new(session: Box<dyn Session>) -> Result<Self, InferError> {
        let spec = session.spec();
        let mismatch = |what: String| InferError::InputMismatch {
            model: spec.id.clone(),
            what,
        };
        if spec.metric != Metric::Cosine {
            return Err(mismatch(format!(
                "declares metric {}; voice embeddings are compared by cosine only",
                spec.metric
            )));
        }
        if spec.input.shape.get(1..) != Some(&[FRAMES, super::mel::N_MELS][..]) {
            return Err(mismatch(format!(
                "shape {:?} is not [1, {FRAMES}, {}] mel frames",
                spec.input.shape,
                super::mel::N_MELS
            )));
        }
        let dim = spec
            .outputs
            .first()
            .and_then(|o| o.shape.last().copied())
            .ok_or_else(|| mismatch("has no embedding output".into()))?;
        let batch = spec.input.shape.first().copied().unwrap_or(1).max(1);
        Ok(Self {
            session,
            batch,
            dim,
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        self.session.spec()
    }

    /// The embedding of one utterance from its mel frames and partial starts.
    pub fn embed(&self, mels: &Array2<f32>, starts: &[usize]) -> Result<Vec<f32>, InferError> {
        let mut sum = vec![0.0f32; self.dim];
        let frame_len = FRAMES * mels.ncols();
        for group in starts.chunks(self.batch) {
            let mut data = vec![0.0f32; self.batch * frame_len];
            for (slot, &start) in data.chunks_exact_mut(frame_len).zip(group) {
                let part = mels.slice(s![start..start + FRAMES, ..]);
                slot.iter_mut().zip(part.iter()).for_each(|(d, v)| *d = *v);
            }
            let input = Tensor {
                shape: self.session.spec().input.shape.clone(),
                data,
            };
            let out = self.session.run(input)?;
            let e = out
                .first()
                .filter(|t| t.data.len() == self.batch * self.dim)
                .ok_or_else(|| InferError::Run {
                    model: self.spec().id.clone(),
                    message: format!("expected {} {}-d embeddings", self.batch, self.dim),
                })?;
            for row in e.data.chunks_exact(self.dim).take(group.len()) {
                sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            sum.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(sum)
    }
}

/// Cosine of two L2-normalised embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
