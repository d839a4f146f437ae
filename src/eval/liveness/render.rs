//! A small z-buffered rasteriser: textured triangles through a pinhole
//! camera, perspective-correct texture lookups, bilinear sampling.

use image::{Rgb, RgbImage};

use super::mesh::Mesh;

/// Where an object is: turned by yaw (about the vertical axis, positive
/// brings its +x side, the image right, towards the camera), pitch
/// (about the horizontal axis) and roll (in the image plane), all in
/// radians, then moved to `position` (mm, camera frame: x right, y down,
/// z away from the camera).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    pub position: [f32; 3],
}

impl Pose {
    fn rotation(&self) -> [[f32; 3]; 3] {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        let (sr, cr) = self.roll.sin_cos();
        // R = Rz(roll) · Rx(pitch) · Ry(yaw)
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        mul(&rz, &mul(&rx, &ry))
    }

    pub fn apply(&self, v: [f32; 3]) -> [f32; 3] {
        let r = self.rotation();
        std::array::from_fn(|i| r[i][0] * v[0] + r[i][1] * v[1] + r[i][2] * v[2] + self.position[i])
    }
}

fn mul(a: &[[f32; 3]; 3], b: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// A frame being drawn: colour, depth and which object covers each pixel.
pub struct Canvas {
    pub image: RgbImage,
    depth: Vec<f32>,
    /// Per pixel: 0 for the background, else the `id` of the object drawn.
    pub owner: Vec<u8>,
    focal: f32,
}

impl Canvas {
    /// A `size` frame filled with `background`; `focal` in pixels.
    pub fn new(background: RgbImage, focal: f32) -> Self {
        let n = (background.width() * background.height()) as usize;
        Self {
            image: background,
            depth: vec![f32::INFINITY; n],
            owner: vec![0; n],
            focal,
        }
    }

    fn project(&self, p: [f32; 3]) -> Option<[f32; 3]> {
        // Anything within 10 mm of the lens (or behind it) is not drawn.
        (p[2] > 10.0).then(|| {
            let (w, h) = (self.image.width() as f32, self.image.height() as f32);
            [
                self.focal * p[0] / p[2] + w / 2.0,
                self.focal * p[1] / p[2] + h / 2.0,
                1.0 / p[2],
            ]
        })
    }

    /// Draws `mesh` at `pose` with `texture`, marking its pixels `id`.
    pub fn draw(&mut self, mesh: &Mesh, pose: &Pose, texture: &RgbImage, id: u8) {
        let projected: Vec<Option<[f32; 3]>> = mesh
            .vertices
            .iter()
            .map(|&v| self.project(pose.apply(v)))
            .collect();
        for t in &mesh.triangles {
            let [a, b, c] = t.map(|i| i as usize);
            if let (Some(pa), Some(pb), Some(pc)) = (projected[a], projected[b], projected[c]) {
                let uv = [mesh.uv[a], mesh.uv[b], mesh.uv[c]];
                self.triangle([pa, pb, pc], uv, texture, id);
            }
        }
    }

    fn triangle(&mut self, p: [[f32; 3]; 3], uv: [[f32; 2]; 3], texture: &RgbImage, id: u8) {
        let (w, h) = (self.image.width() as i64, self.image.height() as i64);
        let area = edge(p[0], p[1], p[2]);
        if area.abs() < 1e-6 {
            return;
        }
        let lo = |k: usize| p.iter().map(|q| q[k]).fold(f32::INFINITY, f32::min);
        let hi = |k: usize| p.iter().map(|q| q[k]).fold(f32::NEG_INFINITY, f32::max);
        let (x0, x1) = (
            (lo(0).floor() as i64).max(0),
            (hi(0).ceil() as i64).min(w - 1),
        );
        let (y0, y1) = (
            (lo(1).floor() as i64).max(0),
            (hi(1).ceil() as i64).min(h - 1),
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                let q = [x as f32 + 0.5, y as f32 + 0.5, 0.0];
                let b = [
                    edge(p[1], p[2], q) / area,
                    edge(p[2], p[0], q) / area,
                    edge(p[0], p[1], q) / area,
                ];
                if b.iter().any(|&v| v < -1e-5) {
                    continue;
                }
                // Inverse depth interpolates linearly in the image.
                let inv_z = b[0] * p[0][2] + b[1] * p[1][2] + b[2] * p[2][2];
                let i = (y * w + x) as usize;
                if inv_z <= 0.0 || 1.0 / inv_z >= self.depth[i] {
                    continue;
                }
                let tex = |k: usize| {
                    (b[0] * uv[0][k] * p[0][2]
                        + b[1] * uv[1][k] * p[1][2]
                        + b[2] * uv[2][k] * p[2][2])
                        / inv_z
                };
                self.depth[i] = 1.0 / inv_z;
                self.owner[i] = id;
                self.image
                    .put_pixel(x as u32, y as u32, bilinear(texture, tex(0), tex(1)));
            }
        }
    }
}

fn edge(a: [f32; 3], b: [f32; 3], c: [f32; 3]) -> f32 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// Bilinear sample at pixel-centre coordinates (u, v), clamped to the image.
pub fn bilinear(img: &RgbImage, u: f32, v: f32) -> Rgb<u8> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (u, v) = ((u - 0.5).clamp(0.0, w - 1.0), (v - 0.5).clamp(0.0, h - 1.0));
    let (x0, y0) = (u.floor() as u32, v.floor() as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let (fx, fy) = (u - x0 as f32, v - y0 as f32);
    let (a, b, c, d) = (
        img.get_pixel(x0, y0).0,
        img.get_pixel(x1, y0).0,
        img.get_pixel(x0, y1).0,
        img.get_pixel(x1, y1).0,
    );
    Rgb(std::array::from_fn(|k| {
        let top = f32::from(a[k]) * (1.0 - fx) + f32::from(b[k]) * fx;
        let bottom = f32::from(c[k]) * (1.0 - fx) + f32::from(d[k]) * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::liveness::mesh::sheet;

    #[test]
    fn a_sheet_facing_the_camera_shows_its_texture_and_hides_what_is_behind() {
        let red = RgbImage::from_pixel(40, 40, Rgb([200, 0, 0]));
        let blue = RgbImage::from_pixel(40, 40, Rgb([0, 0, 200]));
        let mut canvas = Canvas::new(RgbImage::new(64, 48), 64.0);
        let near = Pose {
            position: [0.0, 0.0, 100.0],
            ..Pose::default()
        };
        let far = Pose {
            position: [0.0, 0.0, 200.0],
            ..Pose::default()
        };
        canvas.draw(&sheet((40, 40), 40.0, None), &near, &red, 1);
        canvas.draw(&sheet((40, 40), 160.0, None), &far, &blue, 2);
        // Near: 40 mm at 100 mm, focal 64 → 25.6 px; far: 160 mm at 200 mm → 51.2 px.
        assert_eq!(canvas.image.get_pixel(32, 24).0, [200, 0, 0]);
        assert_eq!(canvas.image.get_pixel(32 + 16, 24).0, [0, 0, 200]);
        assert_eq!(canvas.image.get_pixel(1, 1).0, [0, 0, 0]);
        assert_eq!(canvas.owner[24 * 64 + 32], 1);
    }

    #[test]
    fn yaw_turns_the_right_side_towards_the_camera() {
        let pose = Pose {
            yaw: 0.3,
            ..Pose::default()
        };
        // A point on the object's +x side comes nearer the camera.
        assert!(pose.apply([10.0, 0.0, 0.0])[2] < 0.0);
        assert!(pose.apply([-10.0, 0.0, 0.0])[2] > 0.0);
    }
}
