//! Liveness from a sequence of face landmarks: an active challenge (blink,
//! then a head turn to a side chosen at random per attempt) and a planarity
//! check.
//!
//! Why planarity: a printed photo or a phone screen moved in front of the
//! camera is a plane, and every view of a plane is one homography of any
//! other; a real head turning shows parallax (the nose moves against the
//! cheeks) that no homography explains. The check fits a homography between
//! the most frontal and the most turned frames and measures what is left.
//!
//! The mesh draws landmarks from its own 3-D face prior, so a head-like
//! change is then checked in the pixels (`texture`): the nose tip's texture
//! must leave the line of the nose bridge as the mesh's tip does.
//!
//! Everything here is a pure function of landmark sequences (and, for the
//! texture check, of frames), so it is tested with synthetic heads,
//! pictures and textures; the daemon feeds it camera frames.

use serde::{Deserialize, Serialize};

use super::geometry::Point;
use super::landmarks::{FaceMesh, index};

mod fit;
#[cfg(test)]
pub(crate) mod synthetic;
#[cfg(test)]
mod tests;
mod texture;

pub use fit::{Homography, fit_homography, similarity_residual};
pub use texture::{MidlineView, tip_shift};

/// Named landmarks liveness reads, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    RightEyeOuter,
    RightEyeInner,
    RightEyeUpper,
    RightEyeLower,
    LeftEyeOuter,
    LeftEyeInner,
    LeftEyeUpper,
    LeftEyeLower,
    NoseTip,
    NoseBase,
    MouthRight,
    MouthLeft,
    Chin,
    Forehead,
    RightCheek,
    LeftCheek,
    /// Between the eyes.
    NoseBridge,
    /// Halfway down the nose.
    NoseBridgeLow,
    /// The sides of the nostrils.
    RightAla,
    LeftAla,
}

pub const SLOTS: usize = 20;

/// Face-mesh indices of the nose points `landmarks::index` does not name.
mod mesh {
    pub const NOSE_BRIDGE: usize = 168;
    pub const NOSE_BRIDGE_LOW: usize = 6;
    pub const RIGHT_ALA: usize = 98;
    pub const LEFT_ALA: usize = 327;
}

/// Mesh index for each slot, in `Slot` order.
const MESH_INDEX: [usize; SLOTS] = [
    index::RIGHT_EYE_OUTER,
    index::RIGHT_EYE_INNER,
    index::RIGHT_EYE_UPPER,
    index::RIGHT_EYE_LOWER,
    index::LEFT_EYE_OUTER,
    index::LEFT_EYE_INNER,
    index::LEFT_EYE_UPPER,
    index::LEFT_EYE_LOWER,
    index::NOSE_TIP,
    index::NOSE_BASE,
    index::MOUTH_RIGHT,
    index::MOUTH_LEFT,
    index::CHIN,
    index::FOREHEAD,
    index::RIGHT_CHEEK,
    index::LEFT_CHEEK,
    mesh::NOSE_BRIDGE,
    mesh::NOSE_BRIDGE_LOW,
    mesh::RIGHT_ALA,
    mesh::LEFT_ALA,
];

/// Slots on rigid parts of the face (no eyelids, no mouth) that the mesh
/// places from what it sees (corners, nose), used for the planarity fit.
/// Outline points (cheeks, chin, forehead) are left out: on a tilted
/// photo the mesh bends them to fit its 3-D face prior, which looks like
/// parallax. Measured on the face mesh (real head video against photos
/// warped by homographies), parallax over shape change was ≥ 0.47 for
/// every moving head frame with these points, and mostly under 0.35 for
/// pictures; with the outline points the two overlapped.
const RIGID: [Slot; 10] = [
    Slot::RightEyeOuter,
    Slot::RightEyeInner,
    Slot::LeftEyeOuter,
    Slot::LeftEyeInner,
    Slot::NoseTip,
    Slot::NoseBase,
    Slot::NoseBridge,
    Slot::NoseBridgeLow,
    Slot::RightAla,
    Slot::LeftAla,
];

/// The landmarks of one frame, in image pixels.
#[derive(Debug, Clone)]
pub struct LivenessSample {
    pub points: [Point; SLOTS],
}

impl LivenessSample {
    pub fn from_mesh(mesh: &FaceMesh) -> Self {
        Self {
            points: MESH_INDEX.map(|i| mesh.point(i)),
        }
    }

    fn at(&self, slot: Slot) -> Point {
        self.points[slot as usize]
    }

    /// Eye openness: lid gap over eye width, averaged over both eyes.
    pub fn eye_openness(&self) -> f32 {
        let eye = |outer, inner, upper, lower| {
            let width = self.at(outer).distance(self.at(inner)).max(1e-3);
            self.at(upper).distance(self.at(lower)) / width
        };
        (eye(
            Slot::RightEyeOuter,
            Slot::RightEyeInner,
            Slot::RightEyeUpper,
            Slot::RightEyeLower,
        ) + eye(
            Slot::LeftEyeOuter,
            Slot::LeftEyeInner,
            Slot::LeftEyeUpper,
            Slot::LeftEyeLower,
        )) / 2.0
    }

    /// Signed turn: the nose tip's offset from the cheeks' midpoint along the
    /// cheek line, over half the cheek distance. Positive when the nose moves
    /// towards the image right.
    pub fn turn(&self) -> f32 {
        let (r, l) = (self.at(Slot::RightCheek), self.at(Slot::LeftCheek));
        let (dx, dy) = (l.x - r.x, l.y - r.y);
        let len = dx.hypot(dy).max(1e-3);
        let mid = r.midpoint(l);
        let nose = self.at(Slot::NoseTip);
        ((nose.x - mid.x) * dx + (nose.y - mid.y) * dy) / len / (len / 2.0)
    }

    /// The nose tip's signed distance from the line nose bridge → nose base,
    /// in eye distances: it changes as a head turns (the tip stands in
    /// front of that line), not as a picture of one moves.
    pub fn midline_offset(&self) -> f32 {
        texture::line_offset([
            self.at(Slot::NoseTip),
            self.at(Slot::NoseBridge),
            self.at(Slot::NoseBase),
        ]) / self.eye_distance().max(1e-3)
    }

    /// Midpoint of the outer eye corners: where the face is.
    pub fn eye_centre(&self) -> Point {
        self.at(Slot::RightEyeOuter)
            .midpoint(self.at(Slot::LeftEyeOuter))
    }

    /// Distance between the outer eye corners: the face's scale.
    pub fn eye_distance(&self) -> f32 {
        self.at(Slot::RightEyeOuter)
            .distance(self.at(Slot::LeftEyeOuter))
    }

    /// Width over height: eye distance over the distance from the eyes'
    /// midpoint to the mouth's. Turning away (a head or a picture) narrows
    /// it; moving nearer or further does not change it.
    pub fn aspect(&self) -> f32 {
        let mouth = self.at(Slot::MouthRight).midpoint(self.at(Slot::MouthLeft));
        self.eye_distance() / self.eye_centre().distance(mouth).max(1e-3)
    }
}

/// The side the person is asked to turn to, as seen in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnSide {
    ImageLeft,
    ImageRight,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessConfig {
    /// A blink: openness falls below this fraction of the open-eye level…
    pub blink_closed_fraction: f32,
    /// …and comes back above this fraction.
    pub blink_reopened_fraction: f32,
    /// The turn must change by at least this much towards the asked side.
    pub min_turn: f32,
    /// Homography residual (RMS, in eye distances) above which the motion is
    /// not planar. A picture stays near landmark noise (~0.005).
    pub min_parallax: f32,
    pub require_blink: bool,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            blink_closed_fraction: 0.55,
            blink_reopened_fraction: 0.8,
            min_turn: 0.25,
            min_parallax: 0.02,
            require_blink: true,
        }
    }
}

/// Why a sequence was judged not live (or could not be judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessFailure {
    TooFewFrames,
    NoBlink,
    NoTurn,
    WrongSide,
    Planar,
}

#[derive(Debug, Clone, Serialize)]
pub struct LivenessReport {
    pub blinked: bool,
    /// Largest turn change towards the asked side.
    pub turn_change: f32,
    /// RMS homography residual between the most frontal and most turned
    /// frames, in eye distances.
    pub parallax: f32,
    pub live: bool,
    pub failure: Option<LivenessFailure>,
}

/// Judges a landmark sequence against the challenge `side`.
pub fn judge(
    samples: &[LivenessSample],
    side: TurnSide,
    config: &LivenessConfig,
) -> LivenessReport {
    let fail = |failure, blinked, turn_change, parallax| LivenessReport {
        blinked,
        turn_change,
        parallax,
        live: false,
        failure: Some(failure),
    };
    if samples.len() < 3 {
        return fail(LivenessFailure::TooFewFrames, false, 0.0, 0.0);
    }
    let blinked = detect_blink(samples, config);
    let start = samples[0].turn();
    let sign = match side {
        TurnSide::ImageRight => 1.0,
        TurnSide::ImageLeft => -1.0,
    };
    let (turned_index, turn_change) = samples
        .iter()
        .enumerate()
        .map(|(i, s)| (i, (s.turn() - start) * sign))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    let opposite = samples
        .iter()
        .map(|s| (s.turn() - start) * -sign)
        .fold(0.0f32, f32::max);
    let parallax = planar_residual(&samples[0], &samples[turned_index]);
    if config.require_blink && !blinked {
        return fail(LivenessFailure::NoBlink, blinked, turn_change, parallax);
    }
    if turn_change < config.min_turn {
        let failure = if opposite >= config.min_turn {
            LivenessFailure::WrongSide
        } else {
            LivenessFailure::NoTurn
        };
        return fail(failure, blinked, turn_change, parallax);
    }
    if parallax < config.min_parallax {
        return fail(LivenessFailure::Planar, blinked, turn_change, parallax);
    }
    LivenessReport {
        blinked,
        turn_change,
        parallax,
        live: true,
        failure: None,
    }
}

/// Open-eye level = the 80th percentile of openness; a blink is a dip below
/// the closed fraction followed by a return above the reopened fraction.
pub fn detect_blink(samples: &[LivenessSample], config: &LivenessConfig) -> bool {
    let openness: Vec<f32> = samples.iter().map(LivenessSample::eye_openness).collect();
    let mut sorted = openness.clone();
    sorted.sort_by(f32::total_cmp);
    let open = sorted[(sorted.len() * 4 / 5).min(sorted.len() - 1)];
    let mut closed = false;
    for v in openness {
        if v < open * config.blink_closed_fraction {
            closed = true;
        } else if closed && v > open * config.blink_reopened_fraction {
            return true;
        }
    }
    false
}

/// RMS residual of the best homography from `a`'s rigid points to `b`'s,
/// in units of `a`'s eye distance.
pub fn planar_residual(a: &LivenessSample, b: &LivenessSample) -> f32 {
    let src: Vec<Point> = RIGID.iter().map(|&s| a.at(s)).collect();
    let dst: Vec<Point> = RIGID.iter().map(|&s| b.at(s)).collect();
    let Some(h) = fit_homography(&src, &dst) else {
        return 0.0;
    };
    let sq: f64 = src
        .iter()
        .zip(&dst)
        .map(|(p, q)| {
            let m = h.apply(*p);
            ((m.x - q.x) as f64).powi(2) + ((m.y - q.y) as f64).powi(2)
        })
        .sum();
    ((sq / src.len() as f64).sqrt() as f32) / a.eye_distance().max(1e-3)
}

/// How much the rigid landmarks changed shape from `a` to `b` beyond a
/// shift, scale and roll (RMS, in `a`'s eye distances). A face moving
/// sideways or closer barely changes shape; a head turning, or a picture
/// tilted, does. Only a shape change can tell a head from a plane, so the
/// planarity check needs one before it judges.
pub fn shape_change(a: &LivenessSample, b: &LivenessSample) -> f32 {
    let src: Vec<Point> = RIGID.iter().map(|&s| a.at(s)).collect();
    let dst: Vec<Point> = RIGID.iter().map(|&s| b.at(s)).collect();
    similarity_residual(&src, &dst).unwrap_or(0.0) / a.eye_distance().max(1e-3)
}
