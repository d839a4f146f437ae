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
    /// 95 % Wilson score interval of `accuracy` over the pairs.
    pub accuracy_ci95: (f64, f64),
    pub far: f64,
    pub frr: f64,
    pub best_accuracy: f64,
    /// 95 % Wilson interval of `best_accuracy` (optimistic: the threshold
    /// was chosen on the same pairs).
    pub best_accuracy_ci95: (f64, f64),
    pub best_threshold: f32,
    pub eer: f64,
    pub eer_threshold: f32,
    /// TAR at FAR ≤ 1e-2 and ≤ 1e-3, with the threshold that achieves it.
    pub tar_at_far_1e2: f64,
    pub threshold_at_far_1e2: f32,
    pub tar_at_far_1e3: f64,
    pub threshold_at_far_1e3: f32,
}

/// Scores sorted ascending, for counting how many reach a threshold in
/// O(log n) (the all-pairs sets hold hundreds of thousands of scores).
struct Sorted(Vec<f32>);

impl Sorted {
    fn new(scores: &[f32]) -> Self {
        let mut v = scores.to_vec();
        v.sort_by(f32::total_cmp);
        Self(v)
    }

    /// How many scores are ≥ `t` (−∞ never is, for a finite `t`).
    fn at_or_above(&self, t: f32) -> usize {
        self.0.len() - self.0.partition_point(|&s| s < t)
    }

    /// Fraction of scores at or above `t`.
    fn rate(&self, t: f32) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.at_or_above(t) as f64 / self.0.len() as f64
    }

    /// Finite scores below `t`.
    fn finite_below(&self, t: f32) -> usize {
        let below = self.0.partition_point(|&s| s < t);
        below - self.0[..below].partition_point(|s| !s.is_finite())
    }
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
    let (g, i) = (Sorted::new(genuine), Sorted::new(impostor));
    candidates(genuine, impostor)
        .into_iter()
        .map(|t| RocPoint {
            threshold: t,
            far: i.rate(t),
            tar: g.rate(t),
        })
        .collect()
}

/// The DET curve: (FAR, FRR) over all candidate thresholds.
pub fn det(genuine: &[f32], impostor: &[f32]) -> Vec<(f64, f64)> {
    roc(genuine, impostor)
        .into_iter()
        .map(|p| (p.far, 1.0 - p.tar))
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
fn accuracy_at(genuine: &Sorted, impostor: &Sorted, t: f32) -> f64 {
    let total = genuine.0.len() + impostor.0.len();
    if total == 0 {
        return 0.0;
    }
    // A genuine −∞ is never ≥ a finite t; the top candidate is finite.
    let right = genuine.at_or_above(t) + impostor.finite_below(t);
    right as f64 / total as f64
}

/// The Wilson score interval of a proportion, `successes` of `n`, at
/// normal quantile `z` (1.96 for 95 %); (0, 1) for `n = 0`.
pub fn wilson_interval(successes: usize, n: usize, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The 95 % Wilson interval of an accuracy measured on `n` pairs.
pub fn accuracy_ci95(accuracy: f64, n: usize) -> (f64, f64) {
    wilson_interval((accuracy * n as f64).round() as usize, n, 1.959_964)
}

pub fn verification_metrics(
    genuine: &[f32],
    impostor: &[f32],
    threshold: f32,
) -> VerificationMetrics {
    let points = roc(genuine, impostor);
    let (g, i) = (Sorted::new(genuine), Sorted::new(impostor));
    let (best_threshold, best_accuracy) = points
        .iter()
        .map(|p| (p.threshold, accuracy_at(&g, &i, p.threshold)))
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
    let at_far = |target: f64| {
        points
            .iter()
            .find(|p| p.far <= target)
            .map(|p| (p.tar, p.threshold))
            .unwrap_or((0.0, f32::INFINITY))
    };
    let (tar_at_far_1e2, threshold_at_far_1e2) = at_far(1e-2);
    let (tar_at_far_1e3, threshold_at_far_1e3) = at_far(1e-3);
    let pairs = genuine.len() + impostor.len();
    let accuracy = accuracy_at(&g, &i, threshold);
    VerificationMetrics {
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        unscored_pairs: genuine
            .iter()
            .chain(impostor)
            .filter(|s| !s.is_finite())
            .count(),
        threshold,
        accuracy,
        accuracy_ci95: accuracy_ci95(accuracy, pairs),
        far: i.rate(threshold),
        frr: 1.0 - g.rate(threshold),
        best_accuracy,
        best_accuracy_ci95: accuracy_ci95(best_accuracy, pairs),
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
    fn wilson_interval_matches_the_textbook_values() {
        // 595 of 600 (99.17 %): the interval is asymmetric, wider below.
        let (lo, hi) = wilson_interval(595, 600, 1.959_964);
        assert!((lo - 0.98066).abs() < 5e-5, "{lo}");
        assert!((hi - 0.99644).abs() < 5e-5, "{hi}");
        // All right: the upper end is 1, the lower end is not.
        let (lo, hi) = wilson_interval(600, 600, 1.959_964);
        assert!(
            (hi - 1.0).abs() < 1e-12 && lo > 0.99 && lo < 0.9940,
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0, 1.96), (0.0, 1.0));
        assert_eq!(
            accuracy_ci95(595.0 / 600.0, 600),
            wilson_interval(595, 600, 1.959_964)
        );
    }

    #[test]
    fn counts_on_sorted_scores_agree_with_a_direct_count() {
        let g = [0.9, 0.4, f32::NEG_INFINITY, 0.8, 0.4];
        let i = [0.1, 0.5, 0.4, f32::NEG_INFINITY, 0.3];
        let (sg, si) = (Sorted::new(&g), Sorted::new(&i));
        for t in candidates(&g, &i) {
            let direct_g = g.iter().filter(|&&s| s >= t).count();
            let direct_i = i.iter().filter(|&&s| s.is_finite() && s < t).count();
            assert_eq!(sg.at_or_above(t), direct_g, "{t}");
            assert_eq!(si.finite_below(t), direct_i, "{t}");
        }
        let curve = det(&g, &i);
        let (far, frr) = curve[0];
        assert!(
            (far - 0.8).abs() < 1e-12 && (frr - 0.2).abs() < 1e-12,
            "lowest threshold"
        );
        assert_eq!(curve.last(), Some(&(0.0, 1.0)), "above every score");
    }

    #[test]
    fn percentile_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
    }
}
