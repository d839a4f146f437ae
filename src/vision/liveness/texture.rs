//! The mesh's nose, checked in the pixels.
//!
//! Why: FaceMesh draws landmarks from its 3-D face prior, and on a print
//! bent round a cylinder and turned it sometimes draws a turned head: the
//! nose tip leaves the line from the nose bridge to the nose base, as it
//! does on a real head. The pixels know better. A vertical line on a bent
//! sheet is a straight ruling of the cylinder, so the printed tip, bridge
//! and base stay on one straight line in every view; a real nose tip
//! stands about 2 cm in front of that line and moves off it as the head
//! turns. So the texture of the three points is tracked from an earlier
//! frame into a later one (normalised cross-correlation, checked forwards
//! and backwards), and the tip's move off the line is measured on the
//! tracked points rather than on the mesh's.
//!
//! Both frames are first resampled so that the eyes are `VIEW_EYE_PX`
//! apart: patches then compare at one scale whatever the camera's
//! resolution, and the search costs the same on every device.

use image::RgbImage;

use super::{LivenessSample, Slot};
use crate::vision::geometry::Point;
use crate::vision::luma::luma;
use crate::vision::warp::bilinear;

/// Eye distance of a view, in view pixels.
const VIEW_EYE_PX: f32 = 64.0;
/// Half the side of a tracked patch (0.12 eye distances).
const PATCH_RADIUS: i32 = 8;
/// How far from the mesh's guess a patch is searched for (0.15 eye
/// distances: the mesh may put a print's tip that far from its texture).
const SEARCH_RADIUS: i32 = 10;
/// The backward search only has to find the way home.
const BACK_RADIUS: i32 = 3;
/// A match below this correlation is not the same patch. A turning nose
/// changes its look (its side comes into view), so this cannot be strict:
/// 0.8 left a live head unconfirmed on twice as many frames and 9 of 60
/// live clips of a second generated set timed out; with 0.7 and the round
/// trip below, none did, and no print moved, tilted or bent showed a head.
const MIN_CORRELATION: f32 = 0.7;
/// Tracked back into the earlier frame, a patch must land this close to
/// where it started (eye distances); a wrong match seldom does.
const MAX_ROUND_TRIP: f32 = 0.05;
/// A patch this flat (grey-level standard deviation) has nothing to track.
const MIN_CONTRAST: f32 = 2.0;

/// The tracked points, in `Slot` order: tip, bridge, base.
const MIDLINE: [Slot; 3] = [Slot::NoseTip, Slot::NoseBridge, Slot::NoseBase];

/// Luma around the nose midline of one frame, resampled to `VIEW_EYE_PX`.
#[derive(Debug, Clone)]
pub struct MidlineView {
    width: i32,
    height: i32,
    luma: Vec<f32>,
    /// Summed-area tables of luma and luma², (width + 1) × (height + 1):
    /// any patch's mean and contrast in four reads.
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    /// The mesh's tip, bridge and base, in view pixels.
    points: [Point; 3],
}

impl MidlineView {
    /// The view of `frame` around `sample`'s midline, with room to search
    /// for patches; `None` when the face is too small to track or its
    /// midline runs off the frame.
    pub fn capture(frame: &RgbImage, sample: &LivenessSample) -> Option<Self> {
        let eye = sample.eye_distance();
        if eye < 8.0 {
            return None;
        }
        let scale = VIEW_EYE_PX / eye;
        let at = MIDLINE.map(|s| sample.at(s));
        let margin = (PATCH_RADIUS + SEARCH_RADIUS + 2) as f32;
        let (min_x, max_x) = span(at.iter().map(|p| p.x * scale));
        let (min_y, max_y) = span(at.iter().map(|p| p.y * scale));
        let (x0, y0) = ((min_x - margin).floor(), (min_y - margin).floor());
        let (width, height) = (
            (max_x + margin).ceil() as i32 - x0 as i32 + 1,
            (max_y + margin).ceil() as i32 - y0 as i32 + 1,
        );
        // Every sample must come from inside the frame: the black outside
        // would be texture that moves with the frame, not the face.
        let (fw, fh) = (frame.width() as f32, frame.height() as f32);
        if x0 / scale < 0.0
            || y0 / scale < 0.0
            || (x0 + width as f32) / scale >= fw - 1.0
            || (y0 + height as f32) / scale >= fh - 1.0
        {
            return None;
        }
        // Shrinking by more than a third: average 2×2 samples per view
        // pixel so that fine texture does not alias differently from frame
        // to frame.
        let offsets: &[(f32, f32)] = if scale < 0.75 {
            &[(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)]
        } else {
            &[(0.0, 0.0)]
        };
        let mut grey = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                let sum: f32 = offsets
                    .iter()
                    .map(|(dx, dy)| {
                        let p =
                            Point::new((x0 + x as f32 + dx) / scale, (y0 + y as f32 + dy) / scale);
                        luma(bilinear(frame, p))
                    })
                    .sum();
                grey.push(sum / offsets.len() as f32);
            }
        }
        let (w1, h1) = (width as usize + 1, height as usize + 1);
        let (mut sum, mut sum_sq) = (vec![0.0f64; w1 * h1], vec![0.0f64; w1 * h1]);
        for y in 0..height as usize {
            let (mut row, mut row_sq) = (0.0f64, 0.0f64);
            for x in 0..width as usize {
                let v = f64::from(grey[y * width as usize + x]);
                row += v;
                row_sq += v * v;
                sum[(y + 1) * w1 + x + 1] = sum[y * w1 + x + 1] + row;
                sum_sq[(y + 1) * w1 + x + 1] = sum_sq[y * w1 + x + 1] + row_sq;
            }
        }
        Some(Self {
            width,
            height,
            luma: grey,
            sum,
            sum_sq,
            points: at.map(|p| Point::new(p.x * scale - x0, p.y * scale - y0)),
        })
    }

    /// Whether the patch centred on pixel (x, y) lies inside the view.
    fn holds(&self, x: i32, y: i32) -> bool {
        let r = PATCH_RADIUS;
        x - r >= 0 && y - r >= 0 && x + r < self.width && y + r < self.height
    }

    /// Sum of luma and the root of the sum of squared deviations from the
    /// mean, over the patch centred on (x, y) (inside the view).
    fn patch_stats(&self, x: i32, y: i32) -> (f64, f64) {
        let r = PATCH_RADIUS;
        let w1 = self.width as usize + 1;
        let (x0, y0) = ((x - r) as usize, (y - r) as usize);
        let (x1, y1) = ((x + r + 1) as usize, (y + r + 1) as usize);
        let box_sum =
            |t: &[f64]| t[y1 * w1 + x1] - t[y0 * w1 + x1] - t[y1 * w1 + x0] + t[y0 * w1 + x0];
        let n = f64::from((2 * r + 1) * (2 * r + 1));
        let (s, q) = (box_sum(&self.sum), box_sum(&self.sum_sq));
        (s, (q - s * s / n).max(0.0).sqrt())
    }

    /// The patch centred on (x, y) less its mean, and its norm; `None` off
    /// the view or too flat to track.
    fn template(&self, x: i32, y: i32) -> Option<(Vec<f32>, f32)> {
        if !self.holds(x, y) {
            return None;
        }
        let r = PATCH_RADIUS;
        let side = 2 * r + 1;
        let (s, norm) = self.patch_stats(x, y);
        if norm / f64::from(side) < f64::from(MIN_CONTRAST) {
            return None;
        }
        let mean = (s / f64::from(side * side)) as f32;
        let mut v = Vec::with_capacity((side * side) as usize);
        for yy in y - r..=y + r {
            let row = (yy * self.width) as usize;
            v.extend(
                self.luma[row + (x - r) as usize..=row + (x + r) as usize]
                    .iter()
                    .map(|p| p - mean),
            );
        }
        Some((v, norm as f32))
    }

    /// Normalised cross-correlation of a zero-mean `template` (norm
    /// `norm`) with the patch centred on (x, y); `None` off the view or on
    /// a flat patch. The template's zero mean makes the patch's own mean
    /// drop out of the dot product.
    fn correlation(&self, template: &[f32], norm: f32, x: i32, y: i32) -> Option<f32> {
        if !self.holds(x, y) {
            return None;
        }
        let (_, patch_norm) = self.patch_stats(x, y);
        if patch_norm < 1e-3 {
            return None;
        }
        let r = PATCH_RADIUS;
        let side = (2 * r + 1) as usize;
        let mut dot = 0.0f32;
        for (k, yy) in (y - r..=y + r).enumerate() {
            let row = (yy * self.width + x - r) as usize;
            dot += template[k * side..(k + 1) * side]
                .iter()
                .zip(&self.luma[row..row + side])
                .map(|(a, b)| a * b)
                .sum::<f32>();
        }
        Some(dot / (norm * patch_norm as f32))
    }

    /// Where the patch around `from` in `self` is in `other`, searched
    /// within `radius` pixels of `guess`: the best correlation, refined to
    /// a fraction of a pixel, and its correlation.
    fn find_in(
        &self,
        from: Point,
        other: &Self,
        guess: Point,
        radius: i32,
    ) -> Option<(Point, f32)> {
        let (fx, fy) = (from.x.round() as i32, from.y.round() as i32);
        let (template, norm) = self.template(fx, fy)?;
        let (gx, gy) = (guess.x.round() as i32, guess.y.round() as i32);
        let side = (2 * radius + 1) as usize;
        let mut scores = vec![f32::NAN; side * side];
        for dy in -radius..=radius {
            for dx in -radius..=radius {
                if let Some(c) = other.correlation(&template, norm, gx + dx, gy + dy) {
                    scores[((dy + radius) as usize) * side + (dx + radius) as usize] = c;
                }
            }
        }
        let (best, &score) = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_finite())
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        let (bx, by) = ((best % side) as i32, (best / side) as i32);
        let at = |x: i32, y: i32| {
            (x >= 0 && y >= 0 && x < side as i32 && y < side as i32)
                .then(|| scores[y as usize * side + x as usize])
                .filter(|s| s.is_finite())
        };
        let sub = |minus: Option<f32>, plus: Option<f32>| match (minus, plus) {
            (Some(m), Some(p)) if (m - 2.0 * score + p).abs() > 1e-6 => {
                (0.5 * (m - p) / (m - 2.0 * score + p)).clamp(-0.5, 0.5)
            }
            _ => 0.0,
        };
        let ox = sub(at(bx - 1, by), at(bx + 1, by));
        let oy = sub(at(bx, by - 1), at(bx, by + 1));
        // The template was cut at the rounded point: carry the fraction.
        let found = Point::new(
            (gx + bx - radius) as f32 + ox + (from.x - fx as f32),
            (gy + by - radius) as f32 + oy + (from.y - fy as f32),
        );
        Some((found, score))
    }
}

/// How far the nose tip's texture moved off the bridge–base line from
/// `earlier` to `later`, in eye distances, signed as
/// `LivenessSample::midline_offset`; `None` when any of the three points
/// cannot be tracked with confidence (too little texture, a weak match, or
/// a match that does not lead back to where it started).
pub fn tip_shift(earlier: &MidlineView, later: &MidlineView) -> Option<f32> {
    let mut tracked = [Point::default(); 3];
    for (i, slot) in tracked.iter_mut().enumerate() {
        let from = earlier.points[i];
        let (to, score) = earlier.find_in(from, later, later.points[i], SEARCH_RADIUS)?;
        let (back, _) = later.find_in(to, earlier, from, BACK_RADIUS)?;
        if score < MIN_CORRELATION || back.distance(from) > MAX_ROUND_TRIP * VIEW_EYE_PX {
            return None;
        }
        *slot = to;
    }
    Some((line_offset(tracked) - line_offset(earlier.points)) / VIEW_EYE_PX)
}

/// Signed distance of the tip from the line bridge → base (pixels of
/// whatever the points are in).
pub(super) fn line_offset([tip, bridge, base]: [Point; 3]) -> f32 {
    let (dx, dy) = (base.x - bridge.x, base.y - bridge.y);
    let len = dx.hypot(dy).max(1e-3);
    ((tip.x - bridge.x) * -dy + (tip.y - bridge.y) * dx) / len
}

fn span(values: impl Iterator<Item = f32>) -> (f32, f32) {
    values.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

#[cfg(test)]
mod tests;
