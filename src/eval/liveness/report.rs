//! The figures of a liveness evaluation: BPCER and time to decision on
//! live clips, APCER per attack kind, the detector's hit rate on live
//! clips, and the sweep of the mode's main threshold (the DET curve).
//! ISO/IEC 30107-3 terms: APCER = attacks accepted as live, BPCER = bona
//! fide presentations not accepted (refused or timed out).

use serde::Serialize;

use super::clips::ClipKind;
use super::run::{ClipResult, Outcome};
use crate::eval::metrics::percentile;
use crate::eval::plot::Series;

/// One attack kind's figures.
#[derive(Debug, Clone, Serialize)]
pub struct AttackFigures {
    pub kind: ClipKind,
    pub clips: usize,
    /// Accepted as live (the attack succeeded).
    pub accepted: usize,
    /// Refused as a presentation attack.
    pub refused: usize,
    pub timed_out: usize,
    pub apcer: f64,
}

/// Seconds of clip until a live decision, over the live clips that got one.
#[derive(Debug, Clone, Serialize)]
pub struct TimeToDecision {
    pub clips: usize,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

/// The error rates at one value of the swept threshold.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub value: f32,
    pub bpcer: f64,
    /// APCER per attack kind, in `ClipKind::ATTACKS` order (kinds present).
    pub apcer: Vec<(ClipKind, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LivenessReport {
    pub mode: &'static str,
    pub threshold_key: &'static str,
    pub threshold: f32,
    pub live_clips: usize,
    pub live_accepted: usize,
    /// Live clips refused as attacks / timed out.
    pub live_refused: usize,
    pub live_timed_out: usize,
    pub bpcer: f64,
    pub time_to_decision: Option<TimeToDecision>,
    /// Analysed live frames where BlazeFace found a face, and where the
    /// face mesh confirmed it.
    pub detection_rate: f64,
    pub mesh_rate: f64,
    pub attacks: Vec<AttackFigures>,
    pub sweep: Vec<SweepPoint>,
}

fn rate(n: usize, d: usize) -> f64 {
    if d == 0 {
        f64::NAN
    } else {
        n as f64 / d as f64
    }
}

fn count(results: &[&ClipResult], outcome: impl Fn(&ClipResult) -> Outcome, o: Outcome) -> usize {
    results.iter().filter(|&&r| outcome(r) == o).count()
}

impl LivenessReport {
    pub fn compute(
        mode: &'static str,
        threshold_key: &'static str,
        threshold: f32,
        sweep_values: &[f32],
        results: &[ClipResult],
    ) -> Self {
        let live: Vec<&ClipResult> = results
            .iter()
            .filter(|r| r.kind == ClipKind::Live)
            .collect();
        let by_kind =
            |kind| -> Vec<&ClipResult> { results.iter().filter(|r| r.kind == kind).collect() };
        let kinds: Vec<ClipKind> = ClipKind::ATTACKS
            .into_iter()
            .filter(|k| results.iter().any(|r| r.kind == *k))
            .collect();
        let attacks = kinds
            .iter()
            .map(|&kind| {
                let rs = by_kind(kind);
                let accepted = count(&rs, |r| r.outcome, Outcome::Live);
                AttackFigures {
                    kind,
                    clips: rs.len(),
                    accepted,
                    refused: count(&rs, |r| r.outcome, Outcome::Attack),
                    timed_out: count(&rs, |r| r.outcome, Outcome::Timeout),
                    apcer: rate(accepted, rs.len()),
                }
            })
            .collect();
        let mut times: Vec<f64> = live
            .iter()
            .filter_map(|r| r.decided_after.filter(|_| r.outcome == Outcome::Live))
            .collect();
        times.sort_by(f64::total_cmp);
        let time_to_decision = (!times.is_empty()).then(|| TimeToDecision {
            clips: times.len(),
            median: percentile(&times, 50.0),
            p90: percentile(&times, 90.0),
            max: times[times.len() - 1],
        });
        let sweep = sweep_values
            .iter()
            .enumerate()
            .map(|(i, &value)| {
                let at = |r: &ClipResult| r.sweep.get(i).copied().unwrap_or(Outcome::Timeout);
                SweepPoint {
                    value,
                    bpcer: 1.0 - rate(count(&live, at, Outcome::Live), live.len()),
                    apcer: kinds
                        .iter()
                        .map(|&k| {
                            let rs = by_kind(k);
                            (k, rate(count(&rs, at, Outcome::Live), rs.len()))
                        })
                        .collect(),
                }
            })
            .collect();
        let live_accepted = count(&live, |r| r.outcome, Outcome::Live);
        let frames: usize = live.iter().map(|r| r.analysed).sum();
        Self {
            mode,
            threshold_key,
            threshold,
            live_clips: live.len(),
            live_accepted,
            live_refused: count(&live, |r| r.outcome, Outcome::Attack),
            live_timed_out: count(&live, |r| r.outcome, Outcome::Timeout),
            bpcer: 1.0 - rate(live_accepted, live.len()),
            time_to_decision,
            detection_rate: rate(live.iter().map(|r| r.detected).sum(), frames),
            mesh_rate: rate(live.iter().map(|r| r.meshed).sum(), frames),
            attacks,
            sweep,
        }
    }

    /// DET series over the sweep: one per attack kind (APCER, BPCER).
    pub fn det_series(&self) -> Vec<Series> {
        self.attacks
            .iter()
            .enumerate()
            .map(|(i, a)| Series {
                label: a.kind.name().to_owned(),
                points: self.sweep.iter().map(|p| (p.apcer[i].1, p.bpcer)).collect(),
            })
            .collect()
    }
}
