//! The speaker embedder (GE2E, `voice_embedder` in the manifest) through
//! the inference trait: partials of 1.6 s go through in batches of the
//! manifest's batch size ([B, 160, 40] mels in, [B, 256] L2-normalised
//! embeddings out; a short last batch is padded with zeros whose outputs
//! are ignored). The manifest ships B = 1: with tract, a batch of 3 took
//! as long as 3 single runs (`edgeid bench --voice`), so padding only cost.
//! The utterance embedding is the L2-normalised mean of the partials', as
//! Resemblyzer's `embed_utterance`.
//!
//! The batches are independent, so up to [`VoiceEmbedder::with_threads`]
//! of them run side by side, one thread each (the caller's thread takes
//! the first share; the daemon and the CLI verbs use `[inference]
//! voice_partial_threads`, default 2): the daemon's 2.7 s probe is 2
//! partials, and on 2 cores they take about the time of one. The partial embeddings are summed in
//! partial order whatever thread ran them, so the result is bit for bit
//! the sequential one (tests/voice_golden.rs). Sessions that cannot run
//! concurrently ([`Session::concurrent_runs`]: ONNX Runtime's, whose runs
//! take turns on a lock) are run one batch after another.

use ndarray::{Array2, s};

use super::partials::FRAMES;
use crate::infer::manifest::Metric;
use crate::infer::{Backend, InferError, Manifest, ModelRole, ModelSpec, Session, Tensor};

pub struct VoiceEmbedder {
    session: Box<dyn Session>,
    batch: usize,
    dim: usize,
    /// Batches run at once (1: one after another on the caller's thread).
    threads: usize,
}

impl VoiceEmbedder {
    /// Loads the manifest's default voice embedder (sha256 checked).
    pub fn load(manifest: &Manifest, backend: &dyn Backend) -> Result<Self, InferError> {
        Self::new(manifest.load_session(ModelRole::VoiceEmbedder, backend)?)
    }

    /// The embedder of `session`, running one batch at a time.
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
            threads: 1,
        })
    }

    /// Runs up to `threads` batches (partials, at the shipped batch size
    /// of 1) side by side; 0 counts as 1. Ignored, with one batch at a
    /// time, for a session that cannot run concurrently.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = if self.session.concurrent_runs() {
            threads.max(1)
        } else {
            1
        };
        self
    }

    /// Batches run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn spec(&self) -> &ModelSpec {
        self.session.spec()
    }

    /// The embedding of one utterance from its mel frames and partial starts.
    pub fn embed(&self, mels: &Array2<f32>, starts: &[usize]) -> Result<Vec<f32>, InferError> {
        let groups: Vec<&[usize]> = starts.chunks(self.batch).collect();
        let mut sum = vec![0.0f32; self.dim];
        // Summed in partial order, whichever thread ran each batch.
        for (group, rows) in groups.iter().zip(self.run_groups(mels, &groups)) {
            for row in rows?.chunks_exact(self.dim).take(group.len()) {
                sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            sum.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(sum)
    }

    /// Each batch's output rows, in batch order: contiguous shares of the
    /// batches on up to `threads` threads, the first on the caller's.
    fn run_groups(
        &self,
        mels: &Array2<f32>,
        groups: &[&[usize]],
    ) -> Vec<Result<Vec<f32>, InferError>> {
        let run_share = |share: &[&[usize]]| -> Vec<_> {
            share.iter().map(|g| self.run_group(mels, g)).collect()
        };
        let workers = self.threads.min(groups.len());
        if workers <= 1 {
            return run_share(groups);
        }
        // `workers` contiguous shares, the first ones a batch longer.
        let (base, longer) = (groups.len() / workers, groups.len() % workers);
        let mut rest = groups;
        let mut shares = (0..workers).map(|i| {
            let (share, after) = rest.split_at(base + usize::from(i < longer));
            rest = after;
            share
        });
        let first = shares.next().unwrap_or_default();
        std::thread::scope(|scope| {
            let spawned: Vec<_> = shares
                .map(|share| {
                    let handle = std::thread::Builder::new()
                        .name("edgeid-voice".into())
                        .spawn_scoped(scope, move || run_share(share));
                    // No thread to be had: the share runs here, after the first.
                    handle.map_err(|e| {
                        tracing::warn!(error = %e, "no thread for a voice partial: running it in turn");
                        share
                    })
                })
                .collect();
            let mut out = run_share(first);
            for s in spawned {
                match s {
                    Ok(handle) => match handle.join() {
                        Ok(rows) => out.extend(rows),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    Err(share) => out.extend(run_share(share)),
                }
            }
            out
        })
    }

    /// One batch of partials through the model: its output rows.
    fn run_group(&self, mels: &Array2<f32>, group: &[usize]) -> Result<Vec<f32>, InferError> {
        let frame_len = FRAMES * mels.ncols();
        let mut data = vec![0.0f32; self.batch * frame_len];
        for (slot, &start) in data.chunks_exact_mut(frame_len).zip(group) {
            let part = mels.slice(s![start..start + FRAMES, ..]);
            slot.iter_mut().zip(part.iter()).for_each(|(d, v)| *d = *v);
        }
        let input = Tensor {
            shape: self.session.spec().input.shape.clone(),
            data,
        };
        let mut out = self.session.run(input)?;
        match out.first_mut() {
            Some(t) if t.data.len() == self.batch * self.dim => Ok(std::mem::take(&mut t.data)),
            _ => Err(InferError::Run {
                model: self.spec().id.clone(),
                message: format!("expected {} {}-d embeddings", self.batch, self.dim),
            }),
        }
    }
}

/// Cosine of two L2-normalised embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Runs in flight now, and the most seen at once.
    #[derive(Default)]
    struct Flight {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    impl Flight {
        fn most(&self) -> usize {
            self.most.load(Ordering::SeqCst)
        }
    }

    /// A "model" whose 2-d output is the first two mel values of its
    /// partial, and that takes a while.
    struct Slow {
        spec: ModelSpec,
        flight: Arc<Flight>,
        concurrent: bool,
        fail_at: Option<f32>,
    }

    impl Session for Slow {
        fn spec(&self) -> &ModelSpec {
            &self.spec
        }
        fn run(&self, input: Tensor) -> Result<Vec<Tensor>, InferError> {
            let now = self.flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.flight.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(40));
            self.flight.now.fetch_sub(1, Ordering::SeqCst);
            if self.fail_at == Some(input.data[0]) {
                return Err(InferError::Run {
                    model: self.spec.id.clone(),
                    message: "refused".into(),
                });
            }
            Ok(vec![Tensor {
                shape: vec![1, 2],
                data: input.data[..2].to_vec(),
            }])
        }
        fn concurrent_runs(&self) -> bool {
            self.concurrent
        }
    }

    fn embedder(
        threads: usize,
        concurrent: bool,
        fail_at: Option<f32>,
    ) -> (VoiceEmbedder, Arc<Flight>) {
        let spec =
            crate::infer::manifest::test_spec("voice_embedder", "[1, 160, 40]", "[1, 2]", "");
        let flight = Arc::new(Flight::default());
        let session = Slow {
            spec,
            flight: flight.clone(),
            concurrent,
            fail_at,
        };
        let e = VoiceEmbedder::new(Box::new(session))
            .expect("a valid embedder")
            .with_threads(threads);
        (e, flight)
    }

    /// Mel frames whose first two values in row r are r and 1 / (r + 1).
    fn mels(rows: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, 40), |(r, c)| match c {
            0 => r as f32,
            1 => 1.0 / (r as f32 + 1.0),
            _ => 0.0,
        })
    }

    #[test]
    fn partials_run_side_by_side_and_sum_as_in_sequence() {
        let starts = [0, 77, 154, 231];
        let frames = mels(231 + FRAMES);
        let (one, flight) = embedder(1, true, None);
        let sequential = one.embed(&frames, &starts).expect("embeds");
        assert_eq!(flight.most(), 1);
        for (threads, most) in [(2, 2), (3, 3), (8, 4)] {
            let (e, flight) = embedder(threads, true, None);
            let parallel = e.embed(&frames, &starts).expect("embeds");
            assert_eq!(parallel, sequential, "{threads} threads");
            assert_eq!(flight.most(), most, "{threads} threads");
        }
        // One partial: nothing to share.
        let (e, flight) = embedder(4, true, None);
        e.embed(&frames, &starts[..1]).expect("embeds");
        assert_eq!(flight.most(), 1);
    }

    #[test]
    fn a_session_that_takes_turns_gets_one_partial_at_a_time() {
        let (e, flight) = embedder(4, false, None);
        assert_eq!(e.threads(), 1);
        e.embed(&mels(154 + FRAMES), &[0, 77, 154]).expect("embeds");
        assert_eq!(flight.most(), 1);
    }

    #[test]
    fn a_failed_partial_fails_the_embedding_on_any_thread() {
        for threads in [1, 2] {
            let (e, _) = embedder(threads, true, Some(77.0));
            assert!(e.embed(&mels(77 + FRAMES), &[0, 77]).is_err(), "{threads}");
        }
    }
}
