//! Fitting the score fusion of several embedders on an LFW fold, and a
//! cross-validated estimate of how the fitted fusion and its threshold do
//! on people they were not fitted on.
//!
//! Fit: each model's cosine scores over every cross-identity pair of the
//! images give its impostor mean and standard deviation (z-normalisation);
//! the fused score is the equal-weight sum of the z-scores (z-norm mean).
//! The threshold is then the all-pairs FAR 1e-3 point of the fused scores.
//!
//! Cross-validation: identities (sorted by name) are split into `folds`
//! groups by index modulo `folds`. For each group, the normalisation and
//! the FAR 1e-3 threshold are fitted on the images of the other groups'
//! identities only, and the protocol pairs whose first image belongs to the
//! group are decided with them. An impostor pair's second person may be in
//! the fitting set (only as an impostor-score sample, never its label).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::faces::Pair;
use super::metrics::{tar_at_far, wilson_interval};
use crate::decision::gallery::dot;
use crate::infer::manifest::FusionSpec;

/// Per model, each image's unit descriptor (images without a face absent).
pub type PerModel<'a> = Vec<BTreeMap<&'a Path, &'a [f32]>>;

/// All image pairs of `images` that every model has, as index pairs with
/// each model's cosine score and whether the identities match.
struct AllScores {
    identity: Vec<usize>,
    /// (i, j, genuine, per-model scores)
    pairs: Vec<(usize, usize, bool, Vec<f32>)>,
}

fn identity_name(path: &Path) -> String {
    path.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl AllScores {
    fn new(images: &[&Path], models: &PerModel<'_>) -> Self {
        let mut names: Vec<String> = images.iter().map(|p| identity_name(p)).collect();
        let identity_of = names.clone();
        names.sort();
        names.dedup();
        let identity = identity_of
            .iter()
            .map(|n| names.binary_search(n).unwrap_or(0))
            .collect();
        let mut pairs = Vec::new();
        for i in 0..images.len() {
            for j in i + 1..images.len() {
                let scores: Option<Vec<f32>> = models
                    .iter()
                    .map(|m| Some(dot(m.get(images[i])?, m.get(images[j])?)))
                    .collect();
                if let Some(scores) = scores {
                    pairs.push((i, j, identity_of[i] == identity_of[j], scores));
                }
            }
        }
        Self { identity, pairs }
    }

    /// Impostor mean and std per model over pairs whose both images pass `keep`.
    fn znorm(&self, models: usize, keep: impl Fn(usize) -> bool) -> (Vec<f32>, Vec<f32>) {
        let (mut sum, mut sq, mut n) = (vec![0f64; models], vec![0f64; models], 0usize);
        for (i, j, genuine, s) in &self.pairs {
            if *genuine || !keep(*i) || !keep(*j) {
                continue;
            }
            n += 1;
            for (k, v) in s.iter().enumerate() {
                sum[k] += *v as f64;
                sq[k] += (*v as f64) * (*v as f64);
            }
        }
        let n = n.max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sq
            .iter()
            .zip(&sum)
            .map(|(q, s)| ((q / n - (s / n) * (s / n)).max(1e-12)).sqrt() as f32)
            .collect();
        (mean, std)
    }

    /// The FAR 1e-3 threshold of fused scores over pairs passing `keep`.
    fn threshold(&self, fusion: &FusionSpec, keep: impl Fn(usize) -> bool) -> f32 {
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for (i, j, g, s) in &self.pairs {
            if keep(*i) && keep(*j) {
                let f = fusion.fuse(s).unwrap_or(f32::NEG_INFINITY);
                if *g {
                    genuine.push(f)
                } else {
                    impostor.push(f)
                }
            }
        }
        tar_at_far(&genuine, &impostor, 1e-3).1
    }
}

/// The fusion fitted on every image, named and labelled with the models.
pub fn fit(
    images: &[&Path],
    models: &PerModel<'_>,
    labels: &[(String, String)],
    fitted_on: &str,
) -> FusionSpec {
    let all = AllScores::new(images, models);
    spec(&all, labels, |_| true, fitted_on)
}

fn spec(
    all: &AllScores,
    labels: &[(String, String)],
    keep: impl Fn(usize) -> bool,
    fitted_on: &str,
) -> FusionSpec {
    let (mean, std) = all.znorm(labels.len(), keep);
    FusionSpec {
        id: labels
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        models: labels.iter().map(|(id, _)| id.clone()).collect(),
        sha256: labels.iter().map(|(_, sha)| sha.clone()).collect(),
        mean,
        std,
        weights: vec![1.0 / labels.len().max(1) as f32; labels.len()],
        fitted_on: fitted_on.to_owned(),
        thresholds: BTreeMap::new(),
    }
}

/// The cross-validated result of the fitting procedure.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    pub folds: usize,
    /// Protocol pairs decided with the normalisation and threshold fitted
    /// without their first person, and how many were right.
    pub pairs: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub accuracy_ci95: (f64, f64),
    pub false_accepts: usize,
    pub false_rejects: usize,
    /// The thresholds fitted per fold (their spread shows the estimate's noise).
    pub thresholds: Vec<f32>,
}

/// K-fold-by-identity cross-validation of [`fit`] + FAR 1e-3 threshold on
/// the protocol's `pairs`.
pub fn cross_validate(
    images: &[&Path],
    models: &PerModel<'_>,
    labels: &[(String, String)],
    pairs: &[Pair],
    folds: usize,
) -> CrossValidation {
    let all = AllScores::new(images, models);
    let index: BTreeMap<&Path, usize> = images.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let folds = folds.max(2);
    let fold_of = |image: usize| all.identity[image] % folds;
    let (mut n, mut correct, mut fa, mut fr, mut thresholds) = (0, 0, 0, 0, Vec::new());
    for k in 0..folds {
        let train = |i: usize| fold_of(i) != k;
        let mut fusion = spec(&all, labels, train, "");
        let t = all.threshold(&fusion, train);
        fusion.thresholds.clear();
        thresholds.push(t);
        for pair in pairs {
            let Some(&a) = index.get(pair.a.as_path()) else {
                continue;
            };
            if fold_of(a) != k {
                continue;
            }
            n += 1;
            let score = index.get(pair.b.as_path()).and_then(|&b| {
                let s: Option<Vec<f32>> = models
                    .iter()
                    .map(|m| Some(dot(m.get(images[a])?, m.get(images[b])?)))
                    .collect();
                fusion.fuse(&s?)
            });
            let accepted = score.is_some_and(|s| s >= t);
            match (accepted, pair.genuine) {
                (true, true) | (false, false) => correct += 1,
                (true, false) => fa += 1,
                (false, true) => fr += 1,
            }
        }
    }
    CrossValidation {
        folds,
        pairs: n,
        correct,
        accuracy: correct as f64 / n.max(1) as f64,
        accuracy_ci95: wilson_interval(correct, n, 1.96),
        false_accepts: fa,
        false_rejects: fr,
        thresholds,
    }
}

/// Protocol pair scores under a fusion (−∞ where an image lacks a face).
pub fn pair_scores(
    pairs: &[Pair],
    models: &PerModel<'_>,
    fusion: &FusionSpec,
) -> (Vec<f32>, Vec<f32>) {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for pair in pairs {
        let s: Option<Vec<f32>> = models
            .iter()
            .map(|m| Some(dot(m.get(pair.a.as_path())?, m.get(pair.b.as_path())?)))
            .collect();
        let score = s.and_then(|s| fusion.fuse(&s)).unwrap_or(f32::NEG_INFINITY);
        if pair.genuine {
            genuine.push(score)
        } else {
            impostor.push(score)
        }
    }
    (genuine, impostor)
}

/// Fused scores of every same- and cross-identity image pair.
pub fn all_pair_scores(
    images: &[PathBuf],
    models: &PerModel<'_>,
    fusion: &FusionSpec,
) -> (Vec<f32>, Vec<f32>) {
    let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let all = AllScores::new(&refs, models);
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for (_, _, g, s) in &all.pairs {
        let f = fusion.fuse(s).unwrap_or(f32::NEG_INFINITY);
        if *g {
            genuine.push(f)
        } else {
            impostor.push(f)
        }
    }
    (genuine, impostor)
}

/// Used by the tests: the metrics of fused protocol scores at `t`.
#[cfg(test)]
fn metrics_at(pairs: &[Pair], models: &PerModel<'_>, fusion: &FusionSpec, t: f32) -> f64 {
    let (g, i) = pair_scores(pairs, models, fusion);
    super::metrics::verification_metrics(&g, &i, t).accuracy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn fusion_normalises_each_model_by_its_impostors_and_separates_people() {
        // Four people, two images each; model 0 separates them well, model 1
        // is compressed (all scores near 1) but agrees.
        let images: Vec<PathBuf> = (0..4)
            .flat_map(|p| (1..=2).map(move |i| PathBuf::from(format!("P{p}/P{p}_000{i}.jpg"))))
            .collect();
        let axis = |p: usize, jitter: f32, squash: f32| {
            let mut v = vec![squash; 5];
            v[p] += 1.0;
            v[4] += jitter;
            unit(&v)
        };
        let m0: Vec<Vec<f32>> = (0..8)
            .map(|k| axis(k / 2, 0.1 * (k % 2) as f32, 0.0))
            .collect();
        let m1: Vec<Vec<f32>> = (0..8)
            .map(|k| axis(k / 2, 0.1 * (k % 2) as f32, 3.0))
            .collect();
        let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
        let models: PerModel<'_> = vec![
            refs.iter()
                .copied()
                .zip(m0.iter().map(Vec::as_slice))
                .collect(),
            refs.iter()
                .copied()
                .zip(m1.iter().map(Vec::as_slice))
                .collect(),
        ];
        let labels = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        let f = fit(&refs, &models, &labels, "test");
        assert_eq!(f.models, vec!["a", "b"]);
        assert!(f.mean[1] > f.mean[0], "model 1's impostors score higher");
        assert!(f.std.iter().all(|s| *s > 0.0));
        // z-scores: an impostor pair fuses to about 0, a genuine one far above.
        let s = |i: usize, j: usize| {
            f.fuse(&[dot(&m0[i], &m0[j]), dot(&m1[i], &m1[j])])
                .expect("two scores")
        };
        assert!(
            s(0, 1) > 3.0 && s(0, 2).abs() < 1.5,
            "{} {}",
            s(0, 1),
            s(0, 2)
        );
        assert!(f.fuse(&[1.0]).is_none(), "one score for two models");
        let pairs = vec![
            Pair {
                a: images[0].clone(),
                b: images[1].clone(),
                genuine: true,
            },
            Pair {
                a: images[2].clone(),
                b: images[4].clone(),
                genuine: false,
            },
        ];
        assert_eq!(metrics_at(&pairs, &models, &f, 2.0), 1.0);
        let cv = cross_validate(&refs, &models, &labels, &pairs, 2);
        assert_eq!(cv.pairs, 2);
        assert_eq!(cv.thresholds.len(), 2);
    }
}
