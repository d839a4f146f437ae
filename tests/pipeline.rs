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

/// A square around the photo's face, twice the face's side, resized to `side`.
fn face_tile(photo: &RgbImage, side: u32) -> RgbImage {
    let face = pipeline()
        .analyse(photo)
        .expect("runs")
        .face
        .expect("a face");
    let b = face.detection.bbox;
    let c = b.center();
    let half = b.width.max(b.height);
    let x0 = (c.x - half).max(0.0) as u32;
    let y0 = (c.y - half).max(0.0) as u32;
    let w = ((2.0 * half) as u32).min(photo.width() - x0);
    let h = ((2.0 * half) as u32).min(photo.height() - y0);
    let crop = image::imageops::crop_imm(photo, x0, y0, w, h).to_image();
    image::imageops::resize(&crop, side, side, image::imageops::FilterType::Triangle)
}

#[test]
fn a_larger_bystander_at_the_edge_is_not_the_subject() {
    use edgeid::pipeline::{FaceSelection, StageTimings, SubjectRule};
    let samples = require!(samples());
    let photo = |name: &str| load_image(&samples.join(name)).expect("decodes");
    // The user near the centre, a bystander closer to the lens at the edge.
    let mut frame = RgbImage::from_pixel(800, 480, image::Rgb([110, 110, 110]));
    image::imageops::overlay(&mut frame, &face_tile(&photo("obama.jpg"), 240), 240, 120);
    image::imageops::overlay(&mut frame, &face_tile(&photo("biden.jpg"), 270), 530, 105);
    let p = pipeline();
    let detections = p.detector().detect(&frame).expect("detects");
    assert_eq!(detections.len(), 2, "{detections:?}");
    let subject_x = |rule| {
        let selection = FaceSelection {
            rule,
            ..FaceSelection::default()
        };
        let subject = p
            .subject(
                &frame,
                detections.clone(),
                &selection,
                &mut StageTimings::default(),
            )
            .expect("runs");
        let (detection, _) = subject.face.expect("a subject");
        (detection.bbox.center().x, subject.ambiguous)
    };
    let (x, _) = subject_x(SubjectRule::Largest);
    assert!(x > 530.0, "largest: the bystander ({x})");
    let (x, ambiguous) = subject_x(SubjectRule::LargeAndCentral);
    assert!(
        x < 530.0 && !ambiguous,
        "large and central: the user ({x}, {ambiguous})"
    );
    // The default pipeline scores the user, and only the user.
    let analysis = p.analyse(&frame).expect("runs");
    assert!(!analysis.ambiguous);
    let probe = analysis.face.expect("a face").embedding;
    let t = shipped_threshold();
    let obama2 = embed_file(&samples, "obama2.jpg");
    let biden = embed_file(&samples, "biden.jpg");
    assert!(
        t.accepts(probe.cosine(&obama2)),
        "{}",
        probe.cosine(&obama2)
    );
    assert!(!t.accepts(probe.cosine(&biden)), "{}", probe.cosine(&biden));
}

#[test]
fn templates_made_without_flip_match_probes_with_flip() {
    // Turning `flip_tta` on (or off) keeps templates enrolled under the
    // other setting working: the same model, the same space.
    let samples = require!(samples());
    let p = pipeline();
    let flipped = |name: &str| {
        let image = load_image(&samples.join(name)).expect("decodes");
        let face = p.analyse(&image).expect("runs").face.expect("a face");
        let views = p.embedder().raw_views(&face.chip).expect("embeds");
        let plain = Embedding::normalised(views.plain.clone()).expect("non-zero");
        let mean = Embedding::normalised(views.mean()).expect("non-zero");
        let made = if p.embedder().flip() { &mean } else { &plain };
        assert_eq!(
            made, &face.embedding,
            "the pipeline embeds as the manifest says"
        );
        (plain, mean)
    };
    let (plain, flip) = flipped("obama.jpg");
    assert!(plain.cosine(&flip) > 0.98, "{}", plain.cosine(&flip));
    let t = shipped_threshold();
    let (template, _) = flipped("obama2.jpg");
    assert!(
        t.accepts(flip.cosine(&template)),
        "{}",
        flip.cosine(&template)
    );
    let (_, biden) = flipped("biden.jpg");
    assert!(!t.accepts(biden.cosine(&template)));
}

#[test]
fn the_sites_flip_switch_reaches_the_verbs() {
    // `[face] flip_tta = false` drops the mirror's run; the manifest's
    // threshold stays (measured with flip, it accepts fewer impostors
    // without it), and the same pair still matches.
    let samples = require!(samples());
    let dir = tempfile::tempdir().expect("tempdir");
    let similarity = |config: Option<&str>| {
        let mut cmd = support::device::edgeid();
        if let Some(text) = config {
            let path = dir.path().join("edgeid.toml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(&path);
        }
        cmd.arg("--json")
            .arg("compare")
            .arg(samples.join("obama.jpg"))
            .arg(samples.join("obama2.jpg"));
        let out = support::output::stdout_json(&support::process::run_ok(&mut cmd));
        assert_eq!(out["decision"], "accept", "{out}");
        out["similarity"].as_f64().expect("a similarity")
    };
    let default = similarity(None);
    let on = similarity(Some("[face]\nflip_tta = true\n"));
    let off = similarity(Some("[face]\nflip_tta = false\n"));
    let manifest_flips = pipeline().embedder().flip();
    assert_eq!(default, if manifest_flips { on } else { off });
    assert!((on - off).abs() > 1e-4, "flip on {on}, off {off}");
}
