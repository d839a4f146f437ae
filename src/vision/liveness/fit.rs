//! Least-squares fits between two point sets: the 2-D similarity (how
//! much of a motion is more than moving, scaling and rolling the face) and
//! the homography (how much is more than moving a plane).

use crate::vision::geometry::Point;

/// A 3×3 projective transform, h[2][2] = 1.
#[derive(Debug, Clone, Copy)]
pub struct Homography(pub [[f64; 3]; 3]);

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

/// RMS residual, in pixels, of the best 2-D similarity (shift, scale,
/// roll) from `src` to `dst`: the part of a motion that changes the shape
/// of the point set. Closed form (Umeyama without reflection).
pub fn similarity_residual(src: &[Point], dst: &[Point]) -> Option<f32> {
    if src.len() < 2 || src.len() != dst.len() {
        return None;
    }
    let n = src.len() as f64;
    let mean = |ps: &[Point]| {
        (
            ps.iter().map(|p| p.x as f64).sum::<f64>() / n,
            ps.iter().map(|p| p.y as f64).sum::<f64>() / n,
        )
    };
    let ((sx, sy), (dx, dy)) = (mean(src), mean(dst));
    let (mut norm, mut a, mut b) = (0.0f64, 0.0f64, 0.0f64);
    for (p, q) in src.iter().zip(dst) {
        let (px, py) = (p.x as f64 - sx, p.y as f64 - sy);
        let (qx, qy) = (q.x as f64 - dx, q.y as f64 - dy);
        norm += px * px + py * py;
        a += px * qx + py * qy;
        b += px * qy - py * qx;
    }
    if norm <= 1e-12 {
        return None;
    }
    let (a, b) = (a / norm, b / norm);
    let sq: f64 = src
        .iter()
        .zip(dst)
        .map(|(p, q)| {
            let (px, py) = (p.x as f64 - sx, p.y as f64 - sy);
            let (mx, my) = (a * px - b * py + dx, b * px + a * py + dy);
            (mx - q.x as f64).powi(2) + (my - q.y as f64).powi(2)
        })
        .sum();
    Some((sq / n).sqrt() as f32)
}
