//! `org.edgeid.Auth1` on a private dbus-daemon: busctl, gdbus and a zbus
//! client call Verify, Identify, ListSubjects and EnrollStart against a
//! daemon whose camera is an image folder; the verdicts verify; bad
//! arguments get named errors; a caller running as `nobody` is refused the
//! admin methods with `org.edgeid.Auth1.Error.NotAuthorized`.

mod support;

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use support::auth1::connect;
use support::{Daemon, DbusDaemon, Device, claims, samples, tools};

fn gdbus(address: &str, as_nobody: bool, method: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = support::bus::gdbus(as_nobody);
    cmd.args([
        "call",
        "--address",
        address,
        "--dest",
        "org.edgeid.Auth1",
        "--object-path",
        "/org/edgeid/Auth1",
    ])
    .args(["--method", &format!("org.edgeid.Auth1.{method}")])
    .args(args);
    let out = cmd.output().expect("gdbus");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JWS inside gdbus / busctl output (`('eyJ...',)` or `s "eyJ..."`).
fn jws_in(text: &str) -> String {
    text.split(['\'', '"'])
        .find(|p| p.starts_with("eyJ"))
        .expect("a JWS in the output")
        .to_owned()
}

#[test]
fn auth1_on_a_private_bus() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon", "busctl", "gdbus", "setpriv"]));
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let bus = DbusDaemon::start(&f.dir);
    // Liveness off: the folder camera plays a still photo, which cannot
    // move like a 3-D head, and this test is about the bus, not liveness
    // (tests/liveness_daemon.rs covers that).
    let config = f.write_config(
        "dbus",
        &format!(
            "identify_enabled = true\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [daemon]\nenroll_samples = 2\n[dbus]\nenabled = true\nbus = \"{}\"\n\
             [liveness]\nmode = \"off\"\n",
            f.camera.display(),
            bus.address
        ),
    );
    let daemon = Daemon::start(&f, &config, &[]);

    // busctl: Verify → a signed accept verdict carrying the nonce.
    let out = Command::new("busctl")
        .arg(format!("--address={}", bus.address))
        .args([
            "call",
            "org.edgeid.Auth1",
            "/org/edgeid/Auth1",
            "org.edgeid.Auth1",
            "Verify",
            "ssu",
            "obama",
            "nonce-1",
            "10000",
        ])
        .output()
        .expect("busctl");
    assert!(
        out.status.success(),
        "busctl Verify: {} {}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log_text()
    );
    let token = jws_in(&String::from_utf8_lossy(&out.stdout));
    let c = claims(&token);
    assert_eq!(
        (
            c["decision"].as_str(),
            c["sub"].as_str(),
            c["nonce"].as_str()
        ),
        (Some("accept"), Some("obama"), Some("nonce-1"))
    );
    assert!(f.verdict_verifies(&config, &token, Some("nonce-1")));

    // gdbus: Identify.
    let (ok, stdout, stderr) = gdbus(&bus.address, false, "Identify", &["nonce-2", "10000"]);
    assert!(ok, "{stderr}");
    assert_eq!(claims(&jws_in(&stdout))["sub"], "obama");

    // Unknown subject: a verdict, not an error, and indistinguishable from
    // a no-match (the audit log keeps the cause).
    let (ok, stdout, _) = gdbus(
        &bus.address,
        false,
        "Verify",
        &["nobody-here", "n3", "2000"],
    );
    assert!(ok);
    assert_eq!(claims(&jws_in(&stdout))["reason"], "no_match");

    // Malformed arguments: named errors, and the daemon keeps serving.
    let (ok, _, stderr) = gdbus(
        &bus.address,
        false,
        "Verify",
        &["../etc/passwd", "n4", "1000"],
    );
    assert!(
        !ok && stderr.contains("org.edgeid.Auth1.Error.InvalidArgument"),
        "{stderr}"
    );
    let long_nonce = "x".repeat(5000);
    let (ok, _, stderr) = gdbus(
        &bus.address,
        false,
        "Verify",
        &["obama", &long_nonce, "1000"],
    );
    assert!(
        !ok && stderr.contains("org.edgeid.Auth1.Error.InvalidArgument"),
        "{stderr}"
    );

    // Unprivileged caller: Verify is allowed, admin methods are refused by name.
    let (ok, stdout, stderr) = gdbus(&bus.address, true, "Verify", &["obama", "n5", "10000"]);
    assert!(ok, "nobody may verify: {stderr}");
    assert_eq!(claims(&jws_in(&stdout))["decision"], "accept");
    for (method, args) in [
        ("ListSubjects", vec![]),
        ("Revoke", vec!["obama"]),
        ("EnrollStart", vec!["mallory", "['face']"]),
        ("Unlock", vec!["obama"]),
    ] {
        let (ok, _, stderr) = gdbus(&bus.address, true, method, &args);
        assert!(
            !ok && stderr.contains("org.edgeid.Auth1.Error.NotAuthorized"),
            "{method} as nobody: {stderr}"
        );
    }

    // zbus client: properties, ListSubjects, EnrollStart with its signals.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let proxy = connect(&bus).await;
        let jwk: serde_json::Value =
            serde_json::from_str(&proxy.device_key().await.expect("DeviceKey")).expect("JWK");
        assert_eq!(jwk["kty"], "OKP");
        assert!(!proxy.version().await.expect("Version").is_empty());
        assert!(
            proxy
                .models()
                .await
                .expect("Models")
                .iter()
                .any(|m| m.starts_with("face_embedder "))
        );
        assert_eq!(
            proxy.list_subjects().await.expect("ListSubjects"),
            vec!["obama".to_owned()]
        );

        let mut progress = proxy
            .receive_enroll_progress()
            .await
            .expect("progress stream");
        let mut done = proxy.receive_enroll_done().await.expect("done stream");
        let err = proxy
            .enroll_start("carol", &["voice"])
            .await
            .expect_err("voice needs a microphone, and none is configured");
        assert!(err.to_string().contains("Disabled"), "{err}");
        let err = proxy
            .enroll_start("carol", &["iris"])
            .await
            .expect_err("no such modality");
        assert!(err.to_string().contains("InvalidArgument"), "{err}");
        proxy
            .enroll_start("carol", &["face"])
            .await
            .expect("EnrollStart");
        let first = tokio::time::timeout(Duration::from_secs(60), progress.next())
            .await
            .expect("a progress signal")
            .expect("signal");
        assert_eq!(first.args().expect("args").subject, "carol");
        let end = tokio::time::timeout(Duration::from_secs(90), done.next())
            .await
            .expect("EnrollDone")
            .expect("signal");
        assert_eq!(end.args().expect("args").result, "ok");
        let mut subjects = proxy.list_subjects().await.expect("ListSubjects");
        subjects.sort();
        assert_eq!(subjects, vec!["carol".to_owned(), "obama".to_owned()]);
        // Replacing is explicit: EnrollStart refuses an enrolled subject,
        // EnrollReplace one that is not enrolled.
        let err = proxy
            .enroll_start("carol", &["face"])
            .await
            .expect_err("carol is enrolled");
        assert!(err.to_string().contains("SubjectExists"), "{err}");
        let err = proxy
            .enroll_replace("dave", &["face"])
            .await
            .expect_err("dave is not enrolled");
        assert!(err.to_string().contains("NoSuchSubject"), "{err}");
        assert_eq!(proxy.unlock("carol").await.expect("Unlock"), 0);
        proxy.revoke("carol").await.expect("Revoke");
        let err = proxy.revoke("carol").await.expect_err("already gone");
        assert!(err.to_string().contains("NoSuchSubject"), "{err}");
    });

    // Admin actions record who asked: the uid the bus vouched for.
    let records = f.audit_records();
    for event in ["enroll", "unlock", "revoke"] {
        let record = records
            .iter()
            .rfind(|r| r["event"] == event && r["subject"] == "carol")
            .unwrap_or_else(|| panic!("no {event} record for carol"));
        assert_eq!(
            record["detail"]["by"],
            serde_json::json!({"via": "dbus", "uid": 0}),
            "{record}"
        );
    }

    daemon.stop();
}
