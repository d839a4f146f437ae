//! Face + voice on virtual persons (`edgeid eval fused`).
//!
//! No dataset holds the face and the voice of the same people, so each
//! speaker is paired with a face identity (printed with the results) and
//! the two modalities are taken as independent, the usual protocol for
//! multimodal fusion on chimeric data:
//!
//! - genuine trials of a virtual person: each of its speaker's genuine
//!   voice trials with each genuine face trial of its identity;
//! - impostor trials: each voice trial of speaker A against speaker B's
//!   template with each face trial of A's identity against B's.
//!
//! Face trials are image pairs (one-image templates), or, with
//! `--face-templates N`, probes against the best of N enrolled images,
//! as the daemon scores a subject enrolled from several samples
//! ([`FaceScores::measure`]).
//!
//! Each modality's similarity is calibrated to a log-likelihood ratio by a
//! logistic regression on its own genuine / impostor scores (classes
//! weighted equally, so the logit is the LLR); the fused score is the sum.
//! The shipped rule adds each factor's floor (see `decision::factors`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::faces::{identity, similarity};
use super::metrics::{VerificationMetrics, det, tar_at_far, verification_metrics};
use super::voice::{Speaker, Trial};
use crate::decision::factors::FactorFusion;
use crate::infer::manifest::Metric;

/// Face trial scores grouped by identity.
#[derive(Debug, Default)]
pub struct FaceScores {
    pub identities: Vec<String>,
    /// Identity index → its genuine trial scores.
    pub genuine: BTreeMap<usize, Vec<f32>>,
    /// (probe identity, template identity) → impostor trial scores; with
    /// one-image templates each image pair is kept once, under (lower,
    /// higher), and serves both directions.
    pub impostor: BTreeMap<(usize, usize), Vec<f32>>,
    /// Images per face template (see [`FaceScores::measure`]).
    pub templates: usize,
}

impl FaceScores {
    /// The face trials of the images with a face descriptor.
    ///
    /// - `templates` ≤ 1: every image pair, each image being the one-image
    ///   template of the other;
    /// - `templates` = N ≥ 2: as the product enrols several samples and
    ///   scores a probe by the best of a subject's templates (the daemon's
    ///   1:1), each identity with more than N images is enrolled on its
    ///   first N by name; its other images are its genuine probes. Every
    ///   image is an impostor probe against every other identity's
    ///   template.
    pub fn measure(
        images: &[PathBuf],
        descriptors: &BTreeMap<&Path, &[f32]>,
        templates: usize,
    ) -> Self {
        let mut names: Vec<String> = images
            .iter()
            .filter_map(|p| Some(identity(p)?.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut by_identity: Vec<Vec<(&Path, &[f32])>> = vec![Vec::new(); names.len()];
        for p in images {
            let found = identity(p)
                .and_then(|who| who.to_str())
                .and_then(|who| index.get(who))
                .zip(descriptors.get(p.as_path()));
            if let Some((&who, &d)) = found {
                by_identity[who].push((p.as_path(), d));
            }
        }
        for faces in &mut by_identity {
            faces.sort_by_key(|(p, _)| *p);
        }
        let mut out = Self {
            identities: names.clone(),
            templates: templates.max(1),
            ..Self::default()
        };
        if out.templates == 1 {
            out.measure_image_pairs(&by_identity);
        } else {
            out.measure_templates(&by_identity);
        }
        out
    }

    fn measure_image_pairs(&mut self, by_identity: &[Vec<(&Path, &[f32])>]) {
        let faces: Vec<(usize, &[f32])> = by_identity
            .iter()
            .enumerate()
            .flat_map(|(who, f)| f.iter().map(move |&(_, d)| (who, d)))
            .collect();
        for (i, (a_id, a)) in faces.iter().enumerate() {
            for (b_id, b) in &faces[i + 1..] {
                let score = similarity(a, b, Metric::Cosine);
                if a_id == b_id {
                    self.genuine.entry(*a_id).or_default().push(score);
                } else {
                    let key = (*a_id.min(b_id), *a_id.max(b_id));
                    self.impostor.entry(key).or_default().push(score);
                }
            }
        }
    }

    fn measure_templates(&mut self, by_identity: &[Vec<(&Path, &[f32])>]) {
        let n = self.templates;
        let template = |who: usize| -> Option<&[(&Path, &[f32])]> {
            let faces = &by_identity[who];
            (faces.len() > n).then(|| &faces[..n])
        };
        let best = |probe: &[f32], t: &[(&Path, &[f32])]| {
            t.iter()
                .map(|(_, d)| similarity(probe, d, Metric::Cosine))
                .fold(f32::NEG_INFINITY, f32::max)
        };
        for (a_id, faces) in by_identity.iter().enumerate() {
            if let Some(t) = template(a_id) {
                let genuine = faces[n..].iter().map(|(_, probe)| best(probe, t));
                self.genuine.entry(a_id).or_default().extend(genuine);
            }
            // Any image of A, its enrolment images included, is an
            // impostor probe against someone else's template.
            for (_, probe) in faces {
                for b_id in (0..by_identity.len()).filter(|&b| b != a_id) {
                    if let Some(t) = template(b_id) {
                        let score = best(probe, t);
                        self.impostor.entry((a_id, b_id)).or_default().push(score);
                    }
                }
            }
        }
    }

    /// The impostor scores of identity `probe`'s faces against identity
    /// `template`'s template.
    pub fn impostor_of(&self, probe: usize, template: usize) -> &[f32] {
        let key = if self.templates == 1 {
            (probe.min(template), probe.max(template))
        } else {
            (probe, template)
        };
        self.impostor.get(&key).map_or(&[], Vec::as_slice)
    }

    fn all(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.genuine.values().flatten().copied().collect(),
            self.impostor.values().flatten().copied().collect(),
        )
    }
}

/// A logistic calibration: LLR = `slope` × score + `offset`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Calibration {
    pub slope: f64,
    pub offset: f64,
}

impl Calibration {
    pub fn llr(&self, score: f32) -> f64 {
        self.slope * f64::from(score) + self.offset
    }

    /// Fits by Newton's method on the finite scores, each class weighted
    /// to half the total (so the logit is a likelihood ratio, free of the
    /// trial counts' prior). `None` without both classes.
    pub fn fit(genuine: &[f32], impostor: &[f32]) -> Option<Self> {
        let finite = |s: &[f32]| -> Vec<f64> {
            s.iter()
                .filter(|v| v.is_finite())
                .map(|&v| f64::from(v))
                .collect()
        };
        let (g, i) = (finite(genuine), finite(impostor));
        if g.is_empty() || i.is_empty() {
            return None;
        }
        let (wg, wi) = (0.5 / g.len() as f64, 0.5 / i.len() as f64);
        let data: Vec<(f64, f64, f64)> = g
            .iter()
            .map(|&x| (x, 1.0, wg))
            .chain(i.iter().map(|&x| (x, 0.0, wi)))
            .collect();
        let (mut a, mut b) = (1.0f64, 0.0f64);
        // A tiny ridge keeps separable data (a perfect modality) finite.
        const RIDGE: f64 = 1e-4;
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (RIDGE * a, 0.0, RIDGE, 0.0, 0.0);
            for &(x, y, w) in &data {
                let p = 1.0 / (1.0 + (-(a * x + b)).exp());
                let r = w * (p - y);
                ga += r * x;
                gb += r;
                let h = w * p * (1.0 - p);
                haa += h * x * x;
                hab += h * x;
                hbb += h;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-10 {
                break;
            }
        }
        (a.is_finite() && b.is_finite() && a > 0.0).then_some(Self {
            slope: a,
            offset: b,
        })
    }
}

/// Face and voice scores of the fused trials.
#[derive(Debug, Default)]
pub struct FusedTrials {
    pub genuine: Vec<(f32, f32)>,
    pub impostor: Vec<(f32, f32)>,
}

/// Which face identity each speaker stands with: enrolled speakers (those
/// with genuine trials) take the identities with the most same-identity
/// pairs, the others the remaining identities in name order. `None` when
/// there are fewer identities than speakers.
pub fn pair_up(speakers: &[Speaker], voice: &[Trial], faces: &FaceScores) -> Option<Vec<usize>> {
    let enrolled: Vec<bool> = (0..speakers.len())
        .map(|s| voice.iter().any(|t| t.speaker == s && t.claimed == s))
        .collect();
    let mut rich: Vec<usize> = faces.genuine.keys().copied().collect();
    rich.sort_by_key(|&i| (std::cmp::Reverse(faces.genuine[&i].len()), i));
    let mut taken = vec![false; faces.identities.len()];
    let mut out = vec![usize::MAX; speakers.len()];
    let mut rich = rich.into_iter();
    for s in (0..speakers.len()).filter(|&s| enrolled[s]) {
        let id = rich.next()?;
        taken[id] = true;
        out[s] = id;
    }
    let mut rest = (0..faces.identities.len()).filter(|&i| !taken[i]);
    for s in (0..speakers.len()).filter(|&s| !enrolled[s]) {
        out[s] = rest.next()?;
    }
    Some(out)
}

/// The fused trials of the protocol above.
pub fn fused_trials(voice: &[Trial], identity_of: &[usize], faces: &FaceScores) -> FusedTrials {
    let mut out = FusedTrials::default();
    let empty = Vec::new();
    for t in voice {
        let (a, b) = (identity_of[t.speaker], identity_of[t.claimed]);
        if t.speaker == t.claimed {
            for &f in faces.genuine.get(&a).unwrap_or(&empty) {
                out.genuine.push((f, t.score));
            }
        } else {
            for &f in faces.impostor_of(a, b) {
                out.impostor.push((f, t.score));
            }
        }
    }
    out
}

/// Genuine and impostor scores of one system.
type Scores = (Vec<f32>, Vec<f32>);

/// One system's figures on the fused trials.
#[derive(Debug, Clone, Serialize)]
pub struct SystemFigures {
    pub name: String,
    pub eer: f64,
    pub tar_at_far_1e3: f64,
    pub threshold_at_far_1e3: f32,
    pub tar_at_far_1e2: f64,
}

impl SystemFigures {
    fn of(name: &str, genuine: &[f32], impostor: &[f32]) -> Self {
        let m: VerificationMetrics = verification_metrics(genuine, impostor, 0.0);
        let (tar3, thr3) = tar_at_far(genuine, impostor, 1e-3);
        let (tar2, _) = tar_at_far(genuine, impostor, 1e-2);
        Self {
            name: name.to_owned(),
            eer: m.eer,
            tar_at_far_1e3: tar3,
            threshold_at_far_1e3: thr3,
            tar_at_far_1e2: tar2,
        }
    }
}

/// Everything `edgeid eval fused` reports.
#[derive(Debug, Clone, Serialize)]
pub struct FusedReport {
    pub genuine_trials: usize,
    pub impostor_trials: usize,
    pub face_calibration: Calibration,
    pub voice_calibration: Calibration,
    /// Face only, voice only, the LLR sum, and the shipped rule (the sum
    /// with each factor above its floor).
    pub systems: Vec<SystemFigures>,
    pub floors: [f32; 2],
    /// The manifest's fusion at its own threshold, as the daemon decides.
    pub shipped: Option<ShippedFigures>,
    /// Each system's DET curve (FAR, FRR), for the plot.
    #[serde(skip)]
    pub det: Vec<(String, Vec<(f64, f64)>)>,
}

/// The shipped decision (the manifest's calibration, threshold and floors)
/// on these trials.
#[derive(Debug, Clone, Serialize)]
pub struct ShippedFigures {
    pub fusion: String,
    pub threshold: f32,
    pub false_accepts: usize,
    pub far: f64,
    pub false_rejects: usize,
    pub frr: f64,
}

impl ShippedFigures {
    fn of(fusion: &FactorFusion, trials: &FusedTrials) -> Self {
        let accepted = |t: &[(f32, f32)]| t.iter().filter(|(f, v)| fusion.judge(*f, *v).1).count();
        let false_accepts = accepted(&trials.impostor);
        let false_rejects = trials.genuine.len() - accepted(&trials.genuine);
        let rate = |n: usize, of: usize| n as f64 / of.max(1) as f64;
        Self {
            fusion: fusion.spec.id.clone(),
            threshold: fusion.threshold,
            false_accepts,
            far: rate(false_accepts, trials.impostor.len()),
            false_rejects,
            frr: rate(false_rejects, trials.genuine.len()),
        }
    }
}

/// Calibrates each modality on its own scores, then measures every system
/// on the fused trials. `floors`: the face and voice floors of the rule;
/// `shipped`: the manifest's fusion, measured at its own threshold.
pub fn evaluate(
    faces: &FaceScores,
    voice: &[Trial],
    trials: &FusedTrials,
    floors: [f32; 2],
    shipped: Option<&FactorFusion>,
) -> Option<FusedReport> {
    let (fg, fi) = faces.all();
    let vg: Vec<f32> = voice
        .iter()
        .filter(|t| t.speaker == t.claimed)
        .map(|t| t.score)
        .collect();
    let vi: Vec<f32> = voice
        .iter()
        .filter(|t| t.speaker != t.claimed)
        .map(|t| t.score)
        .collect();
    let (cf, cv) = (Calibration::fit(&fg, &fi)?, Calibration::fit(&vg, &vi)?);
    let sum = |(f, v): &(f32, f32)| (cf.llr(*f) + cv.llr(*v)) as f32;
    let rule = |p: &(f32, f32)| {
        if p.0 >= floors[0] && p.1 >= floors[1] {
            sum(p)
        } else {
            f32::NEG_INFINITY
        }
    };
    let column = |f: &dyn Fn(&(f32, f32)) -> f32| -> Scores {
        (
            trials.genuine.iter().map(f).collect(),
            trials.impostor.iter().map(f).collect(),
        )
    };
    let systems: Vec<(&str, Scores)> = vec![
        ("face", column(&|p| p.0)),
        ("voice", column(&|p| p.1)),
        ("face+voice LLR sum", column(&sum)),
        ("face+voice (shipped rule)", column(&rule)),
    ];
    let det = systems
        .iter()
        .map(|(name, (g, i))| ((*name).to_owned(), det(g, i)))
        .collect();
    Some(FusedReport {
        genuine_trials: trials.genuine.len(),
        impostor_trials: trials.impostor.len(),
        face_calibration: cf,
        voice_calibration: cv,
        systems: systems
            .iter()
            .map(|(name, (g, i))| SystemFigures::of(name, g, i))
            .collect(),
        floors,
        shipped: shipped.map(|f| ShippedFigures::of(f, trials)),
        det,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calibration_orders_scores_and_crosses_zero_between_the_classes() {
        let genuine: Vec<f32> = (0..200).map(|i| 0.8 + 0.001 * (i % 100) as f32).collect();
        let impostor: Vec<f32> = (0..2000).map(|i| 0.5 + 0.002 * (i % 200) as f32).collect();
        let c = Calibration::fit(&genuine, &impostor).expect("fit");
        assert!(c.slope > 0.0);
        assert!(c.llr(0.95) > 0.0 && c.llr(0.5) < 0.0, "{c:?}");
        assert!(Calibration::fit(&genuine, &[]).is_none());
    }

    #[test]
    fn trials_pair_voice_and_face_of_the_same_virtual_people() {
        let faces = FaceScores {
            identities: vec!["x".into(), "y".into()],
            genuine: BTreeMap::from([(0, vec![0.9, 0.8]), (1, vec![0.7])]),
            impostor: BTreeMap::from([((0, 1), vec![0.1, 0.2, 0.3])]),
            templates: 1,
        };
        let voice = [
            Trial {
                speaker: 0,
                claimed: 0,
                score: 0.95,
            },
            Trial {
                speaker: 1,
                claimed: 0,
                score: 0.4,
            },
        ];
        let speakers = vec![
            Speaker {
                id: "s0".into(),
                files: vec![],
            },
            Speaker {
                id: "s1".into(),
                files: vec![],
            },
        ];
        let who = pair_up(&speakers, &voice, &faces).expect("enough identities");
        assert_eq!(
            who,
            vec![0, 1],
            "the enrolled speaker takes the richest identity"
        );
        let t = fused_trials(&voice, &who, &faces);
        assert_eq!(t.genuine, vec![(0.9, 0.95), (0.8, 0.95)]);
        assert_eq!(t.impostor.len(), 3);
        assert!(t.impostor.iter().all(|&(_, v)| v == 0.4));
    }

    #[test]
    fn templates_of_several_images_score_each_probe_by_the_best_of_them() {
        let paths: Vec<PathBuf> = [
            "a/a_0001.jpg",
            "a/a_0002.jpg",
            "a/a_0003.jpg",
            "b/b_0001.jpg",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let vectors: [[f32; 2]; 4] = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
        let descriptors: BTreeMap<&Path, &[f32]> = paths
            .iter()
            .zip(&vectors)
            .map(|(p, v)| (p.as_path(), v.as_slice()))
            .collect();

        let two = FaceScores::measure(&paths, &descriptors, 2);
        // a is enrolled on a_0001 and a_0002; a_0003 is its one probe,
        // scored by the better of the two (0.8 against 0.6).
        assert_eq!(two.genuine, BTreeMap::from([(0, vec![0.8])]));
        // b has too few images for a template: its image probes a only.
        assert_eq!(two.impostor, BTreeMap::from([((1, 0), vec![0.8])]));
        assert_eq!(two.templates, 2);
        assert_eq!(two.impostor_of(1, 0), &[0.8]);
        assert!(two.impostor_of(0, 1).is_empty(), "b has no template");

        let one = FaceScores::measure(&paths, &descriptors, 1);
        assert_eq!(one.genuine[&0].len(), 3, "every same-identity image pair");
        assert_eq!(one.impostor_of(1, 0), one.impostor_of(0, 1));
        assert_eq!(one.impostor_of(0, 1).len(), 3);
    }

    #[test]
    fn the_shipped_rule_is_counted_at_its_own_threshold() {
        use crate::infer::manifest::{FusionSpec, Threshold};
        let spec = FusionSpec {
            id: "f+v".into(),
            models: vec!["f".into(), "v".into()],
            sha256: vec!["a".into(), "b".into()],
            mean: vec![0.9, 0.8],
            std: vec![1.0, 1.0],
            weights: vec![10.0, 10.0],
            fitted_on: "test".into(),
            thresholds: BTreeMap::from([(
                crate::decision::threshold::DEFAULT_OPERATING_POINT.to_owned(),
                Threshold {
                    value: 0.0,
                    measured_on: "test".into(),
                },
            )]),
        };
        let rule = FactorFusion::new(&spec, [0.85, 0.7]).expect("threshold");
        let trials = FusedTrials {
            // accepted; under the face floor; sum short.
            genuine: vec![(0.95, 0.9), (0.84, 0.99), (0.86, 0.71)],
            // accepted (a false accept); under the voice floor.
            impostor: vec![(0.9, 0.8), (1.0, 0.6)],
        };
        let s = ShippedFigures::of(&rule, &trials);
        assert_eq!((s.false_rejects, s.false_accepts), (2, 1));
        assert!((s.frr - 2.0 / 3.0).abs() < 1e-12 && (s.far - 0.5).abs() < 1e-12);
        assert_eq!(s.threshold, 0.0);
    }
}
