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
//! Everything here is a pure function of landmark sequences, so it is tested
//! with synthetic heads and pictures; the daemon feeds it camera frames.

use serde::{Deserialize, Serialize};

use super::geometry::Point;
use super::landmarks::{FaceMesh, index};

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
}

pub const SLOTS: usize = 16;

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
];

/// Slots that lie on rigid parts of the face (no eyelids, no mouth), used
/// for the planarity fit.
const RIGID: [Slot; 10] = [
    Slot::RightEyeOuter,
    Slot::RightEyeInner,
    Slot::LeftEyeOuter,
    Slot::LeftEyeInner,
    Slot::NoseTip,
    Slot::NoseBase,
    Slot::Chin,
    Slot::Forehead,
    Slot::RightCheek,
    Slot::LeftCheek,
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

    /// Distance between the outer eye corners: the face's scale.
    pub fn eye_distance(&self) -> f32 {
        self.at(Slot::RightEyeOuter)
            .distance(self.at(Slot::LeftEyeOuter))
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
fn detect_blink(samples: &[LivenessSample], config: &LivenessConfig) -> bool {
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

/// A 3×3 projective transform, h[2][2] = 1.
#[derive(Debug, Clone, Copy)]
pub struct Homography([[f64; 3]; 3]);

impl Homography {
    pub fn apply(&self, p: Point) -> Point {
        let h = &self.0;
        let (x, y) = (p.x as f64, p.y as f64);
        let w = h[2][0] * x + h[2][1] * y + h[2][2];
        Point::new(
            ((h[0][0] * x + h[0][1] * y + h[0][2]) / w) as f32,
            ((h[1][0] * x + h[1][1] * y + h[1][2]) / w) as f32,
        )
    }
}

/// Least-squares homography (DLT with h33 = 1, on Hartley-normalised
/// points so the normal equations stay well conditioned).
pub fn fit_homography(src: &[Point], dst: &[Point]) -> Option<Homography> {
    if src.len() < 4 || src.len() != dst.len() {
        return None;
    }
    let (ns, ts) = normaliser(src)?;
    let (nd, td) = normaliser(dst)?;
    let mut ata = [[0.0f64; 8]; 8];
    let mut atb = [0.0f64; 8];
    for (p, q) in ns.iter().zip(&nd) {
        let (x, y, u, v) = (p.0, p.1, q.0, q.1);
        let rows = [
            ([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u),
            ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v),
        ];
        for (row, rhs) in rows {
            for i in 0..8 {
                atb[i] += row[i] * rhs;
                for j in 0..8 {
                    ata[i][j] += row[i] * row[j];
                }
            }
        }
    }
    let h = solve8(ata, atb)?;
    let hn = [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]];
    // Undo the normalisation: H = Td⁻¹ · Hn · Ts.
    let m = mul(&mul(&inverse_similarity(&td), &hn), &ts);
    (m[2][2].abs() > 1e-12).then(|| Homography(m.map(|r| r.map(|v| v / m[2][2]))))
}

type Mat3 = [[f64; 3]; 3];

fn mul(a: &Mat3, b: &Mat3) -> Mat3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// Points centred on their mean and scaled to mean distance √2, with the matrix doing it.
fn normaliser(points: &[Point]) -> Option<(Vec<(f64, f64)>, Mat3)> {
    let n = points.len() as f64;
    let cx = points.iter().map(|p| p.x as f64).sum::<f64>() / n;
    let cy = points.iter().map(|p| p.y as f64).sum::<f64>() / n;
    let mean_dist = points
        .iter()
        .map(|p| (p.x as f64 - cx).hypot(p.y as f64 - cy))
        .sum::<f64>()
        / n;
    if mean_dist <= 1e-9 {
        return None;
    }
    let s = std::f64::consts::SQRT_2 / mean_dist;
    let t = [[s, 0.0, -s * cx], [0.0, s, -s * cy], [0.0, 0.0, 1.0]];
    let out = points
        .iter()
        .map(|p| (s * (p.x as f64 - cx), s * (p.y as f64 - cy)))
        .collect();
    Some((out, t))
}

fn inverse_similarity(t: &Mat3) -> Mat3 {
    let s = t[0][0];
    [
        [1.0 / s, 0.0, -t[0][2] / s],
        [0.0, 1.0 / s, -t[1][2] / s],
        [0.0, 0.0, 1.0],
    ]
}

/// Gaussian elimination with partial pivoting.
fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..8 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (v, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0f64; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic head: 3-D positions (x right, y down, z away from the
    /// camera, in mm around the head's centre) for each slot.
    fn head(eyes_closed: f32) -> [[f32; 3]; SLOTS] {
        let lid = 5.0 * (1.0 - eyes_closed);
        [
            [-45.0, -30.0, -55.0], // right eye outer
            [-18.0, -30.0, -62.0], // right eye inner
            [-31.0, -30.0 - lid, -63.0],
            [-31.0, -30.0 + lid, -63.0],
            [45.0, -30.0, -55.0],
            [18.0, -30.0, -62.0],
            [31.0, -30.0 - lid, -63.0],
            [31.0, -30.0 + lid, -63.0],
            [0.0, 5.0, -95.0],  // nose tip sticks out
            [0.0, 18.0, -78.0], // nose base
            [-25.0, 40.0, -65.0],
            [25.0, 40.0, -65.0],
            [0.0, 75.0, -60.0],   // chin
            [0.0, -75.0, -65.0],  // forehead
            [-70.0, 10.0, -20.0], // cheeks, set back
            [70.0, 10.0, -20.0],
        ]
    }

    /// Perspective view of 3-D points turned by `yaw` degrees about the
    /// vertical axis, at 600 mm with a 900 px focal length, centred at (320, 240).
    fn view(points: &[[f32; 3]; SLOTS], yaw: f32) -> LivenessSample {
        let (s, c) = yaw.to_radians().sin_cos();
        let points = points.map(|[x, y, z]| {
            let (xr, zr) = (c * x + s * z, -s * x + c * z);
            let depth = 600.0 + zr;
            Point::new(320.0 + 900.0 * xr / depth, 240.0 + 900.0 * y / depth)
        });
        LivenessSample { points }
    }

    /// A real head: looks ahead, blinks, then turns `yaw_end` degrees
    /// (positive yaw brings the nose towards the image left).
    fn live_sequence(yaw_end: f32) -> Vec<LivenessSample> {
        let mut seq = Vec::new();
        for closed in [0.0, 0.0, 0.9, 0.0, 0.0] {
            seq.push(view(&head(closed), 0.0));
        }
        for i in 1..=6 {
            seq.push(view(&head(0.0), yaw_end * i as f32 / 6.0));
        }
        seq
    }

    /// A flat picture of the frontal face, blinking impossible, moved in
    /// front of the camera: each frame is one homography (the picture plane
    /// tilted about its vertical axis and shifted) of the first.
    fn photo_sequence(tilt_end: f32) -> Vec<LivenessSample> {
        let flat = view(&head(0.0), 0.0);
        (0..10)
            .map(|i| {
                let t = (tilt_end * i as f32 / 9.0).to_radians();
                let points = flat.points.map(|p| {
                    // Picture plane at z=0 around (320, 240), rotated by t and projected.
                    let (x, y) = (p.x - 320.0, p.y - 240.0);
                    let (xr, zr) = (x * t.cos(), -x * t.sin());
                    let depth = 900.0 + zr;
                    Point::new(
                        320.0 + 900.0 * xr / depth + 15.0 * i as f32,
                        240.0 + 900.0 * y / depth,
                    )
                });
                LivenessSample { points }
            })
            .collect()
    }

    #[test]
    fn a_turning_blinking_head_is_live() {
        let report = judge(
            &live_sequence(25.0),
            TurnSide::ImageLeft,
            &LivenessConfig::default(),
        );
        assert!(report.live, "{report:?}");
        assert!(report.blinked);
        assert!(report.parallax > 0.02, "{report:?}");
    }

    #[test]
    fn turning_to_the_wrong_side_fails() {
        let report = judge(
            &live_sequence(25.0),
            TurnSide::ImageRight,
            &LivenessConfig::default(),
        );
        assert_eq!(
            report.failure,
            Some(LivenessFailure::WrongSide),
            "{report:?}"
        );
    }

    #[test]
    fn a_tilted_photo_is_planar() {
        let seq = photo_sequence(40.0);
        let a = &seq[0];
        let b = &seq[9];
        assert!(planar_residual(a, b) < 1e-3, "{}", planar_residual(a, b));
        // Even with blink and turn requirements waived, planarity rejects it.
        let lenient = LivenessConfig {
            require_blink: false,
            min_turn: -1.0,
            ..LivenessConfig::default()
        };
        let report = judge(&seq, TurnSide::ImageRight, &lenient);
        assert_eq!(report.failure, Some(LivenessFailure::Planar), "{report:?}");
    }

    #[test]
    fn a_photo_cannot_blink() {
        let report = judge(
            &photo_sequence(30.0),
            TurnSide::ImageRight,
            &LivenessConfig::default(),
        );
        assert_eq!(report.failure, Some(LivenessFailure::NoBlink));
    }

    #[test]
    fn noisy_landmarks_on_a_photo_stay_below_the_parallax_threshold() {
        // ±0.5 px jitter, deterministic.
        let mut seq = photo_sequence(35.0);
        for (i, s) in seq.iter_mut().enumerate() {
            for (j, p) in s.points.iter_mut().enumerate() {
                p.x += (((i * 31 + j * 17) % 11) as f32 / 10.0) - 0.5;
                p.y += (((i * 13 + j * 7) % 11) as f32 / 10.0) - 0.5;
            }
        }
        let r = planar_residual(&seq[0], &seq[9]);
        assert!(r < LivenessConfig::default().min_parallax, "{r}");
    }

    #[test]
    fn homography_fit_recovers_a_projective_map() {
        let h = Homography([[1.1, 0.05, 3.0], [-0.02, 0.95, -4.0], [1e-4, -2e-4, 1.0]]);
        let src: Vec<Point> = (0..8)
            .map(|i| Point::new((i * 37 % 100) as f32, (i * 53 % 90) as f32))
            .collect();
        let dst: Vec<Point> = src.iter().map(|&p| h.apply(p)).collect();
        let fit = fit_homography(&src, &dst).expect("fit");
        for (p, q) in src.iter().zip(&dst) {
            assert!(fit.apply(*p).distance(*q) < 1e-2);
        }
        assert!(fit_homography(&src[..3], &dst[..3]).is_none());
    }

    #[test]
    fn too_few_frames_cannot_be_judged() {
        let report = judge(
            &live_sequence(25.0)[..2],
            TurnSide::ImageRight,
            &LivenessConfig::default(),
        );
        assert_eq!(report.failure, Some(LivenessFailure::TooFewFrames));
    }
}
