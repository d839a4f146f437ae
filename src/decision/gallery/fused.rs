//! Scoring over several embedders' galleries with a score fusion: a probe
//! is only ever compared with templates of the model that made it, per
//! gallery; the per-model cosines of a subject are then fused
//! (`FusionSpec::fuse`, z-normalised weighted sum) and compared with the
//! fusion's threshold. A subject with templates of only some of the models
//! (enrolled before the fusion) is scored with those alone, at that model's
//! own threshold, and flagged for re-enrolment.

use serde::Serialize;

use super::Gallery;
use crate::infer::manifest::FusionSpec;

/// One fused model: its gallery, the probe's descriptor by the same model
/// (`None` if the face lacks one), and its threshold when used alone.
pub struct FusedModel<'a> {
    pub gallery: &'a Gallery,
    pub probe: Option<&'a [f32]>,
    pub threshold: f32,
}

/// A subject's score under the fusion, or under one model when it has
/// templates of that model only.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FusedScore {
    pub subject: String,
    pub score: f32,
    pub threshold: f32,
    /// The models whose templates were compared (ids).
    pub models: Vec<String>,
    /// `score − threshold` in the fusion's z units (single-model scores
    /// divided by that model's impostor standard deviation), for ranking
    /// subjects scored different ways.
    pub margin: f32,
}

impl FusedScore {
    pub fn accepted(&self) -> bool {
        self.score >= self.threshold
    }

    /// Scored with fewer than all the fused models.
    pub fn partial(&self, fused: usize) -> bool {
        self.models.len() < fused
    }
}

/// `subject`'s score; `None` if no model has both a probe and templates.
pub fn score_subject(
    models: &[FusedModel<'_>],
    fusion: &FusionSpec,
    fused_threshold: f32,
    subject: &str,
) -> Option<FusedScore> {
    let scores: Vec<Option<f32>> = models
        .iter()
        .map(|m| m.gallery.score_subject(subject, m.probe?))
        .collect();
    if let Some(all) = scores.iter().copied().collect::<Option<Vec<f32>>>() {
        let score = fusion.fuse(&all)?;
        return Some(FusedScore {
            subject: subject.to_owned(),
            score,
            threshold: fused_threshold,
            models: models
                .iter()
                .map(|m| m.gallery.model_id().to_owned())
                .collect(),
            margin: score - fused_threshold,
        });
    }
    // Templates of one model only: that model's score at its own threshold
    // (the first such model; the primary comes first).
    let (i, score) = scores
        .iter()
        .enumerate()
        .find_map(|(i, s)| Some((i, (*s)?)))?;
    let std = fusion.std.get(i).copied().unwrap_or(1.0).max(f32::EPSILON);
    Some(FusedScore {
        subject: subject.to_owned(),
        score,
        threshold: models[i].threshold,
        models: vec![models[i].gallery.model_id().to_owned()],
        margin: (score - models[i].threshold) / std,
    })
}

/// 1:N: every subject of any gallery scored, best margin first, at most `k`.
pub fn top_subjects(
    models: &[FusedModel<'_>],
    fusion: &FusionSpec,
    fused_threshold: f32,
    k: usize,
) -> Vec<FusedScore> {
    let mut subjects: Vec<&str> = models
        .iter()
        .flat_map(|m| m.gallery.subject_ids())
        .collect();
    subjects.sort_unstable();
    subjects.dedup();
    let mut scored: Vec<FusedScore> = subjects
        .into_iter()
        .filter_map(|s| score_subject(models, fusion, fused_threshold, s))
        .collect();
    scored.sort_by(|a, b| b.margin.total_cmp(&a.margin));
    scored.truncate(k);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn fusion() -> FusionSpec {
        FusionSpec {
            id: "a+b".into(),
            models: vec!["a".into(), "b".into()],
            sha256: vec!["1".into(), "2".into()],
            mean: vec![0.0, 0.5],
            std: vec![0.1, 0.05],
            weights: vec![0.5, 0.5],
            fitted_on: "test".into(),
            thresholds: BTreeMap::new(),
        }
    }

    fn gallery(model: &str, rows: &[(&str, [f32; 2])]) -> Gallery {
        Gallery::from_vectors(
            model,
            2,
            rows.iter()
                .enumerate()
                .map(|(i, (s, v))| (*s, i as i64, v.as_slice())),
        )
        .expect("gallery")
    }

    #[test]
    fn both_models_fuse_and_one_model_alone_uses_its_own_threshold() {
        // "ann" enrolled under both models, "bob" under model a only.
        let a = gallery("a", &[("ann", [1.0, 0.0]), ("bob", [0.0, 1.0])]);
        let b = gallery("b", &[("ann", [0.6, 0.8])]);
        let models = [
            FusedModel {
                gallery: &a,
                probe: Some(&[1.0, 0.0]),
                threshold: 0.9,
            },
            FusedModel {
                gallery: &b,
                probe: Some(&[0.6, 0.8]),
                threshold: 0.7,
            },
        ];
        let f = fusion();
        let ann = score_subject(&models, &f, 3.0, "ann").expect("scored");
        // z: (1 − 0)/0.1 = 10 and (1 − 0.5)/0.05 = 10; weighted mean 10.
        assert!((ann.score - 10.0).abs() < 1e-4, "{}", ann.score);
        assert_eq!(ann.models, vec!["a", "b"]);
        assert!(ann.accepted() && !ann.partial(2));
        let bob = score_subject(&models, &f, 3.0, "bob").expect("scored by a");
        assert_eq!(
            bob.models,
            vec!["a"],
            "never compared with model b's templates"
        );
        assert_eq!((bob.score, bob.threshold), (0.0, 0.9));
        assert!(!bob.accepted() && bob.partial(2));
        assert!(score_subject(&models, &f, 3.0, "carl").is_none());
        let top = top_subjects(&models, &f, 3.0, 5);
        assert_eq!(
            top.iter().map(|s| s.subject.as_str()).collect::<Vec<_>>(),
            ["ann", "bob"]
        );
        // A probe without model b's descriptor: model a alone, its threshold.
        let models = [
            FusedModel {
                gallery: &a,
                probe: Some(&[1.0, 0.0]),
                threshold: 0.9,
            },
            FusedModel {
                gallery: &b,
                probe: None,
                threshold: 0.7,
            },
        ];
        let ann = score_subject(&models, &f, 3.0, "ann").expect("scored by a");
        assert_eq!((ann.score, ann.threshold, ann.models.len()), (1.0, 0.9, 1));
    }
}
