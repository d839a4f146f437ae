//! `edgeid bench --daemon`: the real daemon in-process, verify requests
//! over a real Mosquitto, every verdict verified, for the face and (with
//! `--voice`) for the voice. Checks that the run completes and reports
//! sane figures; no timing thresholds (latency is measured by the bench
//! itself, on a quiet machine, not asserted here).

mod support;

use std::collections::BTreeSet;

use support::process::run_ok;
use support::{Mosquitto, edgeid, samples, stdout_json, tools};

fn bench(samples: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = run_ok(
        edgeid()
            .args(["bench", "--daemon", "--json"])
            .args(args)
            .env("EDGEID_SAMPLES_DIR", samples),
    );
    stdout_json(&out)
}

fn non_negative(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x >= 0.0, "{what} = {x}");
    x
}

fn check_stats(s: &serde_json::Value, what: &str, count: u64) {
    assert_eq!(s["count"], count, "{what}: {s}");
    let p50 = non_negative(&s["p50_ms"], what);
    let p99 = non_negative(&s["p99_ms"], what);
    let max = non_negative(&s["max_ms"], what);
    non_negative(&s["mean_ms"], what);
    assert!(p50 <= p99 && p99 <= max, "{what}: {s}");
}

#[test]
fn twenty_requests_against_a_broker_the_test_started() {
    let samples = require!(samples());
    require!(tools(&["mosquitto"]));
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = Mosquitto::start(&tmp.path().join("broker"));
    let plot = tmp.path().join("latency.png");
    let report = bench(
        &samples,
        &[
            "--requests",
            "20",
            "--broker",
            &format!("127.0.0.1:{}", broker.port),
            "--plot",
            plot.to_str().expect("utf8"),
        ],
    );
    assert_eq!(report["requests"], 20, "{report}");
    assert_eq!(report["verified"], 20, "{report}");
    let list = report["samples"].as_array().expect("samples");
    assert_eq!(list.len(), 20);
    let nonces: BTreeSet<&str> = list
        .iter()
        .map(|s| s["nonce"].as_str().expect("nonce"))
        .collect();
    assert_eq!(nonces.len(), 20, "a fresh nonce per request");
    let seqs: BTreeSet<u64> = list
        .iter()
        .map(|s| s["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs.len(), 20, "one verdict per request");
    for s in list {
        let total = non_negative(&s["request_to_verdict_ms"], "request_to_verdict_ms");
        let frame = non_negative(&s["frame_to_bus_ms"], "frame_to_bus_ms");
        assert!(frame <= total, "frame → bus within request → verdict: {s}");
        for key in [
            "request_to_frame_ms",
            "frame_to_sink_ms",
            "pipeline_ms",
            "sink_to_socket_ms",
            "sink_to_disk_ms",
            "socket_to_subscriber_ms",
        ] {
            non_negative(&s[key], key);
        }
        assert_eq!(s["decision"], "accept", "the enrolled subject: {s}");
    }
    check_stats(&report["frame_to_bus"], "frame_to_bus", 20);
    check_stats(&report["request_to_verdict"], "request_to_verdict", 20);
    for seg in report["breakdown"].as_array().expect("breakdown") {
        let name = seg["name"].as_str().expect("name");
        check_stats(&seg["stats"], name, 20);
    }
    let png = image::open(&plot).expect("a readable latency chart");
    assert!(png.width() > 0 && png.height() > 0);
}

#[test]
fn starts_a_private_mosquitto_when_no_broker_is_given() {
    let samples = require!(samples());
    require!(tools(&["mosquitto"]));
    let report = bench(&samples, &["--requests", "3", "--warmup", "0"]);
    assert_eq!(report["verified"], 3, "{report}");
    assert!(
        report["broker"]
            .as_str()
            .is_some_and(|b| b.contains("private mosquitto")),
        "{report}"
    );
}

#[test]
fn voice_requests_through_the_daemon_with_a_speaker_on_a_fifo() {
    require!(tools(&["mosquitto", "espeak-ng"]));
    let tmp = tempfile::tempdir().expect("tmp");
    let plot = tmp.path().join("voice.png");
    let out = run_ok(edgeid().args([
        "bench",
        "--daemon",
        "--voice",
        "--json",
        "--requests",
        "4",
        "--warmup",
        "1",
        "--voice-partial-threads",
        "2",
        "--plot",
        plot.to_str().expect("utf8"),
    ]));
    let report = stdout_json(&out);
    assert_eq!(report["modality"], "voice", "{report}");
    assert_eq!(report["verified"], 4, "{report}");
    assert_eq!(report["voice_partial_threads"], 2, "{report}");
    assert!(
        report["microphone"]
            .as_str()
            .is_some_and(|m| m.contains("espeak-ng") && m.contains("FIFO")),
        "{report}"
    );
    let list = report["samples"].as_array().expect("samples");
    assert_eq!(list.len(), 4);
    for s in list {
        // Each probe a different sentence: matched, never a replay.
        assert_eq!(s["decision"], "accept", "the enrolled speaker: {s}");
        let total = non_negative(&s["request_to_verdict_ms"], "request_to_verdict_ms");
        let audio = non_negative(&s["frame_to_bus_ms"], "frame_to_bus_ms");
        assert!(audio <= total, "audio → bus within request → verdict: {s}");
        // The daemon listened to 2.7 s of speech said after the request.
        let listening = non_negative(&s["request_to_frame_ms"], "request_to_frame_ms");
        assert!(listening >= 2700.0, "{s}");
        for key in [
            "frame_to_sink_ms",
            "pipeline_ms",
            "sink_to_socket_ms",
            "socket_to_subscriber_ms",
        ] {
            non_negative(&s[key], key);
        }
    }
    check_stats(&report["frame_to_bus"], "frame_to_bus", 4);
    for seg in report["breakdown"].as_array().expect("breakdown") {
        let name = seg["name"].as_str().expect("name");
        check_stats(&seg["stats"], name, 4);
    }
    let png = image::open(&plot).expect("a readable latency chart");
    assert!(png.width() > 0 && png.height() > 0);
}
