//! A verdict from `edgeid verify` verified in a second language with an
//! off-the-shelf JOSE library (PyJWT), using the JWK from
//! `edgeid keys show --jwk`; tampered, expired and wrong-nonce verdicts are
//! rejected by PyJWT and by `edgeid verdict verify`.
//!
//! Needs the venv from `scripts/test-python-setup` and the sample photos.

mod support;

use support::{Device, python_venv, repo, samples};

fn first_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn pyjwt_verifies_edgeid_verdicts() {
    let python = require!(python_venv());
    let samples = require!(samples());
    let e = Device::new("verdict_lifetime_secs = 1\n");
    e.init();
    let jwk = e.dir.join("jwk.json");
    std::fs::write(&jwk, e.jwk()).expect("jwk");

    let expired = first_line(
        &e.cmd()
            .args([
                "verify",
                "--subject",
                "nobody",
                "--nonce",
                "old",
                "Cargo.toml",
            ])
            .output()
            .expect("run"),
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    std::fs::write(&e.config, "verdict_lifetime_secs = 120\n").expect("config");

    e.cmd()
        .args(["enroll", "--subject", "obama"])
        .arg(samples.join("obama.jpg"))
        .assert()
        .success();
    let photo = samples.join("obama2.jpg");
    let photo = photo.to_str().expect("utf8");
    let valid = e.json(&[
        "verify",
        "--json",
        "--subject",
        "obama",
        "--nonce",
        "n-123",
        photo,
    ])["issued"]["verdict"]
        .as_str()
        .expect("verdict")
        .to_owned();
    assert_eq!(valid.split('.').count(), 3, "not a compact JWS: {valid}");

    let script = repo().join("tests/python/verify_jws.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&jwk)
        .args([&valid, "n-123", &expired])
        .output()
        .expect("python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "PyJWT cross-check failed:\n{text}");

    // The same cases through edgeid itself.
    e.cmd()
        .args(["verdict", "verify", "--nonce", "n-123", &valid])
        .assert()
        .success();
    e.cmd()
        .args(["verdict", "verify", "--nonce", "n-124", &valid])
        .assert()
        .failure();
    e.cmd()
        .args(["verdict", "verify", "--any-nonce", &expired])
        .assert()
        .failure();
    let mid = valid.len() / 2;
    let flipped = format!(
        "{}{}{}",
        &valid[..mid],
        if &valid[mid..mid + 1] == "A" {
            "B"
        } else {
            "A"
        },
        &valid[mid + 1..]
    );
    e.cmd()
        .args(["verdict", "verify", "--any-nonce", &flipped])
        .assert()
        .failure();
}
