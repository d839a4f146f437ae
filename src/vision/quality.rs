//! Quality gate: is this face good enough to enrol or to decide on?
//!
//! Each check measures something an operator can act on (come closer, hold
//! still, face the camera, more light), so each failure has its own reason.

use serde::{Deserialize, Serialize};

use super::align::FaceChip;
use super::detect::Detection;
use super::landmarks::{FaceMesh, index};
use super::luma::luma;

/// What was measured on one face.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct QualityReport {
    /// Distance between the outer eye corners, in image pixels.
    pub eye_distance_px: f32,
    /// Variance of the Laplacian over the chip's centre (higher = sharper).
    pub sharpness: f32,
    /// Head pose in degrees: yaw (+ = turned to the subject's left), pitch, roll.
    pub yaw_deg: f32,
    pub pitch_deg: f32,
    pub roll_deg: f32,
    /// Mean luminance of the chip's centre, 0..255.
    pub brightness: f32,
    /// Fraction of centre pixels that are clipped black or white.
    pub clipped: f32,
    /// Detector confidence.
    pub detection_score: f32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    pub min_eye_distance_px: f32,
    pub min_sharpness: f32,
    pub max_yaw_deg: f32,
    pub max_pitch_deg: f32,
    pub max_roll_deg: f32,
    pub min_brightness: f32,
    pub max_brightness: f32,
    pub max_clipped: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_eye_distance_px: 30.0,
            min_sharpness: 15.0,
            max_yaw_deg: 30.0,
            max_pitch_deg: 30.0,
            max_roll_deg: 30.0,
            min_brightness: 40.0,
            max_brightness: 220.0,
            max_clipped: 0.25,
        }
    }
}

/// Why a face failed the gate, with the hint an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityFailure {
    TooSmall,
    Blurry,
    Pose,
    TooDark,
    TooBright,
}

impl QualityFailure {
    pub fn hint(self) -> &'static str {
        match self {
            Self::TooSmall => "face too small: come closer",
            Self::Blurry => "image blurred: hold still",
            Self::Pose => "face the camera",
            Self::TooDark => "too dark",
            Self::TooBright => "too bright or backlit",
        }
    }
}

impl QualityConfig {
    /// Every check the report fails, in the order an operator should fix them.
    pub fn failures(&self, q: &QualityReport) -> Vec<QualityFailure> {
        let mut out = Vec::new();
        if q.eye_distance_px < self.min_eye_distance_px {
            out.push(QualityFailure::TooSmall);
        }
        if q.yaw_deg.abs() > self.max_yaw_deg
            || q.pitch_deg.abs() > self.max_pitch_deg
            || q.roll_deg.abs() > self.max_roll_deg
        {
            out.push(QualityFailure::Pose);
        }
        if q.brightness < self.min_brightness {
            out.push(QualityFailure::TooDark);
        } else if q.brightness > self.max_brightness || q.clipped > self.max_clipped {
            out.push(QualityFailure::TooBright);
        }
        if q.sharpness < self.min_sharpness {
            out.push(QualityFailure::Blurry);
        }
        out
    }
}

/// Measures one face.
pub fn measure(detection: &Detection, mesh: &FaceMesh, chip: &FaceChip) -> QualityReport {
    let (yaw, pitch, roll) = head_pose(mesh);
    let (brightness, clipped, sharpness) = chip_statistics(chip);
    QualityReport {
        eye_distance_px: mesh
            .point(index::RIGHT_EYE_OUTER)
            .distance(mesh.point(index::LEFT_EYE_OUTER)),
        sharpness,
        yaw_deg: yaw,
        pitch_deg: pitch,
        roll_deg: roll,
        brightness,
        clipped,
        detection_score: detection.score,
    }
}

/// Yaw, pitch and roll in degrees from the mesh's 3-D points.
pub fn head_pose(mesh: &FaceMesh) -> (f32, f32, f32) {
    let r = mesh.points[index::RIGHT_EYE_OUTER];
    let l = mesh.points[index::LEFT_EYE_OUTER];
    let top = mesh.points[index::FOREHEAD];
    let bottom = mesh.points[index::CHIN];
    let across = [l[0] - r[0], l[1] - r[1], l[2] - r[2]];
    let down = [bottom[0] - top[0], bottom[1] - top[1], bottom[2] - top[2]];
    let horizontal = across[0].hypot(across[1]);
    let yaw = (-across[2]).atan2(horizontal).to_degrees();
    let vertical = down[0].hypot(down[1]);
    let pitch = down[2].atan2(vertical).to_degrees();
    let roll = across[1].atan2(across[0]).to_degrees();
    (yaw, pitch, roll)
}

/// Brightness, clipped fraction and Laplacian variance over the chip's
/// central half, where the face is and the background is not.
fn chip_statistics(chip: &FaceChip) -> (f32, f32, f32) {
    let n = chip.size;
    let (lo, hi) = (n / 4, n - n / 4);
    let luma = |x: usize, y: usize| {
        let i = (y * n + x) * 3;
        luma([chip.rgb[i], chip.rgb[i + 1], chip.rgb[i + 2]])
    };
    let (mut sum, mut clipped, mut count) = (0.0f64, 0usize, 0usize);
    let (mut lap_sum, mut lap_sq) = (0.0f64, 0.0f64);
    for y in lo..hi {
        for x in lo..hi {
            let v = luma(x, y);
            sum += v as f64;
            count += 1;
            if !(5.0..=250.0).contains(&v) {
                clipped += 1;
            }
            let lap = luma(x - 1, y) + luma(x + 1, y) + luma(x, y - 1) + luma(x, y + 1) - 4.0 * v;
            lap_sum += lap as f64;
            lap_sq += (lap as f64) * (lap as f64);
        }
    }
    let count_f = count.max(1) as f64;
    let mean_lap = lap_sum / count_f;
    let variance = lap_sq / count_f - mean_lap * mean_lap;
    (
        (sum / count_f) as f32,
        clipped as f32 / count.max(1) as f32,
        variance as f32,
    )
}
