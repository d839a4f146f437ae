//! One decision path: the same photo through `edgeid verify` (photo files)
//! and through the daemon (the same photo played by a folder camera, asked
//! over D-Bus) gets the same decision, reason and audit record. Only what
//! says which entry point asked (origin, liveness mode "none" for files vs
//! "off" for the camera, frames analysed, timings) may differ.

mod support;

use serde_json::Value;
use support::auth1::connect;
use support::{Daemon, DbusDaemon, Device, claims, samples, tools};

/// (nonce, claimed subject): a match, another person, someone not enrolled
/// (answered as a no-match: requesters cannot enumerate who is enrolled).
const REQUESTS: [(&str, &str); 3] = [
    ("same-1", "obama"),
    ("same-2", "biden"),
    ("same-3", "nobody-enrolled"),
];

/// The verify records in the audit log, oldest first.
fn verify_records(f: &Device) -> Vec<Value> {
    let db = f.sql();
    let mut stmt = db
        .prepare(
            "SELECT event, subject, decision, reason, detail FROM audit \
             WHERE event = 'verify' ORDER BY id",
        )
        .expect("query");
    stmt.query_map([], |r| {
        let detail: String = r.get(4)?;
        Ok(serde_json::json!({
            "event": r.get::<_, String>(0)?,
            "subject": r.get::<_, Option<String>>(1)?,
            "decision": r.get::<_, Option<String>>(2)?,
            "reason": r.get::<_, Option<String>>(3)?,
            "detail": serde_json::from_str::<Value>(&detail).expect("detail JSON"),
        }))
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("records")
}

/// Splits off what may differ between entry points and returns it; the
/// scores, which come from two runs of the same models on the same pixels,
/// are returned for a comparison within float noise.
fn entry_specific(record: &mut Value) -> (Value, Option<f64>) {
    let detail = record["detail"].as_object_mut().expect("detail object");
    let mut specific = serde_json::Map::new();
    for key in [
        "origin",
        "seq",
        "jti",
        "build",
        "timings",
        "frames_analysed",
        "liveness",
    ] {
        if let Some(v) = detail.remove(key) {
            specific.insert(key.into(), v);
        }
    }
    let score = detail.remove("score").and_then(|s| s.as_f64());
    (Value::Object(specific), score)
}

#[test]
fn cli_and_daemon_decide_the_same_photo_the_same_way() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon"]));
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let biden = samples.join("biden.jpg");
    f.cli(
        &f.config,
        &[
            "enroll",
            "--subject",
            "biden",
            biden.to_str().expect("utf8"),
        ],
    );
    let photo = samples.join("obama2.jpg");
    let photo = photo.to_str().expect("utf8");

    // Entry point 1: the CLI on the photo file. Rejections exit non-zero.
    for (nonce, subject) in REQUESTS {
        let out = f
            .command(&f.config)
            .args(["verify", "--subject", subject, "--nonce", nonce, photo])
            .output()
            .expect("edgeid verify");
        let verdict = String::from_utf8_lossy(&out.stdout);
        let verdict = verdict.lines().next().expect("a verdict on stdout");
        assert_eq!(claims(verdict)["nonce"], nonce);
    }

    // Entry point 2: the daemon, its folder camera playing the same photo.
    let bus = DbusDaemon::start(&f.dir);
    let config = f.write_config(
        "daemon",
        &format!(
            "[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [dbus]\nenabled = true\nbus = \"{}\"\n[liveness]\nmode = \"off\"\n",
            f.camera.display(),
            bus.address
        ),
    );
    let daemon = Daemon::start(&f, &config, &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = connect(&bus).await;
        for (nonce, subject) in REQUESTS {
            let verdict = client.verify(subject, nonce, 10_000).await.expect("Verify");
            assert_eq!(claims(&verdict)["nonce"], nonce);
        }
    });
    daemon.stop();

    let mut records = verify_records(&f);
    // Someone not enrolled is answered as a no-match after the same work;
    // only the audit record says why.
    assert_eq!(
        records[2]["detail"]["cause"], "unknown_subject",
        "{:#}",
        records[2]
    );
    assert_eq!(records.len(), 2 * REQUESTS.len(), "{records:#?}");
    let daemon_records = records.split_off(REQUESTS.len());
    let outcomes: Vec<_> = records
        .iter()
        .map(|r| (r["reason"].as_str(), r["decision"].as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Some("match"), Some("accept")),
            (Some("no_match"), Some("reject")),
            (Some("no_match"), Some("reject")),
        ]
    );
    for (mut cli, mut daemon) in records.into_iter().zip(daemon_records) {
        let (cli_specific, cli_score) = entry_specific(&mut cli);
        let (daemon_specific, daemon_score) = entry_specific(&mut daemon);
        assert_eq!(cli, daemon, "the same evidence, the same record");
        assert_eq!(
            (
                cli_specific["origin"].as_str(),
                daemon_specific["origin"].as_str()
            ),
            (Some("cli"), Some("dbus"))
        );
        // Files cannot show liveness ("none"); the camera had it off.
        let modes = (
            cli_specific["liveness"]["mode"].as_str(),
            daemon_specific["liveness"]["mode"].as_str(),
        );
        assert_eq!(modes, (Some("none"), Some("off")));
        match (cli_score, daemon_score) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-4, "scores {a} vs {b}"),
            (None, None) => {}
            other => panic!("a score on one side only: {other:?}"),
        }
    }
}
