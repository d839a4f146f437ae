//! Resampling: every crop, letterbox and face chip is one similarity warp
//! from output pixels back into the source image, written straight into a
//! model input tensor (no intermediate image).

use image::RgbImage;

use super::geometry::{Point, Similarity};
use crate::infer::Tensor;
use crate::infer::manifest::{InputSpec, Layout};

/// Samples `src` at `p` (pixel centres at integer coordinates) with bilinear
/// interpolation; outside the image reads as black, like zero padding.
#[inline]
pub(crate) fn bilinear(src: &RgbImage, p: Point) -> [f32; 3] {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let (x0, y0) = (floor_i64(p.x), floor_i64(p.y));
    let (fx, fy) = (p.x - x0 as f32, p.y - y0 as f32);
    let raw = src.as_raw();
    let lerp2 = |p00: [f32; 3], p10: [f32; 3], p01: [f32; 3], p11: [f32; 3]| {
        let mut out = [0.0f32; 3];
        for c in 0..3 {
            let top = p00[c] + (p10[c] - p00[c]) * fx;
            let bottom = p01[c] + (p11[c] - p01[c]) * fx;
            out[c] = top + (bottom - top) * fy;
        }
        out
    };
    // Nearly every sample lies inside: read its 2×2 block without a bounds
    // test per pixel (this is the hottest loop outside the models).
    if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
        let stride = w as usize * 3;
        let i = y0 as usize * stride + x0 as usize * 3;
        let (top, bottom) = (&raw[i..i + 6], &raw[i + stride..i + stride + 6]);
        let rgb = |px: &[u8]| [px[0] as f32, px[1] as f32, px[2] as f32];
        return lerp2(
            rgb(&top[..3]),
            rgb(&top[3..]),
            rgb(&bottom[..3]),
            rgb(&bottom[3..]),
        );
    }
    let px = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            return [0.0; 3];
        }
        let i = ((y * w + x) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    lerp2(
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    )
}

/// `v.floor() as i64` without the libm call that baseline x86-64 (no
/// SSE4.1 `roundps`) makes for `floor`; identical for every finite `v`.
#[inline]
fn floor_i64(v: f32) -> i64 {
    let t = v as i64;
    if (t as f32) > v { t - 1 } else { t }
}

/// Warps `src` into a `width`×`height` RGB buffer (f32, 0..255, row-major,
/// interleaved). `to_source` maps an output pixel to source coordinates.
///
/// A large shrink first box-averages the source by the whole factor (each
/// source pixel read once, like one level of dlib's image pyramid), then
/// samples the rest bilinearly, averaging 2×2 samples when one output pixel
/// still covers more than 1.5 source pixels. So a big face shrunk into a
/// small input is neither aliased nor slow.
pub fn warp_rgb(src: &RgbImage, to_source: &Similarity, width: usize, height: usize) -> Vec<f32> {
    let factor = to_source.scale().floor() as u32;
    if factor < 2 || src.width() < factor || src.height() < factor {
        return sample(src, to_source, width, height);
    }
    // Shrink only the part of the source the output covers: a face chip cut
    // from a 12 MP photo needs a few hundred pixels of it, not all of it.
    let (x0, y0, region) = covered_region(src, to_source, width, height, factor);
    let to_region = Similarity {
        tx: to_source.tx - x0 as f32,
        ty: to_source.ty - y0 as f32,
        ..*to_source
    };
    let region = region.as_ref().unwrap_or(src);
    if region.width() < factor || region.height() < factor {
        return sample(src, to_source, width, height);
    }
    let shrunk = box_shrink(region, factor);
    let k = factor as f32;
    let offset = (k - 1.0) / 2.0;
    // Region x ↦ shrunk (x − (k−1)/2) / k, composed after `to_region`.
    let to_shrunk = Similarity {
        a: to_region.a / k,
        b: to_region.b / k,
        tx: (to_region.tx - offset) / k,
        ty: (to_region.ty - offset) / k,
    };
    sample(&shrunk, &to_shrunk, width, height)
}

/// The source rectangle (with a margin) that the output maps onto, as its
/// top-left corner and a cropped copy; `None` when that is most of the image.
fn covered_region(
    src: &RgbImage,
    to_source: &Similarity,
    width: usize,
    height: usize,
    factor: u32,
) -> (u32, u32, Option<RgbImage>) {
    let corners = [
        (-1.0, -1.0),
        (width as f32, -1.0),
        (-1.0, height as f32),
        (width as f32, height as f32),
    ];
    let (mut lo_x, mut lo_y, mut hi_x, mut hi_y) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for (x, y) in corners {
        let p = to_source.apply(Point::new(x, y));
        lo_x = lo_x.min(p.x);
        lo_y = lo_y.min(p.y);
        hi_x = hi_x.max(p.x);
        hi_y = hi_y.max(p.y);
    }
    let margin = 2.0 * factor as f32;
    let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
    // Keep the block grid aligned to the image so results do not depend on the crop.
    let x0 = clamp(lo_x - margin, src.width()) / factor * factor;
    let y0 = clamp(lo_y - margin, src.height()) / factor * factor;
    let x1 = clamp(hi_x + margin, src.width());
    let y1 = clamp(hi_y + margin, src.height());
    let (w, h) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    if (w as u64 * h as u64) * 2 > src.width() as u64 * src.height() as u64 {
        return (0, 0, None);
    }
    (
        x0,
        y0,
        Some(image::imageops::crop_imm(src, x0, y0, w, h).to_image()),
    )
}

/// Averages each `k`×`k` block of `src` into one pixel (edges dropped).
fn box_shrink(src: &RgbImage, k: u32) -> RgbImage {
    let (w, h) = (src.width() / k, src.height() / k);
    let raw = src.as_raw();
    let stride = src.width() as usize * 3;
    let norm = 1.0 / (k * k) as f32;
    let mut out = vec![0u8; (w * h * 3) as usize];
    let mut row_sums = vec![0u32; w as usize * 3];
    for y in 0..h as usize {
        row_sums.iter_mut().for_each(|v| *v = 0);
        for dy in 0..k as usize {
            let line = &raw[(y * k as usize + dy) * stride..][..(w * k) as usize * 3];
            for (x, block) in line.chunks_exact(k as usize * 3).enumerate() {
                for px in block.chunks_exact(3) {
                    row_sums[x * 3] += px[0] as u32;
                    row_sums[x * 3 + 1] += px[1] as u32;
                    row_sums[x * 3 + 2] += px[2] as u32;
                }
            }
        }
        let dst = &mut out[y * w as usize * 3..][..w as usize * 3];
        for (d, s) in dst.iter_mut().zip(&row_sums) {
            *d = (*s as f32 * norm).round() as u8;
        }
    }
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

fn sample(src: &RgbImage, to_source: &Similarity, width: usize, height: usize) -> Vec<f32> {
    let n = if to_source.scale() > 1.5 { 2 } else { 1 };
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
        // NTF is a sequence layout; the face stages only load image models
        // (their roles), so it never reaches here. Treated as interleaved.
        Layout::Nhwc | Layout::Ntf => {
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
    let bytes = rgb
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    RgbImage::from_raw(width, height, bytes).unwrap_or_else(|| RgbImage::new(width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_matches_the_library_floor() {
        for v in [-2.5f32, -1.0, -0.25, -0.0, 0.0, 0.75, 1.0, 3.999, 1e7, -1e7] {
            assert_eq!(floor_i64(v), v.floor() as i64, "{v}");
        }
    }

    #[test]
    fn samples_at_the_border_read_black_outside() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([200, 100, 50]));
        // Half a pixel beyond the right edge: half image, half black.
        let s = bilinear(&img, Point::new(3.5, 1.0));
        assert_eq!(s, [100.0, 50.0, 25.0]);
        let inside = bilinear(&img, Point::new(2.5, 2.5));
        assert_eq!(inside, [200.0, 100.0, 50.0]);
    }

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
            if (x + y) % 2 == 0 {
                image::Rgb([255; 3])
            } else {
                image::Rgb([0; 3])
            }
        });
        for scale in [4.0, 3.3, 1.7] {
            let shrink = Similarity::new(scale, 0.0, 1.5, 1.5);
            let out = warp_rgb(&img, &shrink, 16, 16);
            let centre = out[(8 * 16 + 8) * 3];
            assert!((centre - 127.5).abs() < 40.0, "scale {scale}: got {centre}");
        }
    }

    #[test]
    fn shrinking_a_small_region_of_a_large_image_matches_shrinking_all_of_it() {
        let img = RgbImage::from_fn(400, 300, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 199) as u8])
        });
        // A 3× shrink of the 60×60 source block at (240, 120) into 20×20.
        let to_source = Similarity::new(3.0, 0.0, 241.0, 121.0);
        let cropped = warp_rgb(&img, &to_source, 20, 20);
        let (_, _, region) = covered_region(&img, &to_source, 20, 20, 3);
        assert!(region.is_some(), "a small region must be cropped");
        let whole = sample(
            &box_shrink(&img, 3),
            &Similarity::new(1.0, 0.0, 80.0, 40.0),
            20,
            20,
        );
        let max_diff = cropped
            .iter()
            .zip(&whole)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1.0, "{max_diff}");
    }

    #[test]
    fn shrinking_keeps_geometry() {
        // A bright square at source (40..48, 40..48) shrunk 4× must land
        // at output (10..12, 10..12).
        let img = RgbImage::from_fn(64, 64, |x, y| {
            if (40..48).contains(&x) && (40..48).contains(&y) {
                image::Rgb([255; 3])
            } else {
                image::Rgb([0; 3])
            }
        });
        let shrink = Similarity::new(4.0, 0.0, 1.5, 1.5);
        let out = warp_rgb(&img, &shrink, 16, 16);
        assert!(out[(10 * 16 + 10) * 3] > 200.0 && out[(11 * 16 + 11) * 3] > 200.0);
        assert!(out[(8 * 16 + 8) * 3] < 30.0 && out[(13 * 16 + 13) * 3] < 30.0);
    }
}
