//! The cap on a request's timeout: with the default `[daemon]`, a caller
//! asking for the longest timeout there is (`u32::MAX` ms) on D-Bus or on
//! MQTT holds the camera for `daemon.max_timeout_ms` (10 s) and no longer,
//! and is answered with a signed `reject` then. The camera shows a blank
//! grey frame, so no request can end sooner.

mod support;

use std::time::{Duration, Instant};

use support::auth1::connect;
use support::{DEVICE, Daemon, DbusDaemon, Device, Mosquitto, claims, tools};

/// `daemon.max_timeout_ms` by default.
const CAP: Duration = Duration::from_secs(10);
/// Frame period, a verdict's signing and the trip over the bus.
const SLACK: Duration = Duration::from_secs(4);

fn assert_capped(what: &str, elapsed: Duration, verdict: &serde_json::Value) {
    assert_eq!(verdict["decision"], "reject", "{what}: {verdict}");
    assert!(
        elapsed >= CAP - Duration::from_millis(500) && elapsed <= CAP + SLACK,
        "{what}: answered after {elapsed:?}, expected the {CAP:?} cap"
    );
}

#[test]
fn the_longest_timeout_a_caller_can_ask_for_is_cut_to_the_cap() {
    require!(tools(&[
        "dbus-daemon",
        "mosquitto",
        "mosquitto_pub",
        "mosquitto_sub"
    ]));
    let f = Device::new(&format!("device_id = \"{DEVICE}\"\n"));
    f.cli(&f.config, &["keys", "init"]);
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))
        .save(f.camera.join("grey.png"))
        .expect("frame");
    let bus = DbusDaemon::start(&f.dir);
    let broker = Mosquitto::start(&f.dir.join("broker"));
    let config = f.write_config(
        "timeouts",
        &format!(
            "device_id = \"{DEVICE}\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [dbus]\nenabled = true\nbus = \"{}\"\n[mqtt]\nenabled = true\nport = {}\n",
            f.camera.display(),
            bus.address,
            broker.port
        ),
    );
    let daemon = Daemon::start(&f, &config, &[]);
    daemon.wait_online(&broker, DEVICE);

    let (_sub, verdicts) =
        broker.subscribe(&format!("edgeid/{DEVICE}/verdict"), "test-timeouts", false);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    broker.publish(
        &format!("edgeid/{DEVICE}/request"),
        &format!(
            r#"{{"mode":"verify","subject":"obama","nonce":"long-mqtt","timeout_ms":{}}}"#,
            u32::MAX
        ),
    );
    let line = verdicts
        .recv_timeout(CAP + SLACK + Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no MQTT verdict; log:\n{}", daemon.log_text()));
    let payload = line.rsplit('|').next().unwrap_or_default();
    assert_capped("MQTT", t.elapsed(), &claims(payload));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (elapsed, token) = rt.block_on(async {
        let p = connect(&bus).await;
        let t = Instant::now();
        let token = p
            .verify("obama", "long-dbus", u32::MAX)
            .await
            .expect("Verify");
        (t.elapsed(), token)
    });
    assert_capped("D-Bus", elapsed, &claims(&token));
    daemon.stop();
}
