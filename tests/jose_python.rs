//! A verdict from `edgeid verify` verified in a second language with an
//! off-the-shelf JOSE library (PyJWT), using the JWK from
//! `edgeid keys show --jwk`; tampered, expired and wrong-nonce verdicts are
//! rejected by PyJWT and by `edgeid verdict verify`.
//!
//! Needs the venv from `scripts/test-python-setup`; without it the test is
//! skipped with a loud message.

mod store_common;

use store_common::{env_with_config, face_ready, stdout_json};

fn first_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn pyjwt_verifies_edgeid_verdicts() {
    let venv = store_common::repo().join(".cache/pyvenv/bin/python");
    if !venv.is_file() {
        eprintln!(
            "\n\n*** SKIPPED pyjwt_verifies_edgeid_verdicts: run scripts/test-python-setup first ***\n\n"
        );
        return;
    }
    let e = env_with_config("verdict_lifetime_secs = 1\n");
    e.init();
    let jwk = e.dir.join("jwk.json");
    let out = e
        .cmd()
        .args(["keys", "show", "--jwk"])
        .output()
        .expect("run");
    assert!(out.status.success());
    std::fs::write(&jwk, &out.stdout).expect("jwk");

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

    // A real match when the face models are here; an unknown-subject reject otherwise.
    let valid = match face_ready() {
        Some(samples) => {
            e.cmd()
                .args(["enroll", "--subject", "obama"])
                .arg(samples.join("obama.jpg"))
                .assert()
                .success();
            let out = e
                .cmd()
                .args(["verify", "--json", "--subject", "obama", "--nonce", "n-123"])
                .arg(samples.join("obama2.jpg"))
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout_json(&out)["issued"]["verdict"]
                .as_str()
                .expect("verdict")
                .to_owned()
        }
        None => first_line(
            &e.cmd()
                .args([
                    "verify",
                    "--subject",
                    "nobody",
                    "--nonce",
                    "n-123",
                    "Cargo.toml",
                ])
                .output()
                .expect("run"),
        ),
    };
    assert_eq!(valid.split('.').count(), 3, "not a compact JWS: {valid}");

    let script = store_common::repo().join("tests/python/verify_jws.py");
    let out = std::process::Command::new(&venv)
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
        .args(["verdict", "verify", &expired])
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
        .args(["verdict", "verify", &flipped])
        .assert()
        .failure();
}
