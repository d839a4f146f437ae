//! Tracking on textures drawn from a known function, so every frame's
//! true motion is known.

use std::sync::LazyLock;

use image::{Rgb, RgbImage};

use super::*;
use crate::vision::liveness::SLOTS;

/// Forty waves of 6-30 px at golden-angle steps: a smooth texture with
/// detail in every direction, like skin and print detail under a camera's
/// blur. (wave number x, wave number y, phase), computed once.
static WAVES: LazyLock<Vec<(f32, f32, f32)>> = LazyLock::new(|| {
    (0..40)
        .map(|k| {
            let k = k as f32;
            let angle = k * 2.399_963;
            let wavelength = 6.0 + 24.0 * (k * 0.618_034).fract();
            let n = std::f32::consts::TAU / wavelength;
            (n * angle.cos(), n * angle.sin(), k * 1.7)
        })
        .collect()
});

fn texture(x: f32, y: f32) -> f32 {
    128.0
        + WAVES
            .iter()
            .map(|(kx, ky, phase)| 6.0 * (x * kx + y * ky + phase).sin())
            .sum::<f32>()
}

/// A frame whose pixel (x, y) shows the texture at `source(x, y)`.
fn frame(size: (u32, u32), source: impl Fn(f32, f32) -> (f32, f32)) -> RgbImage {
    RgbImage::from_fn(size.0, size.1, |x, y| {
        let (u, v) = source(x as f32, y as f32);
        let g = texture(u, v).clamp(0.0, 255.0) as u8;
        Rgb([g, g, g])
    })
}

/// A sample with its eyes `eye` px apart around (cx, cy) and the nose
/// midline below; `tip_dx` moves the tip sideways.
fn sample(cx: f32, cy: f32, eye: f32, tip_dx: f32) -> LivenessSample {
    let mut points = [Point::new(cx, cy); SLOTS];
    points[Slot::RightEyeOuter as usize] = Point::new(cx - eye / 2.0, cy);
    points[Slot::LeftEyeOuter as usize] = Point::new(cx + eye / 2.0, cy);
    points[Slot::NoseBridge as usize] = Point::new(cx, cy);
    points[Slot::NoseTip as usize] = Point::new(cx + tip_dx, cy + 0.5 * eye);
    points[Slot::NoseBase as usize] = Point::new(cx, cy + 0.85 * eye);
    LivenessSample { points }
}

const SIZE: (u32, u32) = (320, 240);

#[test]
fn a_moved_picture_keeps_its_tip_on_the_line_whatever_the_mesh_says() {
    let first = frame(SIZE, |x, y| (x, y));
    // The picture moves 7.3 px right, 4.6 up and grows 8 %...
    let (s, t) = (1.08, (7.3, -4.6));
    let moved = frame(SIZE, |x, y| ((x - t.0) / s, (y - t.1) / s));
    let a = sample(160.0, 100.0, 64.0, 0.0);
    // ...while the mesh draws the tip 0.1 eye distances off the line.
    let b = sample(160.0 * s + t.0, 100.0 * s + t.1, 64.0 * s, 6.4 * s);
    let (va, vb) = (
        MidlineView::capture(&first, &a).expect("view"),
        MidlineView::capture(&moved, &b).expect("view"),
    );
    let shift = tip_shift(&va, &vb).expect("tracked");
    assert!(shift.abs() < 0.01, "{shift}");
    assert!((b.midline_offset() - a.midline_offset()).abs() > 0.09);
}

#[test]
fn a_tip_that_moves_off_the_line_is_measured_where_it_went() {
    let first = frame(SIZE, |x, y| (x, y));
    let (tip_x, tip_y) = (160.0, 132.0);
    // The tip region moves 5 px right; bridge and base stay.
    let turned = frame(SIZE, |x, y| {
        let r = (x - tip_x - 5.0).hypot(y - tip_y);
        let w = ((16.0 - r) / 6.0).clamp(0.0, 1.0);
        (x - 5.0 * w, y)
    });
    let a = sample(160.0, 100.0, 64.0, 0.0);
    for (guess, label) in [(5.0, "the mesh right"), (0.0, "the mesh still")] {
        let b = sample(160.0, 100.0, 64.0, guess);
        let shift = tip_shift(
            &MidlineView::capture(&first, &a).expect("view"),
            &MidlineView::capture(&turned, &b).expect("view"),
        )
        .expect("tracked");
        // Moving right of a line that runs down the image is a negative offset.
        assert!((shift + 5.0 / 64.0).abs() < 0.015, "{label}: {shift}");
    }
}

#[test]
fn views_of_different_resolution_compare_at_one_scale() {
    let first = frame(SIZE, |x, y| (x, y));
    let sharp = frame((640, 480), |x, y| (x / 2.0, y / 2.0));
    let a = sample(160.0, 100.0, 64.0, 0.0);
    let b = sample(320.0, 200.0, 128.0, 0.0);
    let shift = tip_shift(
        &MidlineView::capture(&first, &a).expect("view"),
        &MidlineView::capture(&sharp, &b).expect("view"),
    )
    .expect("tracked");
    assert!(shift.abs() < 0.01, "{shift}");
}

#[test]
fn nothing_to_track_is_no_evidence() {
    let flat = RgbImage::from_pixel(SIZE.0, SIZE.1, Rgb([120, 120, 120]));
    let a = sample(160.0, 100.0, 64.0, 0.0);
    let view = MidlineView::capture(&flat, &a).expect("view");
    assert_eq!(tip_shift(&view, &view), None);
    // Another picture altogether: nothing matches well enough.
    let other = frame(SIZE, |x, y| (y + 500.0, x - 300.0));
    let textured = frame(SIZE, |x, y| (x, y));
    assert_eq!(
        tip_shift(
            &MidlineView::capture(&textured, &a).expect("view"),
            &MidlineView::capture(&other, &a).expect("view"),
        ),
        None
    );
}

#[test]
fn a_midline_off_the_frame_or_too_small_has_no_view() {
    let first = frame(SIZE, |x, y| (x, y));
    assert!(MidlineView::capture(&first, &sample(10.0, 100.0, 64.0, 0.0)).is_none());
    assert!(MidlineView::capture(&first, &sample(160.0, 220.0, 64.0, 0.0)).is_none());
    assert!(MidlineView::capture(&first, &sample(160.0, 100.0, 5.0, 0.0)).is_none());
}
