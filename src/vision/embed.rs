//! Embedding: an aligned chip in, a unit-length face descriptor out.

use serde::Serialize;

use super::VisionError;
use super::align::FaceChip;
use super::warp::to_input_tensor;
use crate::infer::Session;
use crate::infer::manifest::Metric;

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

/// The model's two raw outputs for one chip: as is and mirrored.
#[derive(Debug, Clone)]
pub struct RawViews {
    pub plain: Vec<f32>,
    pub mirrored: Vec<f32>,
}

impl RawViews {
    /// The flip-augmented raw descriptor: the mean of both views.
    pub fn mean(&self) -> Vec<f32> {
        self.plain
            .iter()
            .zip(&self.mirrored)
            .map(|(a, b)| (a + b) / 2.0)
            .collect()
    }
}

pub struct FaceEmbedder {
    session: Box<dyn Session>,
    /// Test-time flip augmentation (the manifest's `flip_tta` unless overridden).
    flip: bool,
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
        if spec.metric != Metric::Cosine {
            // Embeddings are unit vectors compared by dot product (the
            // gallery, its quantised pass and its thresholds rely on it);
            // scoring raw vectors by another distance is not implemented.
            return Err(VisionError::UnexpectedModel {
                model: spec.id.clone(),
                what: format!(
                    "the manifest declares metric {:?}; edgeid scores embeddings by cosine only",
                    spec.metric.to_string()
                ),
            });
        }
        let flip = spec.flip_tta;
        Ok(Self { session, flip })
    }

    /// Overrides the manifest's `flip_tta` (evaluation; the manifest's
    /// thresholds were measured with its own setting).
    pub fn with_flip(mut self, flip: bool) -> Self {
        self.flip = flip;
        self
    }

    /// Whether embeddings average the chip with its mirror image.
    pub fn flip(&self) -> bool {
        self.flip
    }

    /// The distance the model was trained with (manifest `metric`).
    pub fn metric(&self) -> Metric {
        self.session.spec().metric
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

    /// The unit-length descriptor of a chip: of the chip alone, or with
    /// flip augmentation the normalised mean of the chip's and its
    /// mirror's raw outputs.
    pub fn embed(&self, chip: &FaceChip) -> Result<Embedding, VisionError> {
        let v = if self.flip {
            self.raw_views(chip)?.mean()
        } else {
            self.raw(chip)?
        };
        Embedding::normalised(v).ok_or_else(|| VisionError::UnexpectedModel {
            model: self.model_id().to_owned(),
            what: "returned a zero or non-finite embedding".into(),
        })
    }

    /// The model's raw output for the chip, whatever `flip` says.
    pub fn raw(&self, chip: &FaceChip) -> Result<Vec<f32>, VisionError> {
        self.check_size(chip)?;
        self.run(&chip.rgb)
    }

    /// The raw outputs for the chip and for its mirror image: two runs,
    /// side by side (the mirror on a second thread), so the added latency
    /// is one run's only where a core is free.
    pub fn raw_views(&self, chip: &FaceChip) -> Result<RawViews, VisionError> {
        self.check_size(chip)?;
        let mirrored = mirror_rgb(&chip.rgb, chip.size);
        let (plain, mirrored) = std::thread::scope(|scope| {
            let other = scope.spawn(|| self.run(&mirrored));
            let plain = self.run(&chip.rgb);
            // The thread panics only if the model run does; pass it on.
            let mirrored = other
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (plain, mirrored)
        });
        Ok(RawViews {
            plain: plain?,
            mirrored: mirrored?,
        })
    }

    fn check_size(&self, chip: &FaceChip) -> Result<(), VisionError> {
        let spec = &self.session.spec().input;
        if spec.image_size() == (chip.size, chip.size) {
            return Ok(());
        }
        Err(VisionError::UnexpectedModel {
            model: self.model_id().to_owned(),
            what: format!(
                "chip is {0}×{0}, the model takes {1:?}",
                chip.size,
                spec.image_size()
            ),
        })
    }

    fn run(&self, rgb: &[f32]) -> Result<Vec<f32>, VisionError> {
        let out = self
            .session
            .run(to_input_tensor(rgb, &self.session.spec().input))?;
        Ok(out.into_iter().next().map(|t| t.data).unwrap_or_default())
    }
}

/// A square interleaved-RGB chip mirrored left to right. The dlib template
/// is symmetric about x = 0.493 of the chip side, so the mirrored face
/// lands within half a pixel of the template: no new alignment is needed.
pub fn mirror_rgb(rgb: &[f32], size: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rgb.len());
    for row in rgb.chunks_exact(size * 3) {
        for pixel in row.chunks_exact(3).rev() {
            out.extend_from_slice(pixel);
        }
    }
    out
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

    #[test]
    fn the_mirrored_chip_is_mirrored_left_to_right() {
        // A 3×3 chip whose channels encode each pixel's column and row.
        let size = 3;
        let rgb: Vec<f32> = (0..size * size)
            .flat_map(|i| {
                let (x, y) = ((i % size) as f32, (i / size) as f32);
                [10.0 * x + y, 100.0 + x, 200.0 + y]
            })
            .collect();
        let m = mirror_rgb(&rgb, size);
        assert_eq!(m.len(), rgb.len());
        for y in 0..size {
            for x in 0..size {
                let at = |buf: &[f32], x: usize| {
                    buf[(y * size + x) * 3..(y * size + x) * 3 + 3].to_vec()
                };
                assert_eq!(at(&m, x), at(&rgb, size - 1 - x), "pixel ({x}, {y})");
            }
        }
        assert_eq!(mirror_rgb(&m, size), rgb, "mirroring twice is the identity");
    }

    /// A 2×2 "model" whose output is the red values of the top row, so a
    /// mirrored input shows as swapped components.
    struct TopRow(crate::infer::ModelSpec);

    impl Session for TopRow {
        fn spec(&self) -> &crate::infer::ModelSpec {
            &self.0
        }
        fn run(
            &self,
            input: crate::infer::Tensor,
        ) -> Result<Vec<crate::infer::Tensor>, crate::infer::InferError> {
            // NCHW: the red plane comes first, row-major.
            Ok(vec![crate::infer::Tensor {
                shape: vec![1, 2],
                data: input.data[..2].to_vec(),
            }])
        }
    }

    fn embedder(extra: &str) -> FaceEmbedder {
        let spec =
            crate::infer::manifest::test_spec("face_embedder", "[1, 3, 2, 2]", "[1, 2]", extra);
        FaceEmbedder::new(Box::new(TopRow(spec))).expect("a valid embedder")
    }

    fn chip() -> FaceChip {
        // Top row: red 3 then red 1; bottom row dark.
        let mut rgb = vec![0.0; 2 * 2 * 3];
        rgb[0] = 3.0;
        rgb[3] = 1.0;
        FaceChip {
            size: 2,
            rgb,
            to_image: crate::vision::geometry::Similarity::IDENTITY,
        }
    }

    #[test]
    fn flip_tta_embeds_the_mean_of_the_chip_and_its_mirror() {
        let flip = embedder("flip_tta = true");
        assert!(flip.flip());
        let views = flip.raw_views(&chip()).expect("runs");
        assert_eq!(views.plain, vec![3.0, 1.0]);
        assert_eq!(
            views.mirrored,
            vec![1.0, 3.0],
            "the model saw the mirror image"
        );
        let e = flip.embed(&chip()).expect("embeds");
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!(
            (e.0[0] - h).abs() < 1e-6 && (e.0[1] - h).abs() < 1e-6,
            "{:?}",
            e.0
        );
        // Off (the manifest default, or overridden): the chip alone.
        for plain in [embedder(""), embedder("flip_tta = true").with_flip(false)] {
            let e = plain.embed(&chip()).expect("embeds");
            let n = 10.0f32.sqrt();
            assert!((e.0[0] - 3.0 / n).abs() < 1e-6 && (e.0[1] - 1.0 / n).abs() < 1e-6);
        }
    }

    #[test]
    fn an_embedder_declaring_another_metric_is_refused() {
        let spec = crate::infer::manifest::test_spec(
            "face_embedder",
            "[1, 3, 2, 2]",
            "[1, 2]",
            "metric = \"euclidean\"",
        );
        let err = FaceEmbedder::new(Box::new(TopRow(spec)))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("cosine only"), "{err}");
    }

    #[test]
    fn the_flip_mean_is_normalised() {
        let views = RawViews {
            plain: vec![3.0, 0.0, 0.0],
            mirrored: vec![0.0, 4.0, 0.0],
        };
        assert_eq!(views.mean(), vec![1.5, 2.0, 0.0]);
        let e = Embedding::normalised(views.mean()).expect("non-zero");
        let norm = e.0.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        assert_eq!(e.0, vec![0.6, 0.8, 0.0]);
    }
}
