//! The MQTT sink against a real Mosquitto on an ephemeral loopback port:
//! requests published with `mosquitto_pub` are answered with signed
//! verdicts seen by `mosquitto_sub` (QoS 1, MQTT 5 message expiry); bad
//! requests get named errors and the daemon keeps serving; the broker is
//! stopped mid-stream and restarted, and every verdict issued meanwhile
//! arrives afterwards, in sequence, none lost.
//!
//! The outage lasts `EDGEID_TEST_OUTAGE_SECS` (default 8; the acceptance
//! run uses 30).

mod support;

use std::collections::BTreeSet;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::{DEVICE, Daemon, Device, Mosquitto, claims, samples, tools};

struct Seen {
    verdicts: Vec<(i64, serde_json::Value, String)>,
}

impl Seen {
    /// Reads subscriber lines until `pred` holds for a verdict or `timeout`.
    fn until(
        &mut self,
        rx: &Receiver<String>,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        if let Some((_, c, _)) = self.verdicts.iter().find(|(_, c, _)| pred(c)) {
            return Some(c.clone());
        }
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            let mut parts = line.splitn(3, '|');
            let (_topic, expiry, payload) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let c = claims(payload);
            let expiry: i64 = expiry.parse().unwrap_or(-1);
            self.verdicts.push((expiry, c.clone(), payload.to_owned()));
            if pred(&c) {
                return Some(c);
            }
        }
        None
    }
}

#[test]
fn verdicts_over_mqtt_survive_a_broker_outage() {
    let samples = require!(samples());
    require!(tools(&["mosquitto", "mosquitto_pub", "mosquitto_sub"]));
    let outage: u64 = std::env::var("EDGEID_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let mut broker = Mosquitto::start(&f.dir.join("broker"));
    let (_sub, verdict_rx) =
        broker.subscribe(&format!("edgeid/{DEVICE}/verdict"), "test-verdicts", true);
    let (_esub, error_rx) =
        broker.subscribe(&format!("edgeid/{DEVICE}/error"), "test-errors", false);
    std::thread::sleep(Duration::from_millis(300));
    // Walk-up mode keeps issuing verdicts (one per debounce second) while
    // the broker is down; a long lifetime keeps them deliverable. Liveness
    // off: the folder camera plays a still photo, which cannot move like a
    // 3-D head (tests/liveness_daemon.rs covers liveness).
    let config = f.write_config(
        "mqtt",
        &format!(
            "device_id = \"{DEVICE}\"\nidentify_enabled = true\nverdict_lifetime_secs = 600\n\
             [camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 5.0\n\
             [daemon]\nwalk_up = true\ndebounce_secs = 1\n\
             [liveness]\nmode = \"off\"\n\
             [mqtt]\nenabled = true\nport = {}\nreconnect_max_ms = 500\nmax_request_bytes = 256\n",
            f.camera.display(),
            broker.port
        ),
    );
    let daemon = Daemon::start(&f, &config, &[]);
    daemon.wait_online(&broker, DEVICE);
    let request_topic = format!("edgeid/{DEVICE}/request");
    let mut seen = Seen {
        verdicts: Vec::new(),
    };

    // A request answered with a verdict carrying its nonce, verifiable offline.
    broker.publish(
        &request_topic,
        r#"{"mode":"verify","subject":"obama","nonce":"req-1"}"#,
    );
    let c = seen
        .until(&verdict_rx, Duration::from_secs(30), |c| {
            c["nonce"] == "req-1"
        })
        .unwrap_or_else(|| panic!("no verdict for req-1; log:\n{}", daemon.log_text()));
    assert_eq!(c["decision"], "accept");
    assert_eq!(c["sub"], "obama");
    let (expiry, _, token) = seen
        .verdicts
        .iter()
        .find(|(_, c, _)| c["nonce"] == "req-1")
        .cloned()
        .expect("req-1");
    assert!(
        (1..=600).contains(&expiry),
        "MQTT 5 message expiry {expiry} should be the remaining lifetime"
    );
    assert!(f.verdict_verifies(&config, &token, Some("req-1")));

    // Garbage, oversized, schema-breaking and replayed requests: named errors, no verdict.
    for bad in [
        "not json at all".to_owned(),
        format!(r#"{{"mode":"identify","nonce":"{}"}}"#, "x".repeat(400)),
        r#"{"mode":"verify","subject":"obama"}"#.to_owned(),
        r#"{"mode":"identify","nonce":"n-9","extra":1}"#.to_owned(),
        r#"{"mode":"verify","subject":"obama","nonce":"req-1"}"#.to_owned(),
    ] {
        broker.publish(&request_topic, &bad);
        let line = error_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no error for {bad}"));
        assert!(line.contains("InvalidArgument"), "{line}");
    }
    broker.publish(&request_topic, r#"{"mode":"identify","nonce":"req-2"}"#);
    let c = seen
        .until(&verdict_rx, Duration::from_secs(30), |c| {
            c["nonce"] == "req-2"
        })
        .expect("still serving after bad input");
    assert_eq!(c["mode"], "identify");

    // The outage: walk-up verdicts pile up in the on-disk queue.
    let before = seen
        .verdicts
        .iter()
        .map(|(_, c, _)| c["seq"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    broker.stop();
    std::thread::sleep(Duration::from_secs(outage));
    broker.restart();
    // A controller retries until the daemon is back on the bus (a request
    // sent before it resubscribes is not delivered to anyone).
    let until = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    let c = loop {
        attempt += 1;
        let nonce = format!("req-3-{attempt}");
        broker.publish(
            &request_topic,
            &format!(r#"{{"mode":"verify","subject":"obama","nonce":"{nonce}"}}"#),
        );
        if let Some(c) = seen.until(&verdict_rx, Duration::from_secs(3), |c| {
            c["nonce"].as_str().is_some_and(|n| n.starts_with("req-3-"))
        }) {
            break c;
        }
        assert!(
            Instant::now() < until,
            "no verdict after the outage; log:\n{}",
            daemon.log_text()
        );
    };
    let last = c["seq"].as_i64().expect("seq");
    // Let the replayed backlog finish arriving.
    seen.until(&verdict_rx, Duration::from_secs(3), |_| false);
    let seqs: BTreeSet<i64> = seen
        .verdicts
        .iter()
        .filter_map(|(_, c, _)| c["seq"].as_i64())
        .collect();
    let first = *seqs.first().expect("verdicts");
    let missing: Vec<i64> = (first..=last).filter(|s| !seqs.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "verdicts lost: seq {missing:?}; log:\n{}",
        daemon.log_text()
    );
    assert!(
        last - before >= 2,
        "walk-up verdicts were issued during the outage (seq {before} → {last})"
    );
    eprintln!(
        "outage {outage}s: {} verdicts issued during it, all delivered",
        last - before - 1
    );

    // SIGTERM: clean exit, retained status says offline.
    daemon.stop();
    let (_st, status_rx) =
        broker.subscribe(&format!("edgeid/{DEVICE}/status"), "test-status", false);
    let status = status_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("retained status");
    assert!(status.ends_with("|offline"), "{status}");
}
