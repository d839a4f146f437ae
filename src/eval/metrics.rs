//! Verification metrics from genuine and impostor scores.
//!
//! Scores are similarities: higher means "same". A pair that could not be
//! scored (no face found) is kept as a score of −∞ and counted as an error,
//! never dropped, so a detector that misses hard faces cannot flatter the
//! figures.

use serde::Serialize;

/// One point of the ROC: at `threshold`, the false-accept rate and the
/// true-accept rate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RocPoint {
    pub threshold: f32,
    pub far: f64,
    pub tar: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationMetrics {
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Pairs with an image where no face was found (counted as errors).
    pub unscored_pairs: usize,
    pub threshold: f32,
    pub accuracy: f64,
    pub far: f64,
    pub frr: f64,
    pub best_accuracy: f64,
    pub best_threshold: f32,
    pub eer: f64,
    pub eer_threshold: f32,
    /// TAR at FAR ≤ 1e-2 and ≤ 1e-3, with the threshold that achieves it.
    pub tar_at_far_1e2: f64,
    pub threshold_at_far_1e2: f32,
    pub tar_at_far_1e3: f64,
    pub threshold_at_far_1e3: f32,
}

/// Fraction of `scores` at or above `t`.
fn rate_at(scores: &[f32], t: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len() as f64
}

/// The candidate thresholds: every distinct finite score, plus one above all.
fn candidates(genuine: &[f32], impostor: &[f32]) -> Vec<f32> {
    let mut t: Vec<f32> = genuine
        .iter()
        .chain(impostor)
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    t.sort_by(f32::total_cmp);
    t.dedup();
    let top = t.last().copied().unwrap_or(0.0);
    t.push(next_up(top));
    t
}

fn next_up(x: f32) -> f32 {
    if x.is_finite() {
        f32::from_bits(if x >= 0.0 {
            x.to_bits() + 1
        } else {
            x.to_bits() - 1
        })
    } else {
        x
    }
}

/// The ROC over all candidate thresholds, highest FAR first.
pub fn roc(genuine: &[f32], impostor: &[f32]) -> Vec<RocPoint> {
    candidates(genuine, impostor)
        .into_iter()
        .map(|t| RocPoint {
            threshold: t,
            far: rate_at(impostor, t),
            tar: rate_at(genuine, t),
        })
        .collect()
}

/// The lowest threshold whose FAR is at most `target`, and the TAR there.
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], target: f64) -> (f64, f32) {
    roc(genuine, impostor)
        .into_iter()
        .find(|p| p.far <= target)
        .map(|p| (p.tar, p.threshold))
        .unwrap_or((0.0, f32::INFINITY))
}

/// Accuracy at `t` where unscored pairs (−∞) are always wrong.
fn accuracy_at(genuine: &[f32], impostor: &[f32], t: f32) -> f64 {
    let total = genuine.len() + impostor.len();
    if total == 0 {
        return 0.0;
    }
    let right = genuine.iter().filter(|&&s| s.is_finite() && s >= t).count()
        + impostor.iter().filter(|&&s| s.is_finite() && s < t).count();
    right as f64 / total as f64
}

pub fn verification_metrics(
    genuine: &[f32],
    impostor: &[f32],
    threshold: f32,
) -> VerificationMetrics {
    let points = roc(genuine, impostor);
    let (best_threshold, best_accuracy) = points
        .iter()
        .map(|p| (p.threshold, accuracy_at(genuine, impostor, p.threshold)))
        .fold((threshold, f64::MIN), |best, cur| {
            if cur.1 > best.1 { cur } else { best }
        });
    // EER: where FAR and FRR cross; take the point minimising their gap.
    let (eer, eer_threshold) = points
        .iter()
        .map(|p| {
            let frr = 1.0 - p.tar;
            ((p.far - frr).abs(), (p.far + frr) / 2.0, p.threshold)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, eer, t)| (eer, t))
        .unwrap_or((1.0, threshold));
    let (tar_at_far_1e2, threshold_at_far_1e2) = tar_at_far(genuine, impostor, 1e-2);
    let (tar_at_far_1e3, threshold_at_far_1e3) = tar_at_far(genuine, impostor, 1e-3);
    VerificationMetrics {
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        unscored_pairs: genuine
            .iter()
            .chain(impostor)
            .filter(|s| !s.is_finite())
            .count(),
        threshold,
        accuracy: accuracy_at(genuine, impostor, threshold),
        far: rate_at(impostor, threshold),
        frr: 1.0 - rate_at(genuine, threshold),
        best_accuracy,
        best_threshold,
        eer,
        eer_threshold,
        tar_at_far_1e2,
        threshold_at_far_1e2,
        tar_at_far_1e3,
        threshold_at_far_1e3,
    }
}

/// Percentile (0..=100) of durations or scores by nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_separated_scores() {
        let g = [0.9, 0.8, 0.7];
        let i = [0.1, 0.2, 0.3];
        let m = verification_metrics(&g, &i, 0.5);
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.best_accuracy, 1.0);
        assert_eq!(m.eer, 0.0);
        assert_eq!(m.tar_at_far_1e3, 1.0);
        assert!(m.threshold_at_far_1e3 > 0.3 && m.threshold_at_far_1e3 <= 0.7);
    }

    #[test]
    fn overlapping_scores_and_unscored_pairs() {
        let g = [0.9, 0.4, f32::NEG_INFINITY, 0.8];
        let i = [0.1, 0.5, 0.2, 0.3];
        let m = verification_metrics(&g, &i, 0.45);
        // Right: 0.9, 0.8 (genuine) and 0.1, 0.2, 0.3 (impostor) = 5 of 8.
        assert!((m.accuracy - 5.0 / 8.0).abs() < 1e-9);
        assert_eq!(m.unscored_pairs, 1);
        assert!((m.far - 0.25).abs() < 1e-9);
        assert!((m.frr - 0.5).abs() < 1e-9);
        // FAR 0 needs a threshold above 0.5: TAR 2/4.
        assert!((m.tar_at_far_1e3 - 0.5).abs() < 1e-9);
        assert!(m.eer > 0.0 && m.eer < 0.5);
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
    }
}
