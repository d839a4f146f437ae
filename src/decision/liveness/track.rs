//! The accumulator: landmark samples of one face over a request (or a
//! walk-up track), the best usable frame for scoring, and the motion
//! evidence that tells a head from a picture.
//!
//! Every new sample is compared with anchor pairs (two consecutive samples
//! every `ANCHOR_STRIDE` samples). Against each pair it may be *moving*
//! (its shape changed beyond shift, scale and roll, well above landmark
//! noise) and then *head-like* (a large part of that change is parallax no
//! homography explains) or *flat* (almost none is). Both samples of the
//! pair must agree, so one glitched anchor proves nothing; several anchors
//! mean the verdict does not hang on where the track happened to start.
//! A head-like pair counts only once the pixels agree
//! (`vision::liveness::texture`): the mesh can draw a turned head on a
//! bent print.

use std::time::{Duration, Instant};

use image::RgbImage;

use super::{Check, Figures, LivenessPolicy, State};
use crate::pipeline::{FaceEvidence, FrameAnalysis};
use crate::vision::embed::Embedding;
use crate::vision::landmarks::FaceMesh;
use crate::vision::liveness::{
    LivenessFailure, LivenessSample, MidlineView, TurnSide, detect_blink, judge, planar_residual,
    shape_change, tip_shift,
};

/// Most samples a track keeps (a few seconds of frames; older ones go, the
/// evidence they gave stays).
const MAX_SAMPLES: usize = 90;
/// A new anchor pair every this many samples.
const ANCHOR_STRIDE: u64 = 4;
/// Head-like / flat frames needed before a verdict, so one glitched
/// landmark set decides nothing.
const MIN_LIVE_FRAMES: usize = 3;
const MIN_PLANAR_FRAMES: usize = 2;
/// Parallax over shape change: a moving frame at or above `LIVE_RATIO` looks
/// like a head, one below `PLANAR_RATIO` like a plane. Measured with the
/// face mesh: every moving frame of real head video was ≥ 0.47; photos
/// warped by homographies were mostly under 0.35, a few above 0.45 (the
/// mesh's 3-D prior bends a tilted picture a little).
const LIVE_RATIO: f32 = 0.45;
const PLANAR_RATIO: f32 = 0.35;
/// A frame must also change shape by this many pixels (RMS) before it is
/// judged: landmark noise (about half a pixel) is not motion, and noise
/// looks like parallax. Small faces therefore need to move more.
const MIN_MOTION_PX: f32 = 3.0;
/// Between consecutive samples the eye midpoint may move this many eye
/// distances and the scale change this much before it counts as a jump.
const MAX_JUMP_EYE_DISTANCES: f32 = 1.0;
const MAX_SCALE_STEP: f32 = 1.35;
/// Consecutive usable frames of one person stay well above the match
/// threshold (real head video: ≥ 0.94 frame to frame, 0.916 at worst
/// across 30 frames of turning); this far below it, it is someone else.
const SAME_PERSON_MARGIN: f32 = 0.03;
/// No face for longer than this ends a track (walk-up: the person left).
const MAX_GAP: Duration = Duration::from_millis(1500);
/// A view narrower than this fraction of the widest view of the track is
/// steep: there the mesh fills in what it cannot see from its 3-D face
/// prior and bends even a picture like a turned head (measured on bent
/// prints: the nose leaves the line of the nose bridge by 0.03-0.05 eye
/// distances down to 0.85 of the widest view, then 0.1-0.24 below 0.8).
/// A steep pair may still show flatness, never a head.
const STEEP_VIEW: f32 = 0.8;
/// The narrowest frontal view expected of an adult face (outer eye
/// corners over eyes-to-mouth; the widest views of the rendered live heads
/// were 1.23-1.37, p5-p95), so a track that has only seen steep views
/// still knows they are steep.
const FRONTAL_ASPECT: f32 = 1.1;
/// On a head-like pair the nose tip's texture must move off the bridge–base
/// line the way the mesh's tip does, by at least this many eye distances
/// (about 1 px at 64 px between the eyes; tracking noise is a fraction of
/// that). On the generated clips where the mesh's tip moved 0.03 or more,
/// the texture's followed on about a third of the live pairs and on 3 % of
/// the bent prints' pairs (mostly tracking noise, which the sign and the
/// second anchor then catch).
const MIN_TIP_SHIFT: f32 = 0.015;
/// Head-like anchor pairs whose pixels one frame checks, at most.
const MAX_PIXEL_CHECKS: usize = 4;

struct Entry {
    /// Number of the sample since the track began.
    n: u64,
    sample: LivenessSample,
    /// The pixels around the nose midline, kept for anchors only.
    view: Option<MidlineView>,
}

/// Running motion evidence of a track.
#[derive(Debug, Default, Clone, Copy)]
struct Motion {
    max_shape: f32,
    max_parallax: f32,
    min_ratio: Option<f32>,
    max_turn: f32,
    live_frames: usize,
    planar_frames: usize,
    /// Frames the mesh found head-like that the pixels did not confirm.
    unconfirmed_frames: usize,
}

impl Motion {
    fn state(&self) -> State {
        // A head almost never yields a flat frame, a picture often does:
        // one flat frame outweighs several head-like ones.
        if self.live_frames >= MIN_LIVE_FRAMES && self.live_frames >= 4 * self.planar_frames {
            State::Live
        } else if self.planar_frames >= MIN_PLANAR_FRAMES && self.planar_frames >= self.live_frames
        {
            State::Attack(LivenessFailure::Planar)
        } else {
            State::Pending
        }
    }
}

/// The samples of one face, the best usable frame for scoring, and whether
/// liveness has been shown.
pub struct Track {
    policy: LivenessPolicy,
    /// A usable frame less similar than this to the previous usable one is
    /// another person (a photo swapped in): the track restarts.
    same_person: f32,
    last_usable: Option<Embedding>,
    /// Whether head-like pairs are checked in the pixels (always, except
    /// in tests on landmarks without pixels).
    pixels: bool,
    entries: Vec<Entry>,
    next_n: u64,
    motion: Motion,
    /// Widest view (`LivenessSample::aspect`) since the track began.
    widest: f32,
    last_at: Option<Instant>,
    best: Option<(FrameAnalysis, Instant)>,
    live: bool,
    resets: u32,
}

impl Track {
    /// `match_threshold`: the similarity that makes a match; the track's
    /// test for "still the same person" sits a margin below it.
    pub fn new(policy: LivenessPolicy, match_threshold: f32) -> Self {
        Self {
            policy,
            same_person: match_threshold - SAME_PERSON_MARGIN,
            last_usable: None,
            pixels: true,
            entries: Vec::new(),
            next_n: 0,
            motion: Motion::default(),
            widest: 0.0,
            last_at: None,
            best: None,
            live: false,
            resets: 0,
        }
    }

    /// A track judged on landmarks alone, for tests on synthetic landmark
    /// sequences that have no pixels.
    #[cfg(test)]
    pub(crate) fn landmarks_only(policy: LivenessPolicy, match_threshold: f32) -> Self {
        Self {
            pixels: false,
            ..Self::new(policy, match_threshold)
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True once a usable face is held for scoring.
    pub fn has_usable(&self) -> bool {
        self.best.is_some()
    }

    /// Starts afresh: the evidence so far belongs to someone (or something) else.
    pub fn reset(&mut self) {
        if !self.entries.is_empty() || self.best.is_some() {
            self.resets += 1;
        }
        self.entries.clear();
        self.last_usable = None;
        self.next_n = 0;
        self.motion = Motion::default();
        self.widest = 0.0;
        self.best = None;
        self.live = false;
        self.last_at = None;
    }

    /// Adds the analysis of `frame`; `usable` is the quality gate's verdict
    /// on it.
    pub fn push(&mut self, analysis: FrameAnalysis, usable: bool, frame: &RgbImage, at: Instant) {
        let gap = self
            .last_at
            .is_some_and(|t| at.saturating_duration_since(t) > MAX_GAP);
        // A face cut by the frame edge gets a mesh partly guessed from the
        // model's prior, which bends like parallax: it is no evidence.
        let Some(face) = analysis
            .face
            .as_ref()
            .filter(|f| inside(&f.mesh, frame.dimensions()))
        else {
            if gap {
                self.reset();
            }
            return;
        };
        let sample = LivenessSample::from_mesh(&face.mesh);
        let jumped = self
            .entries
            .last()
            .is_some_and(|last| jumps(&last.sample, &sample));
        let stranger = usable
            && self
                .last_usable
                .as_ref()
                .is_some_and(|e| e.cosine(&face.embedding) < self.same_person);
        if gap || jumped || stranger {
            tracing::debug!(gap, jumped, stranger, "liveness track restarted");
            self.reset();
        }
        let view = if self.pixels {
            MidlineView::capture(frame, &sample)
        } else {
            None
        };
        self.judge_motion(&sample, view.as_ref());
        if self.entries.len() == MAX_SAMPLES {
            self.entries.remove(0);
        }
        let anchor = self.next_n % ANCHOR_STRIDE <= 1;
        self.entries.push(Entry {
            n: self.next_n,
            sample,
            view: view.filter(|_| anchor),
        });
        self.next_n += 1;
        self.last_at = Some(at);
        if usable {
            self.last_usable = Some(face.embedding.clone());
        }
        if usable
            && self
                .best
                .as_ref()
                .is_none_or(|(best, _)| rank(face) > best_rank(best))
        {
            self.best = Some((analysis, at));
        }
    }

    /// Compares a new sample (and `view`, its pixels) with every anchor pair
    /// before it.
    fn judge_motion(&mut self, s: &LivenessSample, view: Option<&MidlineView>) {
        self.widest = self.widest.max(s.aspect());
        let Some(first) = self.entries.first() else {
            return;
        };
        let widest = self.widest.max(FRONTAL_ASPECT);
        let steep = |x: &LivenessSample| x.aspect() < STEEP_VIEW * widest;
        let m = &mut self.motion;
        m.max_turn = m.max_turn.max((s.turn() - first.sample.turn()).abs());
        let pixels = self.pixels;
        // The tip's texture moved off its line as the mesh's tip did.
        let confirmed = |anchor: &Entry| {
            let mesh = s.midline_offset() - anchor.sample.midline_offset();
            let seen = anchor
                .view
                .as_ref()
                .zip(view)
                .and_then(|(a, b)| tip_shift(a, b));
            seen.is_some_and(|t| t.signum() == mesh.signum() && t.abs() >= MIN_TIP_SHIFT)
        };
        let (mut live, mut planar, mut unconfirmed) = (false, false, false);
        let mut checks = 0;
        for pair in self.entries.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.n % ANCHOR_STRIDE != 0 || b.n != a.n + 1 {
                continue;
            }
            let (r0, r1) = (&a.sample, &b.sample);
            let (s0, s1) = (shape_change(r0, s), shape_change(r1, s));
            m.max_shape = m.max_shape.max(s0.min(s1));
            let gate = self
                .policy
                .min_motion
                .max(MIN_MOTION_PX / r0.eye_distance().max(1.0));
            if s0.min(s1) < gate {
                continue;
            }
            let (p0, p1) = (planar_residual(r0, s), planar_residual(r1, s));
            let (lo, hi) = ((p0 / s0).min(p1 / s1), (p0 / s0).max(p1 / s1));
            m.max_parallax = m.max_parallax.max(p0.min(p1));
            m.min_ratio = Some(m.min_ratio.map_or(lo, |r| r.min(lo)));
            let head_like = lo >= LIVE_RATIO
                && p0.min(p1) >= self.policy.min_parallax
                && ![r0, r1, s].into_iter().any(steep);
            // One confirmed pair makes the frame head-like: the pixels of
            // the other pairs need not be searched, nor more than a few
            // pairs' per frame (each search costs about 0.3 ms).
            if head_like && !live {
                if !pixels {
                    live = true;
                } else if checks < MAX_PIXEL_CHECKS {
                    checks += 1;
                    live = confirmed(a) && confirmed(b);
                }
                unconfirmed |= !live;
            }
            planar |= hi < PLANAR_RATIO;
        }
        // A frame flat against any anchor is flat: pictures are what this
        // check exists to stop.
        if planar {
            m.planar_frames += 1;
        } else if live {
            m.live_frames += 1;
        } else if unconfirmed {
            m.unconfirmed_frames += 1;
        }
    }

    /// The best usable frame so far (and when it was captured), for scoring.
    pub fn take_best(&mut self) -> Option<(FrameAnalysis, Instant)> {
        self.best.take()
    }

    /// Judges the track; `Live` is kept once reached.
    pub fn evaluate(&mut self, check: Check) -> (State, Figures) {
        let samples: Vec<LivenessSample> = self.entries.iter().map(|e| e.sample.clone()).collect();
        let vision = self.policy.vision();
        let m = self.motion;
        let mut figures = Figures {
            check: match check {
                Check::Motion => "motion",
                Check::Challenge(_) => "challenge",
            },
            shown: false,
            frames: samples.len(),
            resets: self.resets,
            motion: round(m.max_shape),
            parallax: round(m.max_parallax),
            ratio: m.min_ratio.map(round),
            head_frames: m.live_frames,
            flat_frames: m.planar_frames,
            unconfirmed_frames: m.unconfirmed_frames,
            turn: round(m.max_turn),
            blinked: samples.len() >= 3 && detect_blink(&samples, &vision),
            challenge: None,
            failure: None,
        };
        let state = if self.live {
            State::Live
        } else {
            match check {
                Check::Motion => m.state(),
                Check::Challenge(side) => self.challenge(side, &samples, &mut figures),
            }
        };
        match state {
            State::Live => {
                self.live = true;
                figures.shown = true;
                figures.failure = None;
            }
            State::Attack(f) => figures.failure = Some(f),
            State::Pending => {}
        }
        (state, figures)
    }

    fn challenge(
        &self,
        side: TurnSide,
        samples: &[LivenessSample],
        figures: &mut Figures,
    ) -> State {
        figures.challenge = Some(side);
        if let State::Attack(f) = self.motion.state() {
            return State::Attack(f);
        }
        // The first clear turn must go the asked way: a video turning both
        // ways would otherwise answer either challenge.
        if let Some(first) = samples.first() {
            let wrong = samples
                .iter()
                .map(|s| s.turn() - first.turn())
                .find(|d| d.abs() >= self.policy.min_turn)
                .is_some_and(|d| (d > 0.0) != (side == TurnSide::ImageRight));
            if wrong {
                return State::Attack(LivenessFailure::WrongSide);
            }
        }
        let report = judge(samples, side, &self.policy.vision());
        figures.turn = round(report.turn_change);
        figures.blinked = report.blinked;
        figures.failure = report.failure;
        // Flatness is the motion check's call (above): `judge` looks at one
        // pair of frames only, which early in a turn can still be flat.
        if report.live && self.motion.state() == State::Live {
            State::Live
        } else {
            State::Pending
        }
    }
}

/// Every mesh point lies within the frame.
fn inside(mesh: &FaceMesh, (width, height): (u32, u32)) -> bool {
    let (w, h) = (width as f32, height as f32);
    mesh.points
        .iter()
        .all(|p| p[0] >= 0.0 && p[1] >= 0.0 && p[0] < w && p[1] < h)
}

/// The face moved or changed size too much between two samples to be the same face.
fn jumps(last: &LivenessSample, next: &LivenessSample) -> bool {
    let d = last.eye_distance().max(1e-3);
    let scale = next.eye_distance() / d;
    last.eye_centre().distance(next.eye_centre()) > MAX_JUMP_EYE_DISTANCES * d
        || !(1.0 / MAX_SCALE_STEP..=MAX_SCALE_STEP).contains(&scale)
}

/// The same ranking `verify::select_face` uses: larger, surer faces first.
fn rank(face: &FaceEvidence) -> f32 {
    face.quality.detection_score * face.quality.eye_distance_px
}

fn best_rank(analysis: &FrameAnalysis) -> f32 {
    analysis.face.as_ref().map_or(f32::MIN, rank)
}

/// Four decimals, as f64 so the audit JSON shows 0.0603, not f32 noise.
fn round(v: f32) -> f64 {
    (f64::from(v) * 10_000.0).round() / 10_000.0
}
