//! Runs clips through the real face pipeline and the real liveness
//! accumulator (`decision::liveness::Track`), frame by frame at the clip's
//! frame rate, as the daemon would; and for a sweep of the mode's main
//! threshold at once (one pipeline pass, one track per threshold).

use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Serialize;

use super::clips::ClipKind;
use crate::decision::liveness::{Check, Figures, LivenessMode, LivenessPolicy, State, Track};
use crate::pipeline::FacePipeline;
use crate::vision::VisionError;
use crate::vision::liveness::TurnSide;

/// How a clip ended under one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Liveness shown: the daemon would go on to score the face.
    Live,
    /// Refused as a presentation attack.
    Attack,
    /// Neither before the clip ended: the request times out.
    Timeout,
}

/// The main threshold a mode's DET sweeps: `min_parallax` for motion,
/// `min_turn` for challenge.
pub fn sweep_key(mode: LivenessMode) -> &'static str {
    match mode {
        LivenessMode::Challenge => "min_turn",
        _ => "min_parallax",
    }
}

/// `policy` with the mode's main threshold set to `value` (`min_motion`
/// raised to it when needed, as the config requires).
pub fn with_threshold(policy: LivenessPolicy, value: f32) -> LivenessPolicy {
    let mut p = policy;
    match policy.mode {
        LivenessMode::Challenge => p.min_turn = value,
        _ => {
            p.min_parallax = value;
            p.min_motion = p.min_motion.max(value);
        }
    }
    p
}

/// One clip's result under the configured policy, and its outcomes over
/// the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ClipResult {
    pub path: String,
    pub kind: ClipKind,
    pub frames: usize,
    pub analysed: usize,
    /// Analysed frames where BlazeFace found a face / the mesh confirmed one.
    pub detected: usize,
    pub meshed: usize,
    pub outcome: Outcome,
    /// Seconds of clip (at its frame rate) until the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_after: Option<f64>,
    pub figures: Option<Figures>,
    #[serde(skip)]
    pub sweep: Vec<Outcome>,
}

/// What the daemon would check on this clip: the motion check, or a
/// challenge to `side`.
pub fn check_for(mode: LivenessMode, side: Option<TurnSide>) -> Check {
    match (mode, side) {
        (LivenessMode::Challenge, Some(side)) => Check::Challenge(side),
        (LivenessMode::Challenge, None) => Check::Challenge(TurnSide::ImageLeft),
        _ => Check::Motion,
    }
}

/// A clip played under every policy of a sweep.
pub struct ClipRun {
    /// Per policy: the outcome, seconds of clip until it, the figures.
    pub outcomes: Vec<(Outcome, Option<f64>, Figures)>,
    /// Frames analysed (the clip stops once every policy has decided).
    pub analysed: usize,
    /// Of those, frames where BlazeFace found a face / the mesh confirmed one.
    pub detected: usize,
    pub meshed: usize,
}

struct Judge {
    track: Track,
    outcome: Option<(Outcome, usize, Figures)>,
}

/// Plays `frames` at `fps` through the pipeline and one track per policy
/// (`policies[0]` is the one reported); stops early once every track
/// has decided.
pub fn run_clip(
    pipeline: &FacePipeline,
    frames: &[RgbImage],
    fps: f64,
    check: Check,
    policies: &[LivenessPolicy],
    progress: &dyn Fn(),
) -> Result<ClipRun, VisionError> {
    // Any threshold that makes a match: the tracks only use it to notice
    // another person swapped in, which a clip never does.
    const MATCH: f32 = 0.9;
    let mut judges: Vec<Judge> = policies
        .iter()
        .map(|p| Judge {
            track: Track::new(*p, MATCH),
            outcome: None,
        })
        .collect();
    let (mut analysed, mut detected, mut meshed) = (0, 0, 0);
    let t0 = Instant::now();
    for (k, frame) in frames.iter().enumerate() {
        progress();
        if judges.iter().all(|j| j.outcome.is_some()) {
            continue;
        }
        let analysis = pipeline.analyse(frame)?;
        analysed += 1;
        detected += usize::from(analysis.faces_detected > 0);
        meshed += usize::from(analysis.face.is_some());
        let usable = analysis
            .face
            .as_ref()
            .is_some_and(|f| f.quality_failures.is_empty());
        let at = t0 + Duration::from_secs_f64(k as f64 / fps);
        for j in judges.iter_mut().filter(|j| j.outcome.is_none()) {
            j.track.push(analysis.clone(), usable, frame, at);
            let (state, figures) = j.track.evaluate(check);
            j.outcome = match state {
                State::Live => Some((Outcome::Live, k, figures)),
                State::Attack(_) => Some((Outcome::Attack, k, figures)),
                State::Pending => None,
            };
        }
    }
    let outcomes = judges
        .into_iter()
        .map(|mut j| match j.outcome {
            Some((o, k, f)) => (o, Some((k + 1) as f64 / fps), f),
            None => (Outcome::Timeout, None, j.track.evaluate(check).1),
        })
        .collect();
    Ok(ClipRun {
        outcomes,
        analysed,
        detected,
        meshed,
    })
}
