//! The voice factor through the CLI verbs, end to end with the real models:
//! voice enrolment from audio files, voice-only and face+voice decisions
//! under the `[decision] modalities` policy, the replay rule, too little
//! speech, and a request for a weaker policy than the site's. Speakers are
//! espeak-ng voices (no recordings needed); accuracy on real speech is
//! `edgeid eval voice`'s business.

mod support;

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use support::speech::{clips, say};
use support::{Device, claims, samples, stdout_json, tools};

const EITHER: &str =
    "[decision]\nmodalities = \"face|voice\"\n[microphone]\ndevice = \"default\"\n";
const BOTH: &str = "[decision]\nmodalities = \"face+voice\"\n[microphone]\ndevice = \"default\"\n";

fn p(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

/// `verify` with `config`: the report (success or not).
fn verify(d: &Device, config: &Path, subject: &str, args: &[&str]) -> serde_json::Value {
    let out = d
        .command(config)
        .args(["verify", "--json", "--subject", subject, "--nonce", "n-1"])
        .args(args)
        .output()
        .expect("run verify");
    stdout_json(&out)
}

fn enrol_voice(d: &Device, subject: &str, files: &[PathBuf]) {
    let mut args = vec!["enroll", "--subject", subject, "--voice"];
    args.extend(files.iter().map(|f| p(f)));
    d.cli(&d.config, &args);
}

#[test]
fn voice_alone_accepts_its_speaker_and_refuses_others_replays_and_too_little_speech() {
    require!(tools(&["espeak-ng"]));
    let d = Device::new(EITHER);
    d.init();
    let audio = d.dir.join("audio");
    std::fs::create_dir(&audio).unwrap();
    let m3 = clips(&audio, "en-us+m3", 0..4);
    let f3 = clips(&audio, "en-us+f3", 0..4);
    enrol_voice(&d, "m3", &m3[..3]);
    enrol_voice(&d, "f3", &f3[..3]);

    let r = verify(&d, &d.config, "m3", &["--voice", p(&m3[3])]);
    let c = &r["issued"]["claims"];
    assert_eq!(c["decision"], "accept", "{r}");
    assert_eq!(c["modalities"], serde_json::json!(["voice"]));
    assert_eq!(c["amr"], serde_json::json!(["vbm"]));
    assert_eq!(c["src"], "file");
    let verdict = r["issued"]["verdict"].as_str().unwrap();
    assert!(!verdict.contains("score") && claims(verdict)["score"].is_null());

    // Another voice, a replayed enrolment clip, too little speech, and a
    // subject with no voice at all (answered like a mismatch).
    let cases = [
        ("m3", f3[3].clone(), "voice_mismatch"),
        ("m3", m3[0].clone(), "presentation_attack"),
        (
            "m3",
            say(&audio, "en-us+m3", "Open.", "short.wav"),
            "too_little_speech",
        ),
        ("nobody", m3[3].clone(), "voice_mismatch"),
    ];
    for (subject, clip, reason) in cases {
        let r = verify(&d, &d.config, subject, &["--voice", p(&clip)]);
        assert_eq!(r["issued"]["claims"]["decision"], "reject", "{reason}: {r}");
        assert_eq!(r["issued"]["claims"]["reason"], reason, "{r}");
    }
    // The audit keeps the cause and the score the verdicts leave out.
    let records = d.audit_records();
    let verdicts: Vec<_> = records.iter().filter(|r| r["event"] == "verify").collect();
    assert_eq!(verdicts.len(), 5);
    assert!(verdicts[0]["detail"]["voice"]["score"].as_f64().unwrap() > 0.83);
    assert_eq!(
        verdicts[2]["detail"]["voice"]["detail"]["cause"],
        "voice_replay"
    );
    assert_eq!(
        verdicts[4]["detail"]["voice"]["detail"]["cause"],
        "no_voice_templates"
    );
}

#[test]
fn voice_enrolment_needs_ten_seconds_of_speech_and_refuses_bad_audio() {
    require!(tools(&["espeak-ng"]));
    let d = Device::new(EITHER);
    d.init();
    let audio = d.dir.join("audio");
    std::fs::create_dir(&audio).unwrap();
    let one = clips(&audio, "en-gb", 0..1);
    d.cmd()
        .args(["enroll", "--subject", "gb", "--voice", p(&one[0])])
        .assert()
        .failure()
        .stderr(predicate::str::contains("10 s needed"));
    let junk = audio.join("junk.wav");
    std::fs::write(&junk, b"RIFF not really a wave file").unwrap();
    d.cmd()
        .args(["enroll", "--subject", "gb", "--voice", p(&junk)])
        .assert()
        .failure()
        .stderr(predicate::str::contains("junk.wav"));
    let subjects = d.json(&["--json", "subjects", "list"]);
    assert_eq!(subjects.as_array().map(Vec::len), Some(0), "{subjects}");
    // Enrolled once, a second voice enrolment must say --replace.
    let three = clips(&audio, "en-gb", 0..3);
    enrol_voice(&d, "gb", &three);
    d.cmd()
        .args([
            "enroll",
            "--subject",
            "gb",
            "--voice",
            p(&three[0]),
            p(&three[1]),
            p(&three[2]),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--replace"));
}

#[test]
fn face_and_voice_need_both_and_a_request_cannot_weaken_the_site_policy() {
    require!(tools(&["espeak-ng"]));
    let samples = require!(samples());
    let d = Device::new(BOTH);
    d.init();
    let audio = d.dir.join("audio");
    std::fs::create_dir(&audio).unwrap();
    let m3 = clips(&audio, "en-us+m3", 0..4);
    let f3 = clips(&audio, "en-us+f3", 3..4);
    let (obama, obama2, biden) = (
        samples.join("obama.jpg"),
        samples.join("obama2.jpg"),
        samples.join("biden.jpg"),
    );
    // Face and voice in one enrolment; a later voice re-enrolment keeps the face.
    // A voice that falls short stores nothing, not even the face.
    d.cmd()
        .args([
            "enroll",
            "--subject",
            "obama",
            p(&obama),
            "--voice",
            p(&m3[0]),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("10 s needed"));
    let subjects = d.json(&["--json", "subjects", "list"]);
    assert_eq!(subjects.as_array().map(Vec::len), Some(0), "{subjects}");
    // Photos first: `--voice` takes every file after it.
    let obama3 = samples.join("obama3.jpg");
    let mut args = vec![
        "enroll",
        "--subject",
        "obama",
        p(&obama),
        p(&obama3),
        "--voice",
    ];
    args.extend(m3[..3].iter().map(|f| p(f)));
    d.cli(&d.config, &args);

    let r = verify(&d, &d.config, "obama", &["--voice", p(&m3[3]), p(&obama2)]);
    let c = &r["issued"]["claims"];
    assert_eq!(c["decision"], "accept", "{r}");
    assert_eq!(c["modalities"], serde_json::json!(["face", "voice"]));
    assert_eq!(c["amr"], serde_json::json!(["face", "vbm"]));
    assert!(c["score"].is_null());

    // The right face with another voice; the right voice with another face.
    let r = verify(&d, &d.config, "obama", &["--voice", p(&f3[0]), p(&obama2)]);
    assert_eq!(r["issued"]["claims"]["reason"], "voice_mismatch", "{r}");
    let r = verify(&d, &d.config, "obama", &["--voice", p(&m3[3]), p(&biden)]);
    assert_eq!(r["issued"]["claims"]["reason"], "no_match", "{r}");

    // A weaker policy than the site's is refused before any decision.
    d.cmd()
        .args([
            "verify",
            "--subject",
            "obama",
            "--modalities",
            "voice",
            "--voice",
            p(&m3[3]),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("weaker"));
    // The face alone does not meet face+voice.
    d.cmd()
        .args(["verify", "--subject", "obama", p(&obama2)])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--voice"));
}
