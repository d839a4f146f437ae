//! The decision for one request: pick the best face over the frames, score
//! it 1:1 against a claimed subject or 1:N over the gallery, compare with
//! the threshold. The scores go to the audit log, never into the verdict.

use serde::Serialize;

use super::Threshold;
use super::gallery::{Gallery, SubjectScore};
use crate::pipeline::{FaceEvidence, FrameAnalysis};
use crate::verdict::{Decision, Mode, Reason};

/// A decision with what the audit log needs to explain it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub decision: Decision,
    pub reason: Reason,
    pub mode: Mode,
    /// The accepted subject, or the claimed one in 1:1.
    pub subject: Option<String>,
    /// Best similarity found (audit only).
    pub score: Option<f32>,
    pub threshold: Option<f32>,
    /// Index of the frame whose face was used.
    pub frame: Option<usize>,
    /// 1:N: the best few subjects and scores (audit only).
    pub candidates: Vec<SubjectScore>,
}

impl Outcome {
    /// A rejection decided before any scoring.
    pub fn reject(mode: Mode, reason: Reason, subject: Option<&str>) -> Self {
        Self {
            decision: Decision::Reject,
            reason,
            mode,
            subject: subject.map(str::to_owned),
            score: None,
            threshold: None,
            frame: None,
            candidates: Vec::new(),
        }
    }
}

/// The best usable face over the frames, or why there is none:
/// `multiple_faces` if any frame was ambiguous, else `low_quality` if a face
/// was seen, else `no_face`.
pub fn select_face<'a>(frames: &[&'a FrameAnalysis]) -> Result<(usize, &'a FaceEvidence), Reason> {
    let usable = frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match &f.face {
            Some(face) if !f.ambiguous && face.quality_failures.is_empty() => Some((i, face)),
            _ => None,
        });
    // Larger and more confidently detected faces first.
    let best = usable.max_by(|a, b| weight(a.1).total_cmp(&weight(b.1)));
    if let Some(best) = best {
        return Ok(best);
    }
    if frames.iter().any(|f| f.ambiguous) {
        Err(Reason::MultipleFaces)
    } else if frames.iter().any(|f| f.face.is_some()) {
        Err(Reason::LowQuality)
    } else {
        Err(Reason::NoFace)
    }
}

fn weight(face: &FaceEvidence) -> f32 {
    face.quality.detection_score * face.quality.eye_distance_px
}

/// 1:1: `subject` must be in `gallery` (callers handle unknown, tampered and
/// other-model subjects first).
pub fn decide_verify(
    gallery: &Gallery,
    subject: &str,
    frames: &[&FrameAnalysis],
    threshold: &Threshold,
) -> Outcome {
    let (frame, face) = match select_face(frames) {
        Ok(found) => found,
        Err(reason) => return Outcome::reject(Mode::Verify, reason, Some(subject)),
    };
    let Some(score) = gallery.score_subject(subject, face.embedding.as_slice()) else {
        return Outcome::reject(Mode::Verify, Reason::UnknownSubject, Some(subject));
    };
    let accepted = threshold.accepts(score);
    Outcome {
        decision: Decision::of(accepted),
        reason: Reason::of_score(accepted),
        mode: Mode::Verify,
        subject: Some(subject.to_owned()),
        score: Some(score),
        threshold: Some(threshold.value),
        frame: Some(frame),
        candidates: Vec::new(),
    }
}

/// Subjects a 1:N decision ranks, for the audit record's candidates.
pub const IDENTIFY_TOP_K: usize = 3;

/// 1:N over the whole gallery; `sub` only on accept.
pub fn decide_identify(
    gallery: &Gallery,
    frames: &[&FrameAnalysis],
    threshold: &Threshold,
) -> Outcome {
    let (frame, face) = match select_face(frames) {
        Ok(found) => found,
        Err(reason) => return Outcome::reject(Mode::Identify, reason, None),
    };
    let candidates = gallery.top_subjects(face.embedding.as_slice(), IDENTIFY_TOP_K);
    let best = candidates.first().cloned();
    let accepted = best.as_ref().is_some_and(|b| threshold.accepts(b.score));
    Outcome {
        decision: Decision::of(accepted),
        reason: Reason::of_score(accepted),
        mode: Mode::Identify,
        subject: if accepted {
            best.as_ref().map(|b| b.subject.clone())
        } else {
            None
        },
        score: best.as_ref().map(|b| b.score),
        threshold: Some(threshold.value),
        frame: Some(frame),
        candidates,
    }
}
