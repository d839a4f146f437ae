//! The face pipeline on real photos with the shipped models and threshold.

mod support;

use std::path::Path;

use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::{OperatingPoint, Threshold};
use edgeid::sources::load_image;
use edgeid::vision::embed::Embedding;
use image::{DynamicImage, RgbImage};
use support::models::pipeline;
use support::samples;

fn embed(image: &RgbImage) -> Embedding {
    let analysis = pipeline().analyse(image).expect("pipeline runs");
    analysis.face.expect("a face is found").embedding
}

fn embed_file(samples: &Path, name: &str) -> Embedding {
    embed(&load_image(&samples.join(name)).expect("sample decodes"))
}

fn shipped_threshold() -> Threshold {
    Threshold::resolve(
        None,
        pipeline().embedder_spec(),
        OperatingPoint(DEFAULT_OPERATING_POINT),
    )
    .expect("the manifest ships a FAR 1e-3 threshold")
}

#[test]
fn same_person_matches_and_another_does_not_at_the_shipped_threshold() {
    let samples = require!(samples());
    let t = shipped_threshold();
    let obama = embed_file(&samples, "obama.jpg");
    let obama2 = embed_file(&samples, "obama2.jpg");
    let obama3 = embed_file(&samples, "obama3.jpg");
    let biden = embed_file(&samples, "biden.jpg");
    for (name, other) in [("obama2", &obama2), ("obama3", &obama3)] {
        let s = obama.cosine(other);
        assert!(t.accepts(s), "obama vs {name}: {s} below {}", t.value);
    }
    for (name, e) in [("obama", &obama), ("obama2", &obama2), ("obama3", &obama3)] {
        let s = e.cosine(&biden);
        assert!(
            !t.accepts(s),
            "{name} vs biden: {s} accepted at {}",
            t.value
        );
    }
}

#[test]
fn the_main_face_has_plausible_evidence() {
    let samples = require!(samples());
    let image = load_image(&samples.join("obama.jpg")).expect("decodes");
    let analysis = pipeline().analyse(&image).expect("runs");
    assert_eq!(analysis.faces_detected, 1);
    assert!(!analysis.ambiguous);
    let face = analysis.face.expect("face");
    assert!(
        face.quality_failures.is_empty(),
        "{:?}",
        face.quality_failures
    );
    assert!(face.mesh.presence > 0.9);
    // Eyes inside the detection box, left of the image's centre line for the subject's right eye.
    let b = face.detection.bbox;
    let right_eye = face
        .mesh
        .point(edgeid::vision::landmarks::index::RIGHT_EYE_OUTER);
    assert!(
        right_eye.x > b.x && right_eye.x < b.x + b.width / 2.0,
        "{right_eye:?} in {b:?}"
    );
    assert_eq!(face.embedding.dim(), 128);
}

#[test]
fn grayscale_and_mirrored_photos_still_match() {
    let samples = require!(samples());
    let t = shipped_threshold();
    let photo = load_image(&samples.join("obama.jpg")).expect("decodes");
    let gray =
        DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(photo.clone()).to_luma8()).to_rgb8();
    let mirrored = image::imageops::flip_horizontal(&photo);
    let reference = embed_file(&samples, "obama2.jpg");
    for (name, img) in [("grayscale", gray), ("mirrored", mirrored)] {
        let s = embed(&img).cosine(&reference);
        assert!(t.accepts(s), "{name} obama vs obama2: {s}");
    }
}

#[test]
fn blank_and_noise_frames_have_no_face() {
    let blank = RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
    let mut state = 0x2545_f491_u32;
    let noise = RgbImage::from_fn(640, 480, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    for img in [blank, noise] {
        let analysis = pipeline().analyse(&img).expect("runs");
        assert!(analysis.face.is_none());
    }
}

#[test]
fn two_faces_side_by_side_are_ambiguous() {
    let samples = require!(samples());
    // The same photo twice: two faces of exactly the same size.
    let a = load_image(&samples.join("obama.jpg")).expect("decodes");
    let h = 480;
    let a = image::imageops::resize(
        &a,
        a.width() * h / a.height(),
        h,
        image::imageops::FilterType::Triangle,
    );
    let mut canvas = RgbImage::from_pixel(a.width() * 2, h, image::Rgb([90, 90, 90]));
    image::imageops::overlay(&mut canvas, &a, 0, 0);
    image::imageops::overlay(&mut canvas, &a, a.width() as i64, 0);
    let analysis = pipeline().analyse(&canvas).expect("runs");
    assert!(analysis.faces_detected >= 2, "{}", analysis.faces_detected);
    assert!(analysis.ambiguous);
}
