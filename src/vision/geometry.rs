//! Points, boxes and the 2-D similarity transform every warp in the vision
//! stages is expressed as.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    pub fn distance(self, other: Point) -> f32 {
        (self.x - other.x).hypot(self.y - other.y)
    }

    pub fn midpoint(self, other: Point) -> Point {
        Point::new((self.x + other.x) / 2.0, (self.y + other.y) / 2.0)
    }
}

/// An axis-aligned box in pixels: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BBox {
    pub fn from_center(cx: f32, cy: f32, width: f32, height: f32) -> Self {
        Self {
            x: cx - width / 2.0,
            y: cy - height / 2.0,
            width,
            height,
        }
    }

    pub fn center(&self) -> Point {
        Point::new(self.x + self.width / 2.0, self.y + self.height / 2.0)
    }

    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union.
    pub fn iou(&self, other: &BBox) -> f32 {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (self.x + self.width).min(other.x + other.width);
        let y1 = (self.y + self.height).min(other.y + other.height);
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// x' = a·x − b·y + tx,  y' = b·x + a·y + ty  (rotation, uniform scale, shift).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity {
        a: 1.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// Scale `s`, rotation `angle` (radians, counter-clockwise in x-right
    /// y-down pixel space appears clockwise), then shift.
    pub fn new(scale: f32, angle: f32, tx: f32, ty: f32) -> Self {
        Self {
            a: scale * angle.cos(),
            b: scale * angle.sin(),
            tx,
            ty,
        }
    }

    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x - self.b * p.y + self.tx,
            self.b * p.x + self.a * p.y + self.ty,
        )
    }

    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }

    /// The least-squares similarity taking each `from[i]` to `to[i]`.
    /// Returns `None` when `from` has no spread (all points equal) or the
    /// slices are empty or of different lengths.
    pub fn fit(from: &[Point], to: &[Point]) -> Option<Similarity> {
        if from.len() != to.len() || from.is_empty() {
            return None;
        }
        let n = from.len() as f64;
        let mean = |pts: &[Point]| {
            let (sx, sy) = pts.iter().fold((0.0f64, 0.0f64), |(sx, sy), p| {
                (sx + p.x as f64, sy + p.y as f64)
            });
            (sx / n, sy / n)
        };
        let (fx, fy) = mean(from);
        let (tx, ty) = mean(to);
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (p, q) in from.iter().zip(to) {
            let (px, py) = (p.x as f64 - fx, p.y as f64 - fy);
            let (qx, qy) = (q.x as f64 - tx, q.y as f64 - ty);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        if norm <= f64::EPSILON {
            return None;
        }
        let a = dot / norm;
        let b = cross / norm;
        Some(Similarity {
            a: a as f32,
            b: b as f32,
            tx: (tx - (a * fx - b * fy)) as f32,
            ty: (ty - (b * fx + a * fy)) as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        let truth = Similarity::new(1.7, 0.3, 12.0, -4.0);
        let from: Vec<Point> = [(0.0, 0.0), (10.0, 2.0), (3.0, 8.0), (-5.0, 4.0)]
            .iter()
            .map(|&(x, y)| Point::new(x, y))
            .collect();
        let to: Vec<Point> = from.iter().map(|&p| truth.apply(p)).collect();
        let fit = Similarity::fit(&from, &to).expect("fit");
        assert!((fit.a - truth.a).abs() < 1e-4 && (fit.b - truth.b).abs() < 1e-4);
        assert!((fit.tx - truth.tx).abs() < 1e-3 && (fit.ty - truth.ty).abs() < 1e-3);
        let back = fit.inverse().apply(to[2]);
        assert!(back.distance(from[2]) < 1e-3);
    }

    #[test]
    fn fit_refuses_degenerate_input() {
        let p = [Point::new(1.0, 1.0); 3];
        assert!(Similarity::fit(&p, &p).is_none());
        assert!(Similarity::fit(&[], &[]).is_none());
    }

    #[test]
    fn iou_of_disjoint_and_identical_boxes() {
        let a = BBox::from_center(10.0, 10.0, 4.0, 4.0);
        let b = BBox::from_center(30.0, 10.0, 4.0, 4.0);
        assert_eq!(a.iou(&b), 0.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
    }
}
