//! Resampling: every crop, letterbox and face chip is one similarity warp
//! from output pixels back into the source image, written straight into a
//! model input tensor (no intermediate image).

use image::RgbImage;

use super::geometry::{Point, Similarity};
use crate::infer::manifest::{InputSpec, Layout};
use crate::infer::Tensor;

/// Samples `src` at `p` (pixel centres at integer coordinates) with bilinear
/// interpolation; outside the image reads as black, like zero padding.
#[inline]
fn bilinear(src: &RgbImage, p: Point) -> [f32; 3] {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let x0 = p.x.floor();
    let y0 = p.y.floor();
    let (fx, fy) = (p.x - x0, p.y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let raw = src.as_raw();
    let px = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            return [0.0; 3];
        }
        let i = ((y * w + x) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    let (p00, p10, p01, p11) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
    let mut out = [0.0f32; 3];
    for c in 0..3 {
        let top = p00[c] + (p10[c] - p00[c]) * fx;
        let bottom = p01[c] + (p11[c] - p01[c]) * fx;
        out[c] = top + (bottom - top) * fy;
    }
    out
}

/// Warps `src` into a `width`×`height` RGB buffer (f32, 0..255, row-major,
/// interleaved). `to_source` maps an output pixel to source coordinates.
///
/// When one output pixel covers more than ~1.5 source pixels, it averages an
/// n×n grid of samples, so a large face shrunk to a small chip is not aliased.
pub fn warp_rgb(src: &RgbImage, to_source: &Similarity, width: usize, height: usize) -> Vec<f32> {
    let scale = to_source.scale();
    let n = if scale > 1.5 { scale.ceil().min(6.0) as usize } else { 1 };
    let step = 1.0 / n as f32;
    let offset = -0.5 + step / 2.0;
    let norm = 1.0 / (n * n) as f32;
    let mut out = vec![0.0f32; width * height * 3];
    for y in 0..height {
        for x in 0..width {
            let mut acc = [0.0f32; 3];
            for sy in 0..n {
                for sx in 0..n {
                    let q = Point::new(
                        x as f32 + offset + sx as f32 * step,
                        y as f32 + offset + sy as f32 * step,
                    );
                    let s = bilinear(src, to_source.apply(q));
                    acc[0] += s[0];
                    acc[1] += s[1];
                    acc[2] += s[2];
                }
            }
            let i = (y * width + x) * 3;
            out[i] = acc[0] * norm;
            out[i + 1] = acc[1] * norm;
            out[i + 2] = acc[2] * norm;
        }
    }
    out
}

/// Turns an interleaved RGB buffer (0..255) of the input's size into the
/// model's input tensor: layout and normalisation from the manifest.
pub fn to_input_tensor(rgb: &[f32], spec: &InputSpec) -> Tensor {
    let (h, w) = spec.image_size();
    let mut data = vec![0.0f32; h * w * 3];
    let inv_std = spec.std.map(|s| 1.0 / s);
    match spec.layout {
        Layout::Nhwc => {
            for (i, v) in rgb.iter().enumerate().take(h * w * 3) {
                let c = i % 3;
                data[i] = (v - spec.mean[c]) * inv_std[c];
            }
        }
        Layout::Nchw => {
            let plane = h * w;
            for p in 0..plane {
                for c in 0..3 {
                    data[c * plane + p] = (rgb[p * 3 + c] - spec.mean[c]) * inv_std[c];
                }
            }
        }
    }
    Tensor {
        shape: spec.shape.clone(),
        data,
    }
}

/// Converts a warped f32 buffer back to an image (for debugging output and
/// for the quality stage, which measures the chip the embedder sees).
pub fn to_rgb_image(rgb: &[f32], width: u32, height: u32) -> RgbImage {
    let bytes = rgb.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(width, height, bytes).unwrap_or_else(|| RgbImage::new(width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_warp_reproduces_the_image() {
        let img = RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let out = warp_rgb(&img, &Similarity::IDENTITY, 8, 6);
        for (i, p) in img.pixels().enumerate() {
            assert_eq!(out[i * 3], p[0] as f32);
            assert_eq!(out[i * 3 + 1], p[1] as f32);
        }
    }

    #[test]
    fn downscaling_averages_instead_of_aliasing() {
        // A one-pixel checkerboard shrunk 4× must come out mid-grey, not
        // black or white as point sampling would give.
        let img = RgbImage::from_fn(64, 64, |x, y| {
            if (x + y) % 2 == 0 { image::Rgb([255; 3]) } else { image::Rgb([0; 3]) }
        });
        let shrink = Similarity::new(4.0, 0.0, 1.5, 1.5);
        let out = warp_rgb(&img, &shrink, 16, 16);
        let centre = out[(8 * 16 + 8) * 3];
        assert!((centre - 127.5).abs() < 40.0, "got {centre}");
    }
}
