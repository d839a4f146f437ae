//! What a cheap camera and a screen do to a picture: exposure drift,
//! sensor noise, defocus; a screen's gamma, dimmer blacks and moiré. And
//! the deterministic random numbers every clip draws from.

use image::{Rgb, RgbImage};

use crate::eval::rng::Rng;

/// A plain wall behind the subject: a soft diagonal gradient of one hue.
pub fn wall(size: (u32, u32), rng: &mut Rng) -> RgbImage {
    let base = [
        rng.range(90.0, 200.0),
        rng.range(90.0, 200.0),
        rng.range(90.0, 200.0),
    ];
    let tilt = rng.range(-40.0, 40.0);
    RgbImage::from_fn(size.0, size.1, |x, y| {
        let t = (x as f32 / size.0 as f32 + y as f32 / size.1 as f32) / 2.0 - 0.5;
        Rgb(base.map(|c| (c + tilt * t).clamp(0.0, 255.0) as u8))
    })
}

/// How the camera spoils one frame.
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    /// Brightness gain (auto-exposure hunting).
    pub gain: f32,
    /// Sensor noise, standard deviation in grey levels.
    pub noise: f32,
    /// Box blur radius in pixels (0: sharp).
    pub blur: u32,
}

/// Applies `exposure` to `image` in place.
pub fn expose(image: &mut RgbImage, exposure: Exposure, rng: &mut Rng) {
    if exposure.blur > 0 {
        *image = box_blur(image, exposure.blur);
    }
    for p in image.pixels_mut() {
        let n = exposure.noise * rng.normal();
        p.0 =
            p.0.map(|c| (f32::from(c) * exposure.gain + n).round().clamp(0.0, 255.0) as u8);
    }
}

/// Separable box blur of radius `r`.
pub fn box_blur(image: &RgbImage, r: u32) -> RgbImage {
    let pass = |src: &RgbImage, horizontal: bool| {
        let (w, h) = src.dimensions();
        RgbImage::from_fn(w, h, |x, y| {
            let mut sum = [0u32; 3];
            let mut n = 0;
            for d in -(r as i64)..=r as i64 {
                let (xx, yy) = if horizontal {
                    ((x as i64 + d).clamp(0, w as i64 - 1), y as i64)
                } else {
                    (x as i64, (y as i64 + d).clamp(0, h as i64 - 1))
                };
                let q = src.get_pixel(xx as u32, yy as u32).0;
                for (s, v) in sum.iter_mut().zip(q) {
                    *s += u32::from(v);
                }
                n += 1;
            }
            Rgb(sum.map(|s| (s / n) as u8))
        })
    };
    pass(&pass(image, true), false)
}

/// A screen showing `frame`: its gamma differs from the camera's, its
/// blacks glow and its whites are dimmer, and a slight cast tints it.
pub fn on_screen(frame: &RgbImage, gamma: f32, tint: [f32; 3]) -> RgbImage {
    let mut out = frame.clone();
    for p in out.pixels_mut() {
        let mut k = 0;
        p.0 = p.0.map(|c| {
            let v = (f32::from(c) / 255.0).powf(gamma);
            let v = 0.06 + 0.86 * v * tint[k];
            k += 1;
            (v * 255.0).round().clamp(0.0, 255.0) as u8
        });
    }
    out
}

/// Moiré: the beat between the screen's pixel grid and the sensor's, a
/// slanted ripple of brightness over the pixels the screen covers.
pub fn moire(image: &mut RgbImage, covered: &[bool], period: f32, angle: f32, depth: f32) {
    let (s, c) = angle.sin_cos();
    let w = image.width();
    for (i, p) in image.pixels_mut().enumerate() {
        if !covered[i] {
            continue;
        }
        let (x, y) = ((i as u32 % w) as f32, (i as u32 / w) as f32);
        let phase = (x * c + y * s) / period * std::f32::consts::TAU;
        let g = 1.0 + depth * phase.sin();
        p.0 =
            p.0.map(|v| (f32::from(v) * g).round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_brightens_and_blur_smooths() {
        let mut img = RgbImage::from_fn(8, 8, |x, _| Rgb([if x < 4 { 0 } else { 200 }; 3]));
        let blurred = box_blur(&img, 1);
        assert!(blurred.get_pixel(4, 4).0[0] < 200 && blurred.get_pixel(3, 4).0[0] > 0);
        expose(
            &mut img,
            Exposure {
                gain: 1.2,
                noise: 0.0,
                blur: 0,
            },
            &mut Rng::new(1),
        );
        assert_eq!(img.get_pixel(6, 0).0[0], 240);
    }
}
