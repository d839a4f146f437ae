//! The key, verdict, subject and audit verbs through the binary, with no
//! face model needed (a verdict for an unenrolled subject is still signed).

use predicates::prelude::*;

mod support;

use support::Device;
use support::device::{database_bytes, write_mode};

fn env() -> Device {
    Device::new("verdict_lifetime_secs = 30\n")
}

/// A grey photo with no face in it, written beside the device's state.
fn faceless_photo(e: &Device) -> std::path::PathBuf {
    let path = e.dir.join("faceless.png");
    if !path.exists() {
        image::RgbImage::from_pixel(160, 120, image::Rgb([128, 128, 128]))
            .save(&path)
            .expect("write the faceless photo");
    }
    path
}

/// A signed reject verdict from `edgeid verify` (a subject nobody enrolled,
/// a photo with no face: `no_face`, and the audit says who was claimed).
fn verdict(e: &Device, nonce: &str) -> String {
    let photo = faceless_photo(e);
    let out = e
        .cmd()
        .args(["verify", "--subject", "nobody", "--nonce", nonce])
        .arg(&photo)
        .assert()
        .failure()
        .stderr(predicate::str::contains("no face was found"))
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .expect("utf8")
        .lines()
        .next()
        .expect("verdict line")
        .to_owned()
}

#[test]
fn keys_init_refuses_to_overwrite_without_force() {
    let e = env();
    e.init();
    e.cmd()
        .args(["keys", "init"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--force"));
    e.cmd()
        .args(["keys", "init", "--force", "--json"])
        .assert()
        .success();
}

#[test]
fn keys_show_prints_an_okp_jwk_with_its_thumbprint_kid() {
    let e = env();
    e.init();
    let jwk: serde_json::Value = serde_json::from_str(&e.jwk()).expect("json");
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    let out = e
        .cmd()
        .args(["keys", "show", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let show: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(show["kid"], jwk["kid"]);
    assert_eq!(show["device_id"], "door-1");
}

#[test]
fn verdicts_verify_and_each_failure_is_named() {
    let e = env();
    e.init();
    let v = verdict(&e, "n-1");
    // A genuine reject is not a reason to open: status 3, not 0.
    e.cmd()
        .args(["verdict", "verify", "--nonce", "n-1", &v])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("genuine but says reject"));
    // Neither a nonce nor an explicit --any-nonce: a usage error.
    e.cmd()
        .args(["verdict", "verify", "--any-decision", &v])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--nonce"));
    let jwk = e.dir.join("jwk.json");
    std::fs::write(&jwk, e.jwk()).expect("jwk");
    let out = e
        .cmd()
        .args([
            "verdict",
            "verify",
            "--json",
            "--any-decision",
            "--nonce",
            "n-1",
            "--key",
        ])
        .arg(&jwk)
        .arg(&v)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).expect("json");
    // Not enrolled and no face: the reason is what the photo showed, as
    // for anyone enrolled (requesters cannot enumerate who is).
    assert_eq!(report["verified"]["claims"]["reason"], "no_face");
    assert_eq!(report["verified"]["claims"]["sub"], "nobody");
    assert_eq!(report["verified"]["claims"]["iss"], "door-1");
    // A photo file, no liveness possible: a controller can tell.
    assert_eq!(report["verified"]["claims"]["src"], "file");
    assert_eq!(report["verified"]["claims"]["liveness"], "none");
    assert_eq!(
        report["verified"]["claims"]["amr"],
        serde_json::json!(["face"])
    );
    e.cmd()
        .args(["verdict", "verify", "--nonce", "n-2", &v])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nonce check failed"));
    let mut tampered = v.clone().into_bytes();
    let mid = v.find('.').expect("dot") + 5;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("utf8");
    e.cmd()
        .args(["verdict", "verify", "--any-nonce", &tampered])
        .assert()
        .failure()
        .stderr(predicate::str::contains("check failed"));
    // Another device's key: the kid differs.
    let other = env();
    other.init();
    let other_jwk = e.dir.join("other.json");
    std::fs::write(&other_jwk, other.jwk()).expect("jwk");
    e.cmd()
        .args(["verdict", "verify", "--any-nonce", "--key"])
        .arg(&other_jwk)
        .arg(&v)
        .assert()
        .failure()
        .stderr(predicate::str::contains("kid check failed"));
    // A JWK with the private part: refused, and said why.
    let mut private: serde_json::Value = serde_json::from_str(&e.jwk()).expect("jwk json");
    private["d"] = serde_json::json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let private_jwk = e.dir.join("private.json");
    std::fs::write(&private_jwk, private.to_string()).expect("jwk");
    e.cmd()
        .args([
            "verdict",
            "verify",
            "--any-nonce",
            "--any-decision",
            "--key",
        ])
        .arg(&private_jwk)
        .arg(&v)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("carries a private key"));
}

#[test]
fn expired_verdicts_are_rejected() {
    let e = env();
    std::fs::write(&e.config, "verdict_lifetime_secs = 1\n").expect("config");
    e.init();
    let v = verdict(&e, "n");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    e.cmd()
        .args(["verdict", "verify", "--any-nonce", &v])
        .assert()
        .failure()
        .stderr(predicate::str::contains("exp check failed"));
}

#[test]
fn seq_increases_across_invocations() {
    let e = env();
    e.init();
    let seq = |v: &str| -> u64 {
        let out = e
            .cmd()
            .args([
                "verdict",
                "verify",
                "--json",
                "--any-nonce",
                "--any-decision",
                v,
            ])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let r: serde_json::Value = serde_json::from_slice(&out).expect("json");
        r["verified"]["claims"]["seq"].as_u64().expect("seq")
    };
    let a = seq(&verdict(&e, "a"));
    let b = seq(&verdict(&e, "b"));
    assert!(b > a);
}

#[test]
fn missing_short_loose_and_wrong_keks_are_clear_errors_and_modify_nothing() {
    let e = env();
    e.cmd()
        .args(["keys", "init"])
        .env_remove("EDGEID_KEK_FILE")
        .assert()
        .failure()
        .stderr(predicate::str::contains("no key-encryption key found"));
    assert!(!e.state.exists(), "nothing is created without a KEK");
    e.init();
    let before = database_bytes(&e.state);
    let short = e.dir.join("short");
    write_mode(&short, &[1u8; 16], 0o600);
    e.cmd()
        .args(["verify", "--subject", "x", "Cargo.toml"])
        .env("EDGEID_KEK_FILE", &short)
        .assert()
        .failure()
        .stderr(predicate::str::contains("32 raw bytes or 64 hex"));
    let loose = e.dir.join("loose");
    write_mode(&loose, &[42u8; 32], 0o644);
    e.cmd()
        .args(["verify", "--subject", "x", "Cargo.toml"])
        .env("EDGEID_KEK_FILE", &loose)
        .assert()
        .failure()
        .stderr(predicate::str::contains("chmod 600"));
    let wrong = e.dir.join("wrong");
    write_mode(&wrong, &[43u8; 32], 0o600);
    e.cmd()
        .args(["verify", "--subject", "x", "Cargo.toml"])
        .env("EDGEID_KEK_FILE", &wrong)
        .assert()
        .failure()
        .stderr(predicate::str::contains("wrong KEK"));
    e.cmd()
        .args(["keys", "rotate", "--new-kek"])
        .arg(&e.kek)
        .env("EDGEID_KEK_FILE", &wrong)
        .assert()
        .failure()
        .stderr(predicate::str::contains("wrong KEK"));
    assert_eq!(before, database_bytes(&e.state));
}

#[test]
fn a_newer_schema_is_a_clear_error_and_modifies_nothing() {
    let e = env();
    e.init();
    e.sql()
        .execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)",
            [],
        )
        .expect("bump");
    let before = database_bytes(&e.state);
    for args in [
        &["subjects", "list"][..],
        &["keys", "show"],
        &["audit", "verify"],
        &["verify", "--subject", "x", "Cargo.toml"],
    ] {
        e.cmd()
            .args(args)
            .assert()
            .failure()
            .stderr(predicate::str::contains("newer than this edgeid supports"));
    }
    assert_eq!(before, database_bytes(&e.state));
}

#[test]
fn rotation_moves_to_the_new_kek() {
    let e = env();
    e.init();
    let new = e.dir.join("new");
    write_mode(&new, "ab".repeat(32).as_bytes(), 0o600);
    e.cmd()
        .args(["keys", "rotate", "--dek", "--new-kek"])
        .arg(&new)
        .assert()
        .success();
    e.cmd()
        .args(["verify", "--subject", "x", "Cargo.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("wrong KEK"));
    e.cmd()
        .args(["verify", "--subject", "x"])
        .arg(faceless_photo(&e))
        .env("EDGEID_KEK_FILE", &new)
        .assert()
        .failure()
        .stderr(predicate::str::contains("no face was found"));
    let records = e.audit_records();
    let events: Vec<&str> = records.iter().filter_map(|r| r["event"].as_str()).collect();
    assert!(events.contains(&"keys_rotate"), "{events:?}");
}

#[test]
fn identify_is_off_unless_configured() {
    let e = env();
    e.init();
    e.cmd()
        .args(["identify", "Cargo.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("identify_enabled = true"));
}

#[test]
fn an_unknown_config_key_is_refused() {
    let e = env();
    std::fs::write(&e.config, "kek_fiel = \"/x\"\n").expect("config");
    e.cmd()
        .args(["keys", "init"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid config"));
}
