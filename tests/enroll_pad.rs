//! The passive presentation-attack check on `edgeid enroll`: every photo is
//! scored by a real `face_pad` model and only those reaching the threshold
//! are enrolled. No PAD model ships (none carried signal, see `edgeid eval
//! pad`), so the tests name the committed evaluation-only `human-liveness`
//! model; without a model the check is reported as not available.

mod support;

use predicates::prelude::*;
use support::{Device, samples, stdout_json};

const MODEL: &str = "human-liveness";

fn enroll(
    e: &Device,
    subject: &str,
    pad: &[&str],
    photos: &[std::path::PathBuf],
) -> assert_cmd::assert::Assert {
    e.cmd()
        .args(["enroll", "--json", "--subject", subject])
        .args(pad)
        .args(photos)
        .assert()
}

fn enrolled_subjects(e: &Device) -> Vec<String> {
    let list = e.json(&["subjects", "list", "--json"]);
    list.as_array()
        .expect("a subject list")
        .iter()
        .map(|s| s["subject"].as_str().expect("subject id").to_owned())
        .collect()
}

fn enroll_records(e: &Device) -> Vec<serde_json::Value> {
    e.audit_records()
        .into_iter()
        .filter(|r| r["event"] == "enroll")
        .collect()
}

#[test]
fn photos_below_the_pad_threshold_are_not_enrolled() {
    let samples = require!(samples());
    let photos = vec![samples.join("obama.jpg"), samples.join("obama3.jpg")];
    let e = Device::new("");
    e.init();

    // Every live score is a probability: a threshold above 1 rejects all.
    e.cmd()
        .args(["enroll", "--subject", "obama", "--pad-model", MODEL])
        .args(["--pad-threshold", "1.5"])
        .args(&photos)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "not used (presentation_attack): live score",
        ))
        .stderr(predicate::str::contains("presentation-attack checks"));
    assert!(enrolled_subjects(&e).is_empty());
    assert!(
        enroll_records(&e).is_empty(),
        "a refused enrolment is not audited as one"
    );

    // Threshold 0 accepts every face and reports each photo's score.
    let out = enroll(
        &e,
        "obama",
        &["--pad-model", MODEL, "--pad-threshold", "0"],
        &photos,
    )
    .success()
    .get_output()
    .clone();
    let report = stdout_json(&out);
    assert_eq!(report["presentation_attack_check"]["model_id"], MODEL);
    assert_eq!(report["presentation_attack_check"]["threshold"], 0.0);
    let scores: Vec<f64> = report["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .map(|p| p["pad_score"].as_f64().expect("a PAD score per photo"))
        .collect();
    assert_eq!(scores.len(), 2);
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{scores:?}");
    let records = enroll_records(&e);
    assert_eq!(records.len(), 1);
    let detail = &records[0]["detail"];
    assert_eq!(detail["presentation_attack_check"]["model_id"], MODEL);
    assert_eq!(detail["pad_scores"].as_array().map(Vec::len), Some(2));

    // A threshold between the two scores keeps exactly the higher one.
    let (lo, hi) = (scores[0].min(scores[1]), scores[0].max(scores[1]));
    if hi - lo > 1e-4 {
        let mid = format!("{}", (lo + hi) / 2.0);
        let out = enroll(
            &e,
            "obama-mid",
            &["--pad-model", MODEL, "--pad-threshold", &mid],
            &photos,
        )
        .success()
        .get_output()
        .clone();
        let report = stdout_json(&out);
        assert_eq!(report["accepted"], 1, "{report}");
        for p in report["photos"].as_array().expect("photos") {
            let live = p["pad_score"].as_f64().expect("score") >= (lo + hi) / 2.0;
            let rejected = p["rejected"].as_str();
            assert_eq!(rejected, (!live).then_some("presentation_attack"), "{p}");
        }
    }
}

#[test]
fn the_pad_model_must_be_a_pad_model_with_a_threshold() {
    let samples = require!(samples());
    let photos = vec![samples.join("obama.jpg")];
    let e = Device::new("");
    e.init();
    // An evaluation-only model has no measured threshold: it must be given.
    enroll(&e, "obama", &["--pad-model", MODEL], &photos)
        .failure()
        .stderr(predicate::str::contains("--pad-threshold"));
    enroll(
        &e,
        "obama",
        &["--pad-model", "blazeface-front", "--pad-threshold", "0.5"],
        &photos,
    )
    .failure()
    .stderr(predicate::str::contains(
        "no face_pad model \"blazeface-front\"",
    ))
    .stderr(predicate::str::contains(MODEL));
    // A threshold without any model to apply it to is refused, not ignored.
    enroll(&e, "obama", &["--pad-threshold", "0.5"], &photos)
        .failure()
        .stderr(predicate::str::contains("--pad-model"));
    assert!(enrolled_subjects(&e).is_empty());

    // No model named and none ships: enrolled, and the record says no PAD
    // check was available rather than implying one passed.
    let out = enroll(&e, "obama", &[], &photos)
        .success()
        .get_output()
        .clone();
    assert!(stdout_json(&out)["presentation_attack_check"].is_null());
    let records = enroll_records(&e);
    assert_eq!(
        records[0]["detail"]["presentation_attack_check"],
        "not_available"
    );
}
