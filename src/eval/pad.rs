//! Presentation-attack detection on a labelled folder: `DIR/live/*` (bona
//! fide faces) and `DIR/spoof/*` (attacks: prints, screen replays, ...).
//!
//! Every file in the two folders is a sample (hidden files excepted). Each is
//! decoded, the face pipeline finds the main face, and the PAD model scores
//! it (higher = more live). PAD sets are often tight face crops, where a
//! detector can miss a face that fills the whole image; so when the image as
//! given yields no face, it is searched again with a black border of half its
//! longer side on every side, and the report says how many needed that.
//!
//! An image with no face, or one that cannot be read, is counted as an error
//! of the classifier, never dropped: a live one as a bona fide rejected
//! (score −∞), a spoof as an attack accepted (score +∞). ISO/IEC 30107-3
//! terms: APCER = attacks accepted as live, BPCER = bona fide rejected,
//! ACER = their mean.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use super::EvalError;
use super::metrics::{percentile, roc, tar_at_far, verification_metrics};
use crate::pipeline::FacePipeline;
use crate::sources::load_image;
use crate::vision::detect::Detection;
use crate::vision::pad::PadScorer;

pub use crate::decision::threshold::PAD_OPERATING_POINT;

#[derive(Debug, thiserror::Error)]
pub enum PadEvalError {
    #[error(
        "dataset {dataset} has no {class}/ folder: a PAD dataset is DIR/live/* (bona fide faces) and DIR/spoof/* (attacks)"
    )]
    MissingFolder {
        dataset: PathBuf,
        class: &'static str,
    },
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// Bona fide or attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PadClass {
    Live,
    Spoof,
}

impl PadClass {
    pub fn folder(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Spoof => "spoof",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PadSample {
    pub path: PathBuf,
    pub class: PadClass,
}

/// Lists `DIR/live/*` and `DIR/spoof/*` (sorted; hidden files skipped).
pub fn read_pad_dataset(dataset: &Path) -> Result<Vec<PadSample>, PadEvalError> {
    let mut samples = Vec::new();
    for class in [PadClass::Live, PadClass::Spoof] {
        let dir = dataset.join(class.folder());
        if !dir.is_dir() {
            return Err(PadEvalError::MissingFolder {
                dataset: dataset.to_owned(),
                class: class.folder(),
            });
        }
        let read_err = |source| EvalError::Read {
            path: dir.clone(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden && !path.is_dir() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(EvalError::Empty(dir).into());
        }
        paths.sort();
        samples.extend(paths.into_iter().map(|path| PadSample { path, class }));
    }
    Ok(samples)
}

/// How the face of one sample was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaceSearch {
    /// In the image as given.
    Found,
    /// Only after adding a black border (a tight crop).
    FoundWithBorder,
    /// Not at all: counted as an error.
    NoFace,
    /// The image could not be read or analysed: counted as an error.
    Error,
}

/// One sample's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PadSampleResult {
    pub path: PathBuf,
    pub class: PadClass,
    pub face: FaceSearch,
    /// The model's live score; `None` when no face was scored.
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub seconds: f64,
}

impl PadSampleResult {
    /// The score the metrics use: unscored live → −∞, unscored spoof → +∞.
    pub fn metric_score(&self) -> f32 {
        self.score.unwrap_or(match self.class {
            PadClass::Live => f32::NEG_INFINITY,
            PadClass::Spoof => f32::INFINITY,
        })
    }
}

/// The main face of `image`, searching again with a border when needed.
/// Returns the face, the image it was found in, and how.
fn find_face(
    pipeline: &FacePipeline,
    image: RgbImage,
) -> Result<Option<(Detection, RgbImage, FaceSearch)>, String> {
    let analysis = pipeline.analyse(&image).map_err(|e| e.to_string())?;
    if let Some(face) = analysis.face {
        return Ok(Some((face.detection, image, FaceSearch::Found)));
    }
    let padded = with_border(&image);
    let analysis = pipeline.analyse(&padded).map_err(|e| e.to_string())?;
    Ok(analysis
        .face
        .map(|face| (face.detection, padded, FaceSearch::FoundWithBorder)))
}

/// `image` centred on black, with a border of half its longer side.
pub fn with_border(image: &RgbImage) -> RgbImage {
    let b = image.width().max(image.height()) / 2;
    let mut out = RgbImage::new(image.width() + 2 * b, image.height() + 2 * b);
    image::imageops::replace(&mut out, image, i64::from(b), i64::from(b));
    out
}

fn score_one(pipeline: &FacePipeline, scorer: &PadScorer, sample: &PadSample) -> PadSampleResult {
    let started = Instant::now();
    let outcome = load_image(&sample.path)
        .map_err(|e| e.to_string())
        .and_then(|image| find_face(pipeline, image))
        .and_then(|found| match found {
            None => Ok((FaceSearch::NoFace, None)),
            Some((face, image, how)) => scorer
                .score(&image, &face)
                .map(|s| (how, Some(s)))
                .map_err(|e| e.to_string()),
        });
    let (face, score, error) = match outcome {
        Ok((face, score)) => (face, score, None),
        Err(e) => (FaceSearch::Error, None, Some(e)),
    };
    if let Some(e) = &error {
        tracing::warn!(path = %sample.path.display(), error = %e, "PAD sample not scored");
    }
    PadSampleResult {
        path: sample.path.clone(),
        class: sample.class,
        face,
        score,
        error,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Scores every sample on `threads` threads; `progress` is called once per
/// finished sample. Results come back in the order of `samples`.
pub fn score_all(
    pipeline: &FacePipeline,
    scorer: &PadScorer,
    samples: &[PadSample],
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> Vec<PadSampleResult> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(samples.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sample) = samples.get(i) else { break };
                    let result = score_one(pipeline, scorer, sample);
                    if let Ok(mut all) = results.lock() {
                        all.push((i, result));
                    }
                    progress();
                }
            });
        }
    });
    let mut all = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// APCER, BPCER and ACER at a threshold, and threshold-free figures.
#[derive(Debug, Clone, Serialize)]
pub struct PadMetrics {
    pub live_images: usize,
    pub spoof_images: usize,
    /// Live images not scored (no face, unreadable): counted as rejected.
    pub unscored_live: usize,
    /// Spoof images not scored: counted as accepted.
    pub unscored_spoof: usize,
    pub threshold: f32,
    /// Attacks scored at or above the threshold (accepted as live).
    pub apcer: f64,
    /// Bona fide faces scored below the threshold (rejected).
    pub bpcer: f64,
    pub acer: f64,
    /// P(live score > spoof score), ties half; unscored images as errors.
    /// 0.5 is no signal; below 0.5 the model ranks attacks as more live.
    pub auc: f64,
    /// The same over the images where a face was scored.
    pub auc_scored_only: Option<f64>,
    /// Where APCER and BPCER cross.
    pub eer: f64,
    pub eer_threshold: f32,
    /// BPCER at the lowest threshold with APCER ≤ 5 %.
    pub bpcer_at_apcer_5pct: f64,
    pub threshold_at_apcer_5pct: f32,
    /// APCER at the highest threshold with BPCER ≤ 5 %.
    pub apcer_at_bpcer_5pct: f64,
    pub threshold_at_bpcer_5pct: f32,
}

impl PadMetrics {
    /// `live` and `spoof` are live scores (higher = more live); unscored
    /// samples are −∞ (live) and +∞ (spoof).
    pub fn compute(live: &[f32], spoof: &[f32], threshold: f32) -> Self {
        let v = verification_metrics(live, spoof, threshold);
        let (tar, threshold_at_apcer_5pct) = tar_at_far(live, spoof, 0.05);
        let (apcer_at_bpcer_5pct, threshold_at_bpcer_5pct) = roc(live, spoof)
            .into_iter()
            .rev()
            .find(|p| p.tar >= 0.95)
            .map(|p| (p.far, p.threshold))
            .unwrap_or((1.0, f32::NEG_INFINITY));
        let finite = |s: &[f32]| s.iter().copied().filter(|x| x.is_finite()).collect();
        let (live_scored, spoof_scored): (Vec<f32>, Vec<f32>) = (finite(live), finite(spoof));
        let auc_scored_only = (!live_scored.is_empty() && !spoof_scored.is_empty())
            .then(|| auc(&live_scored, &spoof_scored));
        Self {
            live_images: live.len(),
            spoof_images: spoof.len(),
            unscored_live: live.len() - live_scored.len(),
            unscored_spoof: spoof.len() - spoof_scored.len(),
            threshold,
            apcer: v.far,
            bpcer: v.frr,
            acer: (v.far + v.frr) / 2.0,
            auc: auc(live, spoof),
            auc_scored_only,
            eer: v.eer,
            eer_threshold: v.eer_threshold,
            bpcer_at_apcer_5pct: 1.0 - tar,
            threshold_at_apcer_5pct,
            apcer_at_bpcer_5pct,
            threshold_at_bpcer_5pct,
        }
    }
}

/// Area under the ROC by the Mann–Whitney statistic: the probability that
/// a live score exceeds a spoof score, ties counted half. ±∞ are ordinary
/// values here. 0.5 for empty inputs.
pub fn auc(live: &[f32], spoof: &[f32]) -> f64 {
    if live.is_empty() || spoof.is_empty() {
        return 0.5;
    }
    let mut all: Vec<(f32, bool)> = live
        .iter()
        .map(|&s| (s, true))
        .chain(spoof.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the live samples' ranks (1-based), ties given their mean rank.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0.total_cmp(&all[i].0).is_eq() {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let live_here = all[i..=j].iter().filter(|(_, l)| *l).count();
        rank_sum += mean_rank * live_here as f64;
        i = j + 1;
    }
    let (n, m) = (live.len() as f64, spoof.len() as f64);
    (rank_sum - n * (n + 1.0) / 2.0) / (n * m)
}

/// Counts of how faces were found, the unscored images by name, and time.
#[derive(Debug, Clone, Serialize)]
pub struct PadImageStats {
    pub images: usize,
    pub faces_found: usize,
    /// Of those, found only after adding a border (tight crops).
    pub faces_found_with_border: usize,
    /// Images where no face was found (counted as errors).
    pub no_face: Vec<PathBuf>,
    pub no_face_live: usize,
    pub no_face_spoof: usize,
    /// Images that could not be read or analysed, with the error (counted
    /// as errors).
    pub errors: Vec<(PathBuf, String)>,
    /// Decode + face search + PAD, per image.
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl PadImageStats {
    pub fn from_results(results: &[PadSampleResult]) -> Self {
        let mut times: Vec<f64> = results.iter().map(|r| r.seconds * 1e3).collect();
        times.sort_by(f64::total_cmp);
        let count = |f: &dyn Fn(&PadSampleResult) -> bool| results.iter().filter(|r| f(r)).count();
        Self {
            images: results.len(),
            faces_found: count(&|r| {
                matches!(r.face, FaceSearch::Found | FaceSearch::FoundWithBorder)
            }),
            faces_found_with_border: count(&|r| r.face == FaceSearch::FoundWithBorder),
            no_face: results
                .iter()
                .filter(|r| r.face == FaceSearch::NoFace)
                .map(|r| r.path.clone())
                .collect(),
            no_face_live: count(&|r| r.face == FaceSearch::NoFace && r.class == PadClass::Live),
            no_face_spoof: count(&|r| r.face == FaceSearch::NoFace && r.class == PadClass::Spoof),
            errors: results
                .iter()
                .filter_map(|r| r.error.as_ref().map(|e| (r.path.clone(), e.clone())))
                .collect(),
            mean_ms: times.iter().sum::<f64>() / times.len().max(1) as f64,
            p50_ms: percentile(&times, 50.0),
            p99_ms: percentile(&times, 99.0),
        }
    }
}

/// The metric scores of each class, in sample order.
pub fn class_scores(results: &[PadSampleResult]) -> (Vec<f32>, Vec<f32>) {
    let of = |class| {
        results
            .iter()
            .filter(|r| r.class == class)
            .map(PadSampleResult::metric_score)
            .collect()
    };
    (of(PadClass::Live), of(PadClass::Spoof))
}

/// The DET curve: (APCER, BPCER) over every threshold, APCER falling.
pub fn det_curve(live: &[f32], spoof: &[f32]) -> Vec<(f64, f64)> {
    roc(live, spoof)
        .into_iter()
        .map(|p| (p.far, 1.0 - p.tar))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half_and_orders_infinities() {
        assert_eq!(auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(auc(&[0.1, 0.2], &[0.9, 0.8]), 0.0);
        assert_eq!(auc(&[0.5], &[0.5]), 0.5);
        // Unscored: a live −∞ loses to every spoof, a spoof +∞ beats every live.
        assert_eq!(auc(&[f32::NEG_INFINITY, 0.9], &[0.1]), 0.5);
        assert_eq!(auc(&[0.9], &[f32::INFINITY, 0.1]), 0.5);
        // Against the pairwise definition on a mixed case.
        let live = [0.3, 0.7, 0.7, 0.2, 0.9];
        let spoof = [0.7, 0.1, 0.4];
        let mut wins = 0.0;
        for l in live {
            for s in spoof {
                wins += if l > s {
                    1.0
                } else if l == s {
                    0.5
                } else {
                    0.0
                };
            }
        }
        assert!((auc(&live, &spoof) - wins / 15.0).abs() < 1e-12);
    }

    #[test]
    fn apcer_bpcer_acer_with_unscored_samples_as_errors() {
        let live = [0.9, 0.8, 0.3, f32::NEG_INFINITY];
        let spoof = [0.1, 0.6, f32::INFINITY, 0.2];
        let m = PadMetrics::compute(&live, &spoof, 0.5);
        // Attacks accepted: 0.6 and the unscored one; live rejected: 0.3 and the unscored one.
        assert!((m.apcer - 0.5).abs() < 1e-12);
        assert!((m.bpcer - 0.5).abs() < 1e-12);
        assert!((m.acer - 0.5).abs() < 1e-12);
        assert_eq!((m.unscored_live, m.unscored_spoof), (1, 1));
        assert_eq!(
            m.auc_scored_only,
            Some(auc(&[0.9, 0.8, 0.3], &[0.1, 0.6, 0.2]))
        );
        assert!(m.auc < m.auc_scored_only.unwrap_or(0.0));
    }

    #[test]
    fn operating_points_at_five_percent() {
        let live: Vec<f32> = (0..100).map(|i| 0.5 + i as f32 / 200.0).collect();
        let spoof: Vec<f32> = (0..100).map(|i| i as f32 / 200.0 + 0.25).collect();
        let m = PadMetrics::compute(&live, &spoof, 0.5);
        assert!(m.bpcer_at_apcer_5pct <= 1.0 && m.threshold_at_apcer_5pct > 0.7);
        assert!(m.apcer_at_bpcer_5pct > 0.0 && m.threshold_at_bpcer_5pct <= 0.53);
        let rejected = live
            .iter()
            .filter(|&&s| s < m.threshold_at_bpcer_5pct)
            .count();
        assert!(rejected <= 5, "{rejected}");
        let det = det_curve(&live, &spoof);
        assert!(det.windows(2).all(|w| w[0].0 >= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn dataset_needs_both_folders_and_names_the_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("live")).expect("mkdir");
        std::fs::write(dir.path().join("live/a.png"), b"x").expect("write");
        let err = read_pad_dataset(dir.path()).expect_err("spoof/ missing");
        assert!(err.to_string().contains("spoof/"), "{err}");
        std::fs::create_dir(dir.path().join("spoof")).expect("mkdir");
        let err = read_pad_dataset(dir.path()).expect_err("spoof/ empty");
        assert!(err.to_string().contains("no usable samples"), "{err}");
        std::fs::write(dir.path().join("spoof/b.jpg"), b"y").expect("write");
        std::fs::write(dir.path().join("spoof/.hidden"), b"y").expect("write");
        let samples = read_pad_dataset(dir.path()).expect("both folders");
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].class, PadClass::Live);
        assert_eq!(samples[1].class, PadClass::Spoof);
    }

    #[test]
    fn border_centres_the_image() {
        let img = RgbImage::from_pixel(10, 4, image::Rgb([200, 100, 50]));
        let out = with_border(&img);
        assert_eq!((out.width(), out.height()), (20, 14));
        assert_eq!(out.get_pixel(5, 5).0, [200, 100, 50]);
        assert_eq!(out.get_pixel(4, 5).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(14, 8).0, [200, 100, 50]);
        assert_eq!(out.get_pixel(15, 8).0, [0, 0, 0]);
    }
}
