//! Enrol, verify, identify, lockout and demo on real photos with the real
//! face models; plus the on-disk search for plaintext embeddings.

mod support;

use predicates::prelude::*;
use support::device::database_bytes;
use support::models::pipeline;
use support::{Device, edgeid, samples, stdout_json};

use edgeid::sources::load_image;

#[test]
fn genuine_accepts_impostor_rejects_and_identify_is_opt_in() {
    let samples = require!(samples());
    let e = Device::new("");
    e.init();
    let out = e
        .cmd()
        .args(["enroll", "--json", "--subject", "obama"])
        .arg(samples.join("obama.jpg"))
        .arg(samples.join("obama3.jpg"))
        .arg(samples.join("obama_partial_face.jpg"))
        .assert()
        .success()
        .get_output()
        .clone();
    let report = stdout_json(&out);
    assert!(report["accepted"].as_u64().expect("accepted") >= 2);
    e.cmd()
        .args(["enroll", "--subject", "biden"])
        .arg(samples.join("biden.jpg"))
        .assert()
        .success();
    e.cmd()
        .args(["enroll", "--subject", "obama"])
        .arg(samples.join("obama.jpg"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("--replace"));

    let out = e
        .cmd()
        .args(["verify", "--json", "--subject", "obama", "--nonce", "n1"])
        .arg(samples.join("obama2.jpg"))
        .assert()
        .success()
        .get_output()
        .clone();
    let r = stdout_json(&out);
    assert_eq!(r["issued"]["claims"]["decision"], "accept");
    assert_eq!(r["issued"]["claims"]["reason"], "match");
    assert_eq!(r["issued"]["claims"]["sub"], "obama");
    let verdict = r["issued"]["verdict"].as_str().expect("verdict").to_owned();
    assert!(!verdict.contains("score"));
    e.cmd()
        .args(["verdict", "verify", "--nonce", "n1", &verdict])
        .assert()
        .success();

    let out = e
        .cmd()
        .args(["verify", "--json", "--subject", "obama"])
        .arg(samples.join("biden.jpg"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("did not match obama"))
        .get_output()
        .clone();
    assert_eq!(stdout_json(&out)["issued"]["claims"]["reason"], "no_match");

    e.cmd()
        .arg("identify")
        .arg(samples.join("obama2.jpg"))
        .assert()
        .failure();
    std::fs::write(&e.config, "identify_enabled = true\n").expect("config");
    let out = e
        .cmd()
        .args(["identify", "--json"])
        .arg(samples.join("obama2.jpg"))
        .assert()
        .success()
        .get_output()
        .clone();
    let r = stdout_json(&out);
    assert_eq!(r["issued"]["claims"]["sub"], "obama");
    assert_eq!(r["issued"]["claims"]["mode"], "identify");

    let identify = e
        .audit_records()
        .into_iter()
        .find(|r| r["event"] == "identify")
        .expect("identify audited");
    assert_eq!(identify["detail"]["identify_enabled"], true);
    assert!(
        identify["detail"]["score"].is_number(),
        "scores stay in the audit log"
    );
    e.cmd().args(["audit", "verify"]).assert().success();

    let out = e
        .cmd()
        .args(["subjects", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout_json(&out).as_array().expect("list").len(), 2);
    e.cmd()
        .args(["subjects", "revoke", "biden"])
        .assert()
        .success();
    e.cmd()
        .args(["verify", "--subject", "biden"])
        .arg(samples.join("biden.jpg"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("not enrolled"));
}

#[test]
fn repeated_failures_lock_the_subject_out_without_running_models() {
    let samples = require!(samples());
    // A wait of 600 s after the third failure: long enough to be certain here.
    let e = Device::new(
        "[lockout]\nmax_failures = 3\nwindow_secs = 600\nbackoff_initial_secs = 600\nbackoff_max_secs = 600\n",
    );
    e.init();
    e.cmd()
        .args(["enroll", "--subject", "obama"])
        .arg(samples.join("obama.jpg"))
        .assert()
        .success();
    for _ in 0..3 {
        e.cmd()
            .args(["verify", "--subject", "obama"])
            .arg(samples.join("biden.jpg"))
            .assert()
            .failure()
            .stderr(predicate::str::contains("did not match"));
    }
    // Locked: even the genuine face is refused, and no model is loaded
    // (a missing models dir proves it).
    let out = e
        .cmd()
        .args([
            "verify",
            "--json",
            "--subject",
            "obama",
            "--models-dir",
            "/nonexistent",
        ])
        .arg(samples.join("obama2.jpg"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("locked out"))
        .get_output()
        .clone();
    assert_eq!(
        stdout_json(&out)["issued"]["claims"]["reason"],
        "locked_out"
    );
    assert!(e.audit_records().iter().any(|r| r["event"] == "lockout"));

    // An admin unlocks: the failures go, audited with who did it, and the
    // genuine face is accepted again.
    let out = e
        .cmd()
        .args(["--json", "subjects", "unlock", "obama"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout_json(&out)["failures_cleared"], 3);
    let unlock = e
        .audit_records()
        .into_iter()
        .rfind(|r| r["event"] == "unlock")
        .expect("an unlock record");
    assert_eq!(unlock["detail"]["by"]["via"], "cli");
    assert_eq!(unlock["detail"]["failures_cleared"], 3);
    e.cmd()
        .args(["verify", "--subject", "obama"])
        .arg(samples.join("obama2.jpg"))
        .assert()
        .success();
}

#[test]
fn no_plaintext_embedding_reaches_the_database_or_wal() {
    let samples = require!(samples());
    let e = Device::new("");
    e.init();
    let photos = ["obama.jpg", "obama3.jpg", "biden.jpg"];
    e.cmd()
        .args(["enroll", "--subject", "obama"])
        .arg(samples.join(photos[0]))
        .arg(samples.join(photos[1]))
        .assert()
        .success();
    e.cmd()
        .args(["enroll", "--subject", "biden"])
        .arg(samples.join(photos[2]))
        .assert()
        .success();
    let (mut haystack, wal) = database_bytes(&e.state);
    haystack.extend(wal);
    for photo in photos {
        let image = load_image(&samples.join(photo)).expect("image");
        let face = pipeline()
            .analyse(&image)
            .expect("analyse")
            .face
            .expect("face");
        let bytes: Vec<u8> = face
            .embedding
            .0
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        for w in bytes.chunks(16) {
            assert!(
                !haystack.windows(16).any(|h| h == w),
                "{photo}: embedding bytes found on disk"
            );
        }
    }
}

#[test]
fn demo_runs_end_to_end() {
    let samples = require!(samples());
    let out = assert_cmd::Command::from_std(edgeid())
        .args(["demo", "--json", "--samples"])
        .arg(&samples)
        .assert()
        .success()
        .get_output()
        .clone();
    let r = stdout_json(&out);
    assert_eq!(r["genuine"]["claims"]["decision"], "accept");
    assert_eq!(r["impostor"]["claims"]["decision"], "reject");
    assert_eq!(r["impostor"]["claims"]["reason"], "no_match");
    assert!(
        r["genuine"]["verification"]
            .as_str()
            .expect("text")
            .starts_with("valid")
    );
    assert!(r["audit"]["broken"].is_null());
    let state = r["state_dir"].as_str().expect("state dir");
    assert!(!std::path::Path::new(state).exists(), "the demo cleans up");
}

#[test]
fn demo_without_samples_says_how_to_get_them() {
    assert_cmd::Command::from_std(edgeid())
        .args(["demo", "--samples", "/nonexistent"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("scripts/fetch-test-data"));
}
