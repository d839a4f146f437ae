//! `edgeid eval pad` end to end on a dataset the test builds from the
//! sample photos (scripts/fetch-test-data) and images it makes: exit codes,
//! the JSON report, images with no face and unreadable ones counted and
//! named, a missing folder refused clearly; and the `vision::pad` stage on
//! real photos with the committed PAD models.

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

use edgeid::infer::{ModelRole, default_backend};
use edgeid::sources::load_image;
use edgeid::vision::pad::PadScorer;
use support::models::{manifest, pipeline};
use support::{samples, stdout_json};

fn edgeid(state: &Path) -> Command {
    let mut c = Command::from_std(support::edgeid());
    c.env("EDGEID_STATE_DIR", state);
    c
}

/// The first face_pad model of the manifest, shipped or not (the committed
/// manifest has evaluation-only ones).
fn pad_model() -> String {
    manifest()
        .models()
        .iter()
        .find(|m| m.role == ModelRole::FacePad)
        .map(|m| m.id.clone())
        .expect("a face_pad model in models/manifest.toml")
}

/// live/: two sample photos and a tight face crop; spoof/: a blurred,
/// shrunken copy of a photo (a poor "print"), a grey card with no face and
/// a file that is not an image.
fn dataset(root: &Path, samples: &Path) -> PathBuf {
    let dir = root.join("pad");
    let (live, spoof) = (dir.join("live"), dir.join("spoof"));
    std::fs::create_dir_all(&live).expect("live/");
    std::fs::create_dir_all(&spoof).expect("spoof/");
    for name in ["obama.jpg", "biden.jpg"] {
        std::fs::copy(samples.join(name), live.join(name)).expect("copy sample");
    }
    let photo = load_image(&samples.join("obama2.jpg")).expect("obama2.jpg");
    let face = pipeline()
        .analyse(&photo)
        .expect("analyse")
        .face
        .expect("a face in obama2.jpg")
        .detection
        .bbox;
    let tight = image::imageops::crop_imm(
        &photo,
        face.x.max(0.0) as u32,
        face.y.max(0.0) as u32,
        face.width as u32,
        face.height as u32,
    )
    .to_image();
    tight
        .save(live.join("obama2_tight.png"))
        .expect("tight crop");
    let (w, h) = (photo.width(), photo.height());
    let small =
        image::imageops::resize(&photo, w / 4, h / 4, image::imageops::FilterType::Triangle);
    let print = image::imageops::resize(&small, w, h, image::imageops::FilterType::Triangle);
    print.save(spoof.join("obama2_print.png")).expect("print");
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))
        .save(spoof.join("grey.png"))
        .expect("grey");
    std::fs::write(spoof.join("broken.jpg"), b"this is not a JPEG").expect("broken");
    dir
}

#[test]
fn eval_pad_reports_every_image_and_counts_failures_as_errors() {
    let samples = require!(samples());
    let model = pad_model();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), &samples);
    let plot = tmp.path().join("det.png");
    let out = edgeid(tmp.path())
        .args([
            "eval",
            "pad",
            "--json",
            "--threshold",
            "0.5",
            "--model",
            &model,
        ])
        .arg("--dataset")
        .arg(&data)
        .arg("--plot")
        .arg(&plot)
        .assert()
        .success()
        .get_output()
        .clone();
    let r = stdout_json(&out);
    assert_eq!(r["model"], model.as_str());
    assert_eq!(r["threshold_source"], "command line");
    let m = &r["metrics"];
    assert_eq!(m["live_images"], 3);
    assert_eq!(m["spoof_images"], 3);
    assert_eq!(m["threshold"], 0.5);
    for key in ["apcer", "bpcer", "acer", "auc", "eer"] {
        let v = m[key].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&v), "{key} = {}", m[key]);
    }
    // The grey card has no face and broken.jpg cannot be read: both are
    // spoofs counted as accepted, so APCER is at least 2 of 3.
    assert_eq!(m["unscored_spoof"], 2);
    assert!(m["apcer"].as_f64().unwrap_or(0.0) >= 2.0 / 3.0 - 1e-9);
    let acer = (m["apcer"].as_f64().unwrap_or(0.0) + m["bpcer"].as_f64().unwrap_or(0.0)) / 2.0;
    assert!((m["acer"].as_f64().unwrap_or(-1.0) - acer).abs() < 1e-9);
    let images = &r["images"];
    assert_eq!(images["images"], 6);
    let no_face: Vec<&str> = images["no_face"]
        .as_array()
        .expect("no_face list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        no_face.len() == 1 && no_face[0].ends_with("grey.png"),
        "{no_face:?}"
    );
    assert_eq!(images["no_face_spoof"], 1);
    let errors = images["errors"].as_array().expect("errors list");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0][0].as_str().unwrap_or("").ends_with("broken.jpg"));
    assert!(!errors[0][1].as_str().unwrap_or("").is_empty());
    // Each sample is listed with how its face was found and its score.
    let samples = r["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 6);
    let tight = samples
        .iter()
        .find(|s| {
            s["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("obama2_tight.png")
        })
        .expect("tight crop listed");
    assert!(
        ["found", "found_with_border"].contains(&tight["face"].as_str().unwrap_or("")),
        "a tight face crop must be found, with a border if need be: {tight}"
    );
    for s in samples {
        let scored = s["score"].is_number();
        let face = s["face"].as_str().unwrap_or("");
        assert_eq!(scored, face.starts_with("found"), "{s}");
    }
    let png = image::open(&plot).expect("the DET plot is a readable PNG");
    assert!(png.width() > 100 && png.height() > 100);
}

#[test]
fn human_output_names_the_failures() {
    let samples = require!(samples());
    let model = pad_model();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), &samples);
    edgeid(tmp.path())
        .args(["eval", "pad", "--model", &model])
        .arg("--dataset")
        .arg(&data)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("APCER")
                .and(predicate::str::contains("BPCER"))
                .and(predicate::str::contains("ACER"))
                .and(predicate::str::contains("no face: "))
                .and(predicate::str::contains("grey.png"))
                .and(predicate::str::contains("broken.jpg")),
        );
}

#[test]
fn a_missing_folder_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("pad");
    std::fs::create_dir_all(data.join("live")).expect("live/");
    std::fs::write(data.join("live/a.png"), b"x").expect("write");
    edgeid(tmp.path())
        .args(["eval", "pad", "--model", "any"])
        .arg("--dataset")
        .arg(&data)
        .assert()
        .failure()
        .stderr(predicate::str::contains("spoof/").and(predicate::str::contains("DIR/live")));
    edgeid(tmp.path())
        .args(["eval", "pad", "--dataset"])
        .arg(tmp.path().join("nowhere"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("live/"));
}

#[test]
fn an_unknown_model_or_no_shipped_model_says_what_to_pass() {
    let samples = require!(samples());
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dataset(tmp.path(), &samples);
    edgeid(tmp.path())
        .args(["eval", "pad", "--model", "no-such-model"])
        .arg("--dataset")
        .arg(&data)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("no-such-model").and(predicate::str::contains("face_pad")),
        );
    let shipped = manifest().by_role(ModelRole::FacePad).is_ok();
    let run = edgeid(tmp.path())
        .args(["eval", "pad", "--json", "--dataset"])
        .arg(&data)
        .assert();
    if shipped {
        run.success();
    } else {
        run.failure().stderr(
            predicate::str::contains("no shipped face_pad model")
                .and(predicate::str::contains("--model")),
        );
    }
}

#[test]
fn unshipped_pad_models_are_never_the_default() {
    let manifest = manifest();
    if let Ok(spec) = manifest.by_role(ModelRole::FacePad) {
        assert!(spec.shipped);
        assert!(
            !spec.thresholds.is_empty(),
            "a shipped PAD model needs its measured threshold"
        );
    }
}

#[test]
fn pad_stage_scores_real_faces_with_each_committed_model() {
    let manifest = manifest();
    let backend = default_backend();
    let samples = require!(samples());
    let photo = load_image(&samples.join("obama.jpg")).expect("obama.jpg");
    let face = pipeline()
        .analyse(&photo)
        .expect("analyse")
        .face
        .expect("a face");
    for spec in manifest
        .models()
        .iter()
        .filter(|m| m.role == ModelRole::FacePad)
    {
        let scorer = PadScorer::load(&manifest, backend.as_ref(), spec).expect("load PAD model");
        let score = scorer.score(&photo, &face.detection).expect("score");
        assert!((0.0..=1.0).contains(&score), "{}: {score}", spec.id);
        let again = scorer.score(&photo, &face.detection).expect("score");
        assert_eq!(score, again, "{}: deterministic", spec.id);
    }
}
