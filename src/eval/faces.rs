//! Face verification on the LFW pairs protocol: `DIR/<name>/<name>_NNNN.jpg`
//! and a `pairs.txt` whose lines are `name i j` (same person) or
//! `name1 i name2 j` (different people); a first line of one or two numbers
//! is the header.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::EvalError;
use super::faces_fusion::{self, CrossValidation, PerModel};
use super::metrics::{VerificationMetrics, percentile, tar_at_far, verification_metrics};
use super::runner::{ImageOutcome, analyse_all};
use crate::decision::gallery::dot;
use crate::infer::manifest::{FusionSpec, Metric};
use crate::pipeline::{EmbedderChoice, FacePipeline, FaceSelection, StageTimings, SubjectRule};
use crate::sources::load_image;
use crate::vision::align::align;
use crate::vision::embed::{Embedding, RawViews};
use crate::vision::geometry::BBox;

#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub a: PathBuf,
    pub b: PathBuf,
    pub genuine: bool,
}

fn image_path(dataset: &Path, name: &str, index: &str) -> Option<PathBuf> {
    let n: u32 = index.parse().ok()?;
    Some(dataset.join(name).join(format!("{name}_{n:04}.jpg")))
}

/// Parses a pairs file against a dataset directory.
pub fn read_pairs(dataset: &Path, pairs_file: &Path) -> Result<Vec<Pair>, EvalError> {
    let text = std::fs::read_to_string(pairs_file).map_err(|source| EvalError::Read {
        path: pairs_file.to_owned(),
        source,
    })?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |message: &str| EvalError::Pairs {
            path: pairs_file.to_owned(),
            line: i + 1,
            message: message.to_owned(),
        };
        let pair = match fields.as_slice() {
            [] => continue,
            [a] | [a, _] if i == 0 && a.parse::<u32>().is_ok() => continue,
            [name, x, y] => Pair {
                a: image_path(dataset, name, x)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                b: image_path(dataset, name, y)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                genuine: true,
            },
            [n1, x, n2, y] => Pair {
                a: image_path(dataset, n1, x)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                b: image_path(dataset, n2, y)
                    .ok_or_else(|| bad("image numbers must be integers"))?,
                genuine: false,
            },
            _ => return Err(bad("expected `name i j` or `name1 i name2 j`")),
        };
        pairs.push(pair);
    }
    if pairs.is_empty() {
        return Err(EvalError::Empty(pairs_file.to_owned()));
    }
    Ok(pairs)
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageStats {
    pub images: usize,
    /// Images where no face was found.
    pub no_face: Vec<PathBuf>,
    /// Images that could not be read or analysed, with the error.
    pub errors: Vec<(PathBuf, String)>,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaceEvalReport {
    pub metrics: VerificationMetrics,
    /// The FAR 1e-3 threshold from every cross-identity pair of the images.
    pub all_pairs: AllPairs,
    /// The protocol's pairs decided wrongly at the threshold.
    pub misclassified: Vec<PairScore>,
    pub images: ImageStats,
    pub threads: usize,
    #[serde(skip)]
    pub genuine_scores: Vec<f32>,
    #[serde(skip)]
    pub impostor_scores: Vec<f32>,
}

/// Embeds every image the pairs reference, scores the pairs, and computes
/// the metrics at `threshold`.
pub fn evaluate(
    pipeline: &FacePipeline,
    pairs: &[Pair],
    threshold: f32,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> FaceEvalReport {
    let images = unique_images(pairs);
    let outcomes = analyse_all(pipeline, &images, threads, progress);
    let embeddings: BTreeMap<&Path, &[f32]> = outcomes
        .iter()
        .filter_map(|(path, o)| {
            let face = o.analysis.as_ref().ok()?.face.as_ref()?;
            Some((path.as_path(), face.embedding.as_slice()))
        })
        .collect();
    // The pipeline's embeddings are unit vectors: cosine is their dot product.
    let (genuine, impostor) = pair_scores(pairs, &embeddings, Metric::Cosine);
    FaceEvalReport {
        metrics: verification_metrics(&genuine, &impostor, threshold),
        all_pairs: AllPairs::measure(&images, &embeddings, Metric::Cosine, Some(threshold)),
        misclassified: misclassified(pairs, &genuine, &impostor, threshold),
        images: image_stats(&outcomes),
        threads,
        genuine_scores: genuine,
        impostor_scores: impostor,
    }
}

/// The score of two descriptors under `metric`, as a similarity (higher =
/// more alike): the dot product of unit vectors for cosine, the negated
/// distance for Euclidean.
pub fn similarity(a: &[f32], b: &[f32], metric: Metric) -> f32 {
    match metric {
        Metric::Cosine => dot(a, b),
        Metric::Euclidean => -a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt(),
    }
}

/// Genuine and impostor scores of the protocol's pairs; a pair with an
/// image without a face scores −∞ (always an error).
fn pair_scores(
    pairs: &[Pair],
    descriptors: &BTreeMap<&Path, &[f32]>,
    metric: Metric,
) -> (Vec<f32>, Vec<f32>) {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for pair in pairs {
        let score = match (
            descriptors.get(pair.a.as_path()),
            descriptors.get(pair.b.as_path()),
        ) {
            (Some(a), Some(b)) => similarity(a, b, metric),
            _ => f32::NEG_INFINITY,
        };
        if pair.genuine {
            genuine.push(score)
        } else {
            impostor.push(score)
        }
    }
    (genuine, impostor)
}

/// One of the protocol's pairs and its score.
#[derive(Debug, Clone, Serialize)]
pub struct PairScore {
    pub a: PathBuf,
    pub b: PathBuf,
    pub genuine: bool,
    /// −∞ when an image had no face.
    pub score: f32,
}

/// The pairs decided wrongly at `threshold`, given the scores in the order
/// [`pair_scores`] returns them.
fn misclassified(
    pairs: &[Pair],
    genuine: &[f32],
    impostor: &[f32],
    threshold: f32,
) -> Vec<PairScore> {
    let (mut g, mut i) = (genuine.iter(), impostor.iter());
    pairs
        .iter()
        .filter_map(|p| {
            let score = *if p.genuine { g.next() } else { i.next() }?;
            let accepted = score.is_finite() && score >= threshold;
            (accepted != p.genuine).then(|| PairScore {
                a: p.a.clone(),
                b: p.b.clone(),
                genuine: p.genuine,
                score,
            })
        })
        .collect()
}

/// The identity of an LFW image: its folder's name.
pub fn identity(path: &Path) -> Option<&std::ffi::OsStr> {
    path.parent()?.file_name()
}

/// The operating point measured on every pair of the evaluated images
/// rather than on the protocol's few hundred impostor pairs, which cannot
/// resolve a FAR below one in their number.
#[derive(Debug, Clone, Serialize)]
pub struct AllPairs {
    /// Same-identity and cross-identity image pairs (images with a face).
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// The smallest FAR step this many impostor pairs can show (1 / count).
    pub far_resolution: f64,
    /// The lowest threshold at which at most 1e-3 of the cross-identity
    /// pairs are accepted, and the TAR over the same-identity pairs there.
    pub threshold_at_far_1e3: f32,
    pub tar_at_far_1e3: f64,
    /// The same at FAR 1e-2.
    pub threshold_at_far_1e2: f32,
    pub tar_at_far_1e2: f64,
    /// At the threshold evaluated (the one given, else `threshold_at_far_1e3`):
    /// the cross-identity pairs accepted, their fraction, and the fraction
    /// of same-identity pairs accepted.
    pub threshold: f32,
    pub impostors_accepted: usize,
    pub far_at_threshold: f64,
    pub tar_at_threshold: f64,
}

impl AllPairs {
    pub fn measure(
        images: &[PathBuf],
        descriptors: &BTreeMap<&Path, &[f32]>,
        metric: Metric,
        threshold: Option<f32>,
    ) -> Self {
        let faces: Vec<(&std::ffi::OsStr, &[f32])> = images
            .iter()
            .filter_map(|p| Some((identity(p)?, *descriptors.get(p.as_path())?)))
            .collect();
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for (i, (who, a)) in faces.iter().enumerate() {
            for (other, b) in &faces[i + 1..] {
                let score = similarity(a, b, metric);
                if who == other {
                    genuine.push(score);
                } else {
                    impostor.push(score);
                }
            }
        }
        Self::from_scores(&genuine, &impostor, threshold)
    }

    /// The figures of same-identity (`genuine`) and cross-identity
    /// (`impostor`) image-pair scores.
    pub fn from_scores(genuine: &[f32], impostor: &[f32], threshold: Option<f32>) -> Self {
        let (genuine, impostor) = (genuine.to_vec(), impostor.to_vec());
        let (tar, threshold_at_far_1e3) = tar_at_far(&genuine, &impostor, 1e-3);
        let (tar_at_far_1e2, threshold_at_far_1e2) = tar_at_far(&genuine, &impostor, 1e-2);
        let threshold = threshold.unwrap_or(threshold_at_far_1e3);
        let accepted = |scores: &[f32]| scores.iter().filter(|&&s| s >= threshold).count();
        let impostors_accepted = accepted(&impostor);
        Self {
            genuine_pairs: genuine.len(),
            impostor_pairs: impostor.len(),
            far_resolution: 1.0 / impostor.len().max(1) as f64,
            threshold_at_far_1e3,
            tar_at_far_1e3: tar,
            threshold_at_far_1e2,
            tar_at_far_1e2,
            threshold,
            impostors_accepted,
            far_at_threshold: impostors_accepted as f64 / impostor.len().max(1) as f64,
            tar_at_threshold: accepted(&genuine) as f64 / genuine.len().max(1) as f64,
        }
    }
}

/// One configuration of `edgeid eval faces --compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Variant {
    pub embedder: EmbedderChoice,
    pub selection: SubjectRule,
    pub flip: bool,
    pub metric: Metric,
}

impl Variant {
    /// `dlib+central+flip+cosine`.
    pub fn label(&self) -> String {
        let flip = if self.flip { "flip" } else { "noflip" };
        format!(
            "{}+{}+{flip}+{}",
            self.embedder, self.selection, self.metric
        )
    }

    /// The face's descriptor: the raw output (with flip, the mean of both
    /// views), L2-normalised for cosine; `None` if it cannot be normalised.
    pub fn descriptor(&self, views: &RawViews) -> Option<Vec<f32>> {
        let raw = if self.flip {
            views.mean()
        } else {
            views.plain.clone()
        };
        match self.metric {
            Metric::Cosine => Embedding::normalised(raw).map(|e| e.0),
            Metric::Euclidean => raw.iter().all(|x| x.is_finite()).then_some(raw),
        }
    }
}

impl FromStr for Variant {
    type Err = String;
    /// `+`-separated words in any order: an embedder, a selection rule,
    /// `flip` or `noflip`, `cosine` or `euclidean`; each defaults to dlib,
    /// central, flip, cosine.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut v = Variant {
            embedder: EmbedderChoice::Dlib,
            selection: SubjectRule::Central,
            flip: true,
            metric: Metric::Cosine,
        };
        for word in s.split('+').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "flip" => v.flip = true,
                "noflip" => v.flip = false,
                "cosine" => v.metric = Metric::Cosine,
                "euclidean" => v.metric = Metric::Euclidean,
                "dlib" | "mobilefacenet" | "fused" => v.embedder = word.parse()?,
                other => v.selection = other.parse().map_err(|_| {
                    format!(
                        "unknown word {other:?} in configuration {s:?}: use dlib, mobilefacenet or \
                             fused; largest, central or large_and_central; flip or noflip; cosine or \
                             euclidean"
                    )
                })?,
            }
        }
        Ok(v)
    }
}

/// The configurations `--compare` runs when given none: dlib under every
/// selection rule with and without flip (cosine), dlib Euclidean, and
/// MobileFaceNet and the fusion on the LFW subject, with and without flip.
pub fn default_variants() -> Vec<Variant> {
    let mut out = Vec::new();
    let v = |embedder, selection, flip, metric| Variant {
        embedder,
        selection,
        flip,
        metric,
    };
    for selection in SubjectRule::ALL {
        for flip in [false, true] {
            out.push(v(EmbedderChoice::Dlib, selection, flip, Metric::Cosine));
        }
    }
    for flip in [false, true] {
        out.push(v(
            EmbedderChoice::Dlib,
            SubjectRule::Central,
            flip,
            Metric::Euclidean,
        ));
    }
    for embedder in [EmbedderChoice::Mobilefacenet, EmbedderChoice::Fused] {
        for flip in [false, true] {
            out.push(v(embedder, SubjectRule::Central, flip, Metric::Cosine));
        }
    }
    out
}

/// One configuration's figures in a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    pub variant: Variant,
    pub label: String,
    /// At the threshold given for its metric (the shipped one), else at its
    /// own all-pairs FAR 1e-3 threshold.
    pub metrics: VerificationMetrics,
    pub all_pairs: AllPairs,
    /// Accuracy, FAR and FRR of the protocol's pairs at the all-pairs
    /// FAR 1e-3 threshold.
    pub at_all_pairs_threshold: VerificationMetrics,
    /// Fused variants: the fusion fitted on these images (normalisation,
    /// weights and its all-pairs FAR 1e-3 threshold) and its
    /// cross-validated accuracy.
    pub fusion: Option<FusionSpec>,
    pub cross_validation: Option<CrossValidation>,
    #[serde(skip)]
    pub genuine_scores: Vec<f32>,
    #[serde(skip)]
    pub impostor_scores: Vec<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub variants: Vec<VariantReport>,
    pub images: usize,
    /// Images without a face per selection rule, and unreadable ones.
    pub no_face: BTreeMap<String, usize>,
    pub errors: Vec<(PathBuf, String)>,
    /// Each image's raw views of its subject per rule (in `rules`' order)
    /// per loaded model (in `models`' order), for fitting elsewhere.
    #[serde(skip)]
    pub views: RawViewTable,
}

/// What `--views-out` writes: the pass's raw embeddings, unnormalised.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RawViewTable {
    pub rules: Vec<String>,
    pub models: Vec<String>,
    /// image -> per rule -> per model; null without a face.
    pub images: BTreeMap<PathBuf, Vec<Option<Vec<ViewPair>>>>,
}

/// A subject's raw embedding by one model: (as is, mirrored).
pub type ViewPair = (Vec<f32>, Vec<f32>);

/// Each image's raw views of the subject, per selection rule, per embedder
/// of the pipeline.
type ImageViews = Result<Vec<Option<Vec<RawViews>>>, String>;

/// Runs every configuration over the pairs in one pass: each image is
/// decoded and detected once, each distinct subject (per rule) aligned and
/// embedded once with its mirror; flip and metric are then free.
/// `shipped` gives a variant's decision threshold (the manifest's, when it
/// was measured for that configuration); otherwise its own all-pairs FAR
/// 1e-3 threshold is used. The pipeline must run every embedder a variant
/// names (load it with `EmbedderChoice::Fused`).
pub fn compare(
    pipeline: &FacePipeline,
    pairs: &[Pair],
    variants: &[Variant],
    shipped: &dyn Fn(&Variant) -> Option<f32>,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> CompareReport {
    let images = unique_images(pairs);
    let mut rules: Vec<SubjectRule> = variants.iter().map(|v| v.selection).collect();
    rules.sort_by_key(|r| r.name());
    rules.dedup();
    let views = parallel_map(&images, threads, |path| {
        let out = subject_views(pipeline, path, &rules);
        progress();
        out
    });
    let mut no_face = BTreeMap::new();
    let mut errors = Vec::new();
    for (path, v) in images.iter().zip(&views) {
        match v {
            Ok(per_rule) => {
                for (rule, view) in rules.iter().zip(per_rule) {
                    *no_face.entry(rule.name().to_owned()).or_insert(0) +=
                        usize::from(view.is_none());
                }
            }
            Err(e) => errors.push((path.clone(), e.clone())),
        }
    }
    let loaded: Vec<(String, String)> = pipeline
        .embedders()
        .iter()
        .map(|e| {
            (
                e.embedder.model_id().to_owned(),
                e.embedder.model_sha256().to_owned(),
            )
        })
        .collect();
    let reports = variants
        .iter()
        .filter_map(|variant| {
            let rule = rules
                .iter()
                .position(|r| *r == variant.selection)
                .unwrap_or(0);
            let models: Vec<usize> = variant
                .embedder
                .model_ids()
                .iter()
                .map(|id| loaded.iter().position(|(m, _)| m == id))
                .collect::<Option<_>>()?;
            let descriptors: Vec<Vec<(&Path, Vec<f32>)>> = models
                .iter()
                .map(|&m| {
                    images
                        .iter()
                        .zip(&views)
                        .filter_map(|(path, v)| {
                            let view = v.as_ref().ok()?.get(rule)?.as_ref()?.get(m)?;
                            Some((path.as_path(), variant.descriptor(view)?))
                        })
                        .collect()
                })
                .collect();
            let per_model: PerModel<'_> = descriptors
                .iter()
                .map(|d| d.iter().map(|(p, v)| (*p, v.as_slice())).collect())
                .collect();
            Some(score_variant(
                *variant,
                pairs,
                &images,
                &per_model,
                &models
                    .iter()
                    .map(|&m| loaded[m].clone())
                    .collect::<Vec<_>>(),
                shipped(variant),
            ))
        })
        .collect();
    let table = RawViewTable {
        rules: rules.iter().map(|r| r.name().to_owned()).collect(),
        models: loaded.iter().map(|(id, _)| id.clone()).collect(),
        images: images
            .iter()
            .zip(&views)
            .filter_map(|(path, v)| {
                let per_rule = v.as_ref().ok()?;
                let per_rule = per_rule
                    .iter()
                    .map(|r| {
                        r.as_ref().map(|models| {
                            models
                                .iter()
                                .map(|m| (m.plain.clone(), m.mirrored.clone()))
                                .collect()
                        })
                    })
                    .collect();
                Some((path.clone(), per_rule))
            })
            .collect(),
    };
    CompareReport {
        variants: reports,
        images: images.len(),
        no_face,
        errors,
        views: table,
    }
}

/// One variant's figures from its descriptors (one map per model).
fn score_variant(
    variant: Variant,
    pairs: &[Pair],
    images: &[PathBuf],
    per_model: &PerModel<'_>,
    labels: &[(String, String)],
    given: Option<f32>,
) -> VariantReport {
    let (genuine, impostor, all_pairs, fusion, cross_validation) = if per_model.len() == 1 {
        let (g, i) = pair_scores(pairs, &per_model[0], variant.metric);
        let all = AllPairs::measure(images, &per_model[0], variant.metric, given);
        (g, i, all, None, None)
    } else {
        let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
        let fitted_on = format!(
            "{} images of {} ({} pairs file), subject {}, flip_tta {}: z-norm of each model's cosine by \
             its cross-identity pairs, equal weights",
            images.len(),
            images
                .first()
                .and_then(|p| p.parent()?.parent())
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            pairs.len(),
            variant.selection,
            if variant.flip { "on" } else { "off" },
        );
        let mut fusion = faces_fusion::fit(&refs, per_model, labels, &fitted_on);
        let cv = faces_fusion::cross_validate(&refs, per_model, labels, pairs, 10);
        let (g, i) = faces_fusion::pair_scores(pairs, per_model, &fusion);
        let (ag, ai) = faces_fusion::all_pair_scores(images, per_model, &fusion);
        let all = AllPairs::from_scores(&ag, &ai, given);
        fusion.thresholds.insert(
            "far_1e-3".into(),
            crate::infer::manifest::Threshold {
                value: all.threshold_at_far_1e3,
                measured_on: format!(
                    "FAR 1e-3 of all {} cross-identity image pairs (resolution {:.1e}), TAR {:.2} % of the {} \
                     same-identity pairs",
                    all.impostor_pairs,
                    all.far_resolution,
                    100.0 * all.tar_at_far_1e3,
                    all.genuine_pairs
                ),
            },
        );
        (g, i, all, Some(fusion), Some(cv))
    };
    let t = all_pairs.threshold;
    VariantReport {
        variant,
        label: variant.label(),
        metrics: verification_metrics(&genuine, &impostor, t),
        at_all_pairs_threshold: verification_metrics(
            &genuine,
            &impostor,
            all_pairs.threshold_at_far_1e3,
        ),
        all_pairs,
        fusion,
        cross_validation,
        genuine_scores: genuine,
        impostor_scores: impostor,
    }
}

pub fn unique_images(pairs: &[Pair]) -> Vec<PathBuf> {
    pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The subject's raw views for each rule; rules that choose the same face
/// share one embedding.
fn subject_views(pipeline: &FacePipeline, path: &Path, rules: &[SubjectRule]) -> ImageViews {
    let image = load_image(path).map_err(|e| e.to_string())?;
    let detections = pipeline
        .detector()
        .detect(&image)
        .map_err(|e| e.to_string())?;
    let mut timings = StageTimings::default();
    let mut done: Vec<(BBox, Vec<RawViews>)> = Vec::new();
    let mut out = Vec::with_capacity(rules.len());
    for &rule in rules {
        let selection = FaceSelection {
            rule,
            ..pipeline.config().faces
        };
        let subject = pipeline
            .subject(&image, detections.clone(), &selection, &mut timings)
            .map_err(|e| e.to_string())?;
        let Some((detection, mesh)) = subject.face else {
            out.push(None);
            continue;
        };
        if let Some((_, views)) = done.iter().find(|(b, _)| *b == detection.bbox) {
            out.push(Some(views.clone()));
            continue;
        }
        let views = pipeline
            .embedders()
            .iter()
            .map(|e| align(&image, &mesh, &e.template).and_then(|chip| e.embedder.raw_views(&chip)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        done.push((detection.bbox, views.clone()));
        out.push(Some(views));
    }
    Ok(out)
}

/// `f` over `items` on `threads` threads (interleaved), results in order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    let mut slots: Vec<Option<R>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let f = &f;
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(k)
                        .step_by(threads)
                        .map(|(i, item)| (i, f(item)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
        for worker in workers {
            // A worker panics only if `f` does; pass the panic on.
            let done = worker
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            for (i, r) in done {
                slots[i] = Some(r);
            }
        }
        slots
    });
    slots.iter_mut().filter_map(Option::take).collect()
}

fn image_stats(outcomes: &std::collections::BTreeMap<PathBuf, ImageOutcome>) -> ImageStats {
    let mut times: Vec<f64> = outcomes.values().map(|o| o.seconds * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let mut no_face = Vec::new();
    let mut errors = Vec::new();
    for (path, o) in outcomes {
        match &o.analysis {
            Ok(a) if a.face.is_none() => no_face.push(path.clone()),
            Ok(_) => {}
            Err(e) => errors.push((path.clone(), e.clone())),
        }
    }
    ImageStats {
        images: outcomes.len(),
        no_face,
        errors,
        mean_ms: times.iter().sum::<f64>() / times.len().max(1) as f64,
        p50_ms: percentile(&times, 50.0),
        p99_ms: percentile(&times, 99.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lfw_pairs_with_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pairs.txt");
        std::fs::write(&file, "1\t2\nAbel_Pacheco\t1\t4\nA_B\t1\tC_D\t12\n").expect("write");
        let pairs = read_pairs(Path::new("/data"), &file).expect("parse");
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            pairs[0].a,
            Path::new("/data/Abel_Pacheco/Abel_Pacheco_0001.jpg")
        );
        assert_eq!(
            pairs[0].b,
            Path::new("/data/Abel_Pacheco/Abel_Pacheco_0004.jpg")
        );
        assert!(pairs[0].genuine);
        assert_eq!(pairs[1].b, Path::new("/data/C_D/C_D_0012.jpg"));
        assert!(!pairs[1].genuine);
    }

    #[test]
    fn configurations_parse_from_words_in_any_order() {
        let v: Variant = "noflip+largest".parse().expect("parses");
        assert_eq!(
            (v.selection, v.flip, v.metric),
            (SubjectRule::Largest, false, Metric::Cosine)
        );
        let v: Variant = "euclidean".parse().expect("parses");
        assert_eq!(
            (v.selection, v.flip, v.metric),
            (SubjectRule::Central, true, Metric::Euclidean)
        );
        assert_eq!(v.label(), "dlib+central+flip+euclidean");
        assert!("central+mirror".parse::<Variant>().is_err());
        assert_eq!(default_variants().len(), 12);
        let v: Variant = "fused+noflip".parse().expect("parses");
        assert_eq!(v.embedder, EmbedderChoice::Fused);
        assert_eq!(v.label(), "fused+central+noflip+cosine");
    }

    #[test]
    fn descriptors_follow_flip_and_metric() {
        let views = RawViews {
            plain: vec![3.0, 0.0],
            mirrored: vec![1.0, 2.0],
        };
        let v = |s: &str| s.parse::<Variant>().expect("parses");
        assert_eq!(
            v("noflip+euclidean").descriptor(&views),
            Some(vec![3.0, 0.0])
        );
        assert_eq!(v("flip+euclidean").descriptor(&views), Some(vec![2.0, 1.0]));
        let unit = v("flip+cosine").descriptor(&views).expect("non-zero");
        assert!((similarity(&unit, &unit, Metric::Cosine) - 1.0).abs() < 1e-6);
        assert_eq!(
            similarity(&[0.0, 3.0], &[4.0, 0.0], Metric::Euclidean),
            -5.0
        );
    }

    #[test]
    fn all_pairs_split_by_the_identity_folder() {
        let images: Vec<PathBuf> = [
            "A/A_0001.jpg",
            "A/A_0002.jpg",
            "B/B_0001.jpg",
            "C/C_0001.jpg",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let vectors: [&[f32]; 4] = [&[1.0, 0.0], &[0.8, 0.6], &[0.0, 1.0], &[0.6, 0.8]];
        let descriptors: BTreeMap<&Path, &[f32]> =
            images.iter().map(PathBuf::as_path).zip(vectors).collect();
        let all = AllPairs::measure(&images, &descriptors, Metric::Cosine, Some(0.9));
        assert_eq!((all.genuine_pairs, all.impostor_pairs), (1, 5));
        // Impostors: 0, 0.6, 0.6, 0.96, 0.8: FAR 1e-3 needs a threshold above 0.96.
        assert!(
            all.threshold_at_far_1e3 > 0.96,
            "{}",
            all.threshold_at_far_1e3
        );
        assert_eq!(all.tar_at_far_1e3, 0.0, "the genuine pair scores 0.8");
        assert_eq!(all.impostors_accepted, 1);
        assert!((all.far_at_threshold - 0.2).abs() < 1e-12);
        assert!((all.far_resolution - 0.2).abs() < 1e-12);
    }

    #[test]
    fn rejects_malformed_lines_naming_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pairs.txt");
        std::fs::write(&file, "1\t300\nname\tx\t3\n").expect("write");
        let err = read_pairs(Path::new("/data"), &file).expect_err("must fail");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
