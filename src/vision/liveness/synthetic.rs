//! Synthetic heads and pictures for liveness tests: 3-D landmark positions
//! seen through a pinhole camera, so real parallax and pure homographies
//! are known exactly. Shared by the vision and the decision tests.

use super::{LivenessSample, SLOTS};
use crate::vision::geometry::Point;

/// A synthetic head: 3-D positions (x right, y down, z away from the
/// camera, in mm around the head's centre) for each slot.
pub fn head(eyes_closed: f32) -> [[f32; 3]; SLOTS] {
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
        [0.0, -30.0, -70.0],  // nose bridge between the eyes
        [0.0, -12.0, -82.0],  // halfway down
        [-17.0, 12.0, -72.0], // alae
        [17.0, 12.0, -72.0],
    ]
}

/// Perspective view of 3-D points turned by `yaw` degrees about the
/// vertical axis, at 600 mm with a 900 px focal length, centred at (320, 240).
pub fn view(points: &[[f32; 3]; SLOTS], yaw: f32) -> LivenessSample {
    view_posed(points, yaw, 0.0, (0.0, 0.0))
}

/// Like [`view`], also nodding by `pitch` degrees and shifted by `shift`
/// pixels (a person swaying while standing).
pub fn view_posed(
    points: &[[f32; 3]; SLOTS],
    yaw: f32,
    pitch: f32,
    shift: (f32, f32),
) -> LivenessSample {
    let (s, c) = yaw.to_radians().sin_cos();
    let (sp, cp) = pitch.to_radians().sin_cos();
    let points = points.map(|[x, y, z]| {
        let (xr, zr) = (c * x + s * z, -s * x + c * z);
        let (yr, zr) = (cp * y - sp * zr, sp * y + cp * zr);
        let depth = 600.0 + zr;
        Point::new(
            320.0 + shift.0 + 900.0 * xr / depth,
            240.0 + shift.1 + 900.0 * yr / depth,
        )
    });
    LivenessSample { points }
}

/// A real head: looks ahead, blinks, then turns `yaw_end` degrees
/// (positive yaw brings the nose towards the image left).
pub fn live_sequence(yaw_end: f32) -> Vec<LivenessSample> {
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
pub fn photo_sequence(tilt_end: f32) -> Vec<LivenessSample> {
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

/// Adds a deterministic ±`amplitude` px jitter (landmark noise) to every point.
pub fn jitter(seq: &mut [LivenessSample], amplitude: f32) {
    for (i, s) in seq.iter_mut().enumerate() {
        for (j, p) in s.points.iter_mut().enumerate() {
            p.x += ((((i * 31 + j * 17) % 11) as f32 / 10.0) - 0.5) * 2.0 * amplitude;
            p.y += ((((i * 13 + j * 7) % 11) as f32 / 10.0) - 0.5) * 2.0 * amplitude;
        }
    }
}

/// A face mesh whose liveness landmarks are `sample`'s (the other points
/// sit at the eyes' midpoint), as the landmark stage would return it.
pub fn mesh_of(sample: &LivenessSample) -> crate::vision::landmarks::FaceMesh {
    let c = sample.eye_centre();
    let mut points = vec![[c.x, c.y, 0.0]; crate::vision::landmarks::MESH_POINTS];
    for (i, p) in super::MESH_INDEX.iter().zip(sample.points) {
        points[*i] = [p.x, p.y, 0.0];
    }
    crate::vision::landmarks::FaceMesh {
        points,
        presence: 1.0,
    }
}
