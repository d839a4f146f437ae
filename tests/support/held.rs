//! Frames of a printed photo held up to a 640×480 camera: the print is a
//! plane, so every frame is one homography (perspective warp) of the photo.

use std::path::Path;

use image::{Rgb, RgbImage};

/// A picture held in front of a 640×480 camera: the photo is a plane of
/// `PRINT_MM` tall, turned by `yaw` and `pitch` degrees about its centre,
/// `depth` mm from the camera and shifted by `shift` px in the image.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub yaw: f64,
    pub pitch: f64,
    pub depth: f64,
    pub shift: (f64, f64),
}

const FOCAL: f64 = 600.0;
/// Height of the printed picture.
const PRINT_MM: f64 = 150.0;
pub const FRAME: (u32, u32) = (640, 480);

/// The homography from photo pixels to frame pixels for a held picture.
fn homography(photo: (u32, u32), held: Held) -> [[f64; 3]; 3] {
    // Photo pixel → plane mm (centred), PRINT_MM tall.
    let s = PRINT_MM / f64::from(photo.1);
    let (cu, cv) = (f64::from(photo.0) / 2.0, f64::from(photo.1) / 2.0);
    let (sy, cy) = held.yaw.to_radians().sin_cos();
    let (sp, cp) = held.pitch.to_radians().sin_cos();
    // Rotation R = Rx(pitch) · Ry(yaw); only its first two columns matter for a plane.
    let r = [
        [cy, 0.0, sy],
        [sp * sy, cp, -sp * cy],
        [-cp * sy, sp, cp * cy],
    ];
    // x_frame ~ K · [r1 r2 t] · [X, Y, 1], with X = s(u − cu), Y = s(v − cv).
    let k = [
        [FOCAL, 0.0, f64::from(FRAME.0) / 2.0 + held.shift.0],
        [0.0, FOCAL, f64::from(FRAME.1) / 2.0 + held.shift.1],
        [0.0, 0.0, 1.0],
    ];
    let m = [
        [r[0][0], r[0][1], 0.0],
        [r[1][0], r[1][1], 0.0],
        [r[2][0], r[2][1], held.depth],
    ];
    let plane = [[s, 0.0, -s * cu], [0.0, s, -s * cv], [0.0, 0.0, 1.0]];
    mul(&mul(&k, &m), &plane)
}

fn mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

fn inverse(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let adj = [
        [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
        [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
        [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
    ];
    let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
    adj.map(|r| r.map(|v| v / det))
}

/// The frame a camera sees of `photo` held as `held` (bilinear sampling,
/// grey wall behind).
pub fn held_picture(photo: &RgbImage, held: Held) -> RgbImage {
    let to_photo = inverse(&homography(photo.dimensions(), held));
    RgbImage::from_fn(FRAME.0, FRAME.1, |x, y| {
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let w = to_photo[2][0] * x + to_photo[2][1] * y + to_photo[2][2];
        let u = (to_photo[0][0] * x + to_photo[0][1] * y + to_photo[0][2]) / w - 0.5;
        let v = (to_photo[1][0] * x + to_photo[1][1] * y + to_photo[1][2]) / w - 0.5;
        sample(photo, u, v).unwrap_or(Rgb([128, 128, 128]))
    })
}

fn sample(img: &RgbImage, u: f64, v: f64) -> Option<Rgb<u8>> {
    let (w, h) = img.dimensions();
    if !(u >= 0.0 && v >= 0.0 && u < f64::from(w - 1) && v < f64::from(h - 1)) {
        return None;
    }
    let (x0, y0) = (u.floor() as u32, v.floor() as u32);
    let (fx, fy) = (u - f64::from(x0), v - f64::from(y0));
    let px = |x, y| img.get_pixel(x, y).0.map(f64::from);
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    Some(Rgb(std::array::from_fn(|i| {
        let top = a[i] * (1.0 - fx) + b[i] * fx;
        let bottom = c[i] * (1.0 - fx) + d[i] * fx;
        (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
    })))
}

/// A print moved about in front of the camera, one smooth loop: turned
/// left and right by up to 50°, tipped by up to 20°, carried sideways and
/// nearer, as someone holding it up to a door camera would. (Gentler
/// tilts barely change the face mesh's shape: those prints are never
/// judged at all, and time out.)
pub fn held_poses() -> Vec<Held> {
    const N: usize = 16;
    (0..N)
        .map(|i| {
            let a = i as f64 / N as f64 * std::f64::consts::TAU;
            Held {
                yaw: 50.0 * a.sin(),
                pitch: 20.0 * (2.0 * a).sin(),
                depth: 220.0 + 20.0 * a.cos(),
                shift: (25.0 * a.sin(), 10.0 * a.cos()),
            }
        })
        .collect()
}

/// The print an attacker holds up: the photo cropped to head and
/// shoulders around its main face.
pub fn print_of(photo: &Path) -> RgbImage {
    let photo = image::open(photo).expect("photo").to_rgb8();
    let analysis = super::models::pipeline().analyse(&photo).expect("analyse");
    let b = analysis.face.expect("a face in the photo").detection.bbox;
    let c = b.center();
    let (w, h) = (2.4 * b.width, 3.0 * b.height);
    let x0 = (c.x - w / 2.0).max(0.0) as u32;
    let y0 = (c.y - h / 2.0).max(0.0) as u32;
    let w = (w as u32).min(photo.width() - x0);
    let h = (h as u32).min(photo.height() - y0);
    image::imageops::crop_imm(&photo, x0, y0, w, h).to_image()
}

pub fn write_held_frames(photo: &Path, dir: &Path) {
    let photo = print_of(photo);
    for (i, held) in held_poses().into_iter().enumerate() {
        held_picture(&photo, held)
            .save(dir.join(format!("held-{i:02}.png")))
            .expect("write frame");
    }
}
