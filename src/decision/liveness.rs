//! Liveness across the frames of one request (or of one walk-up track):
//! the `[liveness]` policy and the accumulator that gathers landmark
//! samples of one face and says when it has shown itself to be a head, not
//! a picture.
//!
//! - `motion`: natural head motion must change the face's 2-D shape in a
//!   way no homography explains (parallax); a picture tilted or carried in
//!   front of the camera changes shape by a homography only and is
//!   rejected as a presentation attack; a face that never moves enough is
//!   not judged live, so the request runs out of time.
//! - `challenge`: the same, plus a blink (when asked) and a head turn to a
//!   side drawn at random per request; turning the other way first fails.
//! - `off`: no liveness (test rigs, sites with another PAD).
//!
//! Nothing here keeps images or landmarks beyond the track; the figures
//! that leave it (for the audit log) are a handful of numbers.

use serde::{Deserialize, Serialize};

use crate::vision::liveness::{LivenessConfig, LivenessFailure, TurnSide};

#[cfg(test)]
mod tests;
mod track;

pub use track::Track;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LivenessMode {
    /// Parallax from natural head motion; a plane is rejected.
    #[default]
    Motion,
    /// D-Bus requests: blink (if asked) and turn to a random side, announced
    /// with the `Hint` signal; other requests get the motion check.
    Challenge,
    /// No liveness check; the audit detail says so.
    Off,
}

impl LivenessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Motion => "motion",
            Self::Challenge => "challenge",
            Self::Off => "off",
        }
    }
}

/// The `[liveness]` section of `edgeid.toml`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessPolicy {
    pub mode: LivenessMode,
    /// Challenge: a blink is asked for before the turn.
    pub require_blink: bool,
    /// Challenge: the turn towards the asked side (nose offset from the
    /// cheeks' midpoint, in half cheek distances).
    pub min_turn: f32,
    /// Shape change left after the best homography (RMS, eye distances)
    /// that counts as parallax: a real head, not a plane. A head-like frame
    /// also needs parallax of at least 0.45 of its shape change; a frame
    /// under 0.35 of it is flat (see `track`).
    pub min_parallax: f32,
    /// Shape change beyond shift, scale and roll (RMS, eye distances) a
    /// frame needs before planarity is judged on it at all.
    pub min_motion: f32,
}

impl Default for LivenessPolicy {
    fn default() -> Self {
        let vision = LivenessConfig::default();
        Self {
            mode: LivenessMode::Motion,
            require_blink: vision.require_blink,
            min_turn: vision.min_turn,
            min_parallax: vision.min_parallax,
            min_motion: 0.03,
        }
    }
}

/// A `[liveness]` value out of its range; each names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LivenessConfigError {
    #[error("liveness.{key} must be in (0, {max}] (it is {value})")]
    OutOfRange {
        key: &'static str,
        max: f32,
        value: f32,
    },
    #[error("liveness.min_motion ({motion}) must be at least liveness.min_parallax ({parallax})")]
    MotionBelowParallax { motion: f32, parallax: f32 },
}

impl LivenessPolicy {
    pub fn validate(&self) -> Result<(), LivenessConfigError> {
        for (key, value, max) in [
            ("min_turn", self.min_turn, 1.5),
            ("min_parallax", self.min_parallax, 0.5),
            ("min_motion", self.min_motion, 0.5),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= max) {
                return Err(LivenessConfigError::OutOfRange { key, max, value });
            }
        }
        if self.min_motion < self.min_parallax {
            // A frame with less shape change than the parallax asked for can never show it.
            return Err(LivenessConfigError::MotionBelowParallax {
                motion: self.min_motion,
                parallax: self.min_parallax,
            });
        }
        Ok(())
    }

    pub(crate) fn vision(&self) -> LivenessConfig {
        LivenessConfig {
            min_turn: self.min_turn,
            min_parallax: self.min_parallax,
            require_blink: self.require_blink,
            ..LivenessConfig::default()
        }
    }
}

/// What one request (or track) must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Motion,
    Challenge(TurnSide),
}

/// What the person is asked to do, as the `Hint` signal says it. The side
/// is the person's own: turning to one's left moves the nose to the image
/// right.
pub fn challenge_hint(side: TurnSide, blink: bool) -> &'static str {
    match (side, blink) {
        (TurnSide::ImageRight, true) => "blink, then turn your head to your left",
        (TurnSide::ImageLeft, true) => "blink, then turn your head to your right",
        (TurnSide::ImageRight, false) => "turn your head to your left",
        (TurnSide::ImageLeft, false) => "turn your head to your right",
    }
}

/// A side drawn from the system's CSPRNG, so a recorded video cannot know it.
pub fn random_side(
    rng: &dyn ring::rand::SecureRandom,
) -> Result<TurnSide, ring::error::Unspecified> {
    let mut byte = [0u8; 1];
    rng.fill(&mut byte)?;
    Ok(if byte[0] & 1 == 0 {
        TurnSide::ImageLeft
    } else {
        TurnSide::ImageRight
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not enough evidence either way yet.
    Pending,
    /// Liveness shown; scoring may go ahead.
    Live,
    /// A picture (or a failed challenge): reject as a presentation attack.
    Attack(LivenessFailure),
}

/// The numbers that explain a liveness judgement in the audit log. Never
/// landmarks, never images.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub check: &'static str,
    pub shown: bool,
    /// Face samples in the current track.
    pub frames: usize,
    /// Tracks restarted because the face jumped, vanished or changed.
    pub resets: u32,
    /// Largest shape change seen (RMS, eye distances).
    pub motion: f64,
    /// Largest homography residual on a moving frame (RMS, eye distances).
    pub parallax: f64,
    /// Lowest parallax over shape change among moving frames: near 0 for
    /// a picture, about 0.5 or more for a head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Moving frames that looked like a head / like a plane.
    pub head_frames: usize,
    pub flat_frames: usize,
    /// Frames the landmarks found head-like but the pixels did not: the
    /// nose tip's texture did not move off its line as the mesh's did.
    pub unconfirmed_frames: usize,
    /// Largest turn change (challenge: towards the asked side).
    pub turn: f64,
    pub blinked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<TurnSide>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<LivenessFailure>,
}
