//! One verdict per nonce, on every bus: a nonce already answered over
//! D-Bus is refused when it comes again over D-Bus (`InvalidArgument`) or
//! over MQTT (on the error topic), and no second verdict is issued for it.

mod support;

use std::time::Duration;

use support::auth1::connect;
use support::{DEVICE, Daemon, DbusDaemon, Device, Mosquitto, claims, samples, tools};

#[test]
fn a_nonce_earns_one_verdict_whichever_bus_replays_it() {
    let samples = require!(samples());
    require!(tools(&[
        "dbus-daemon",
        "mosquitto",
        "mosquitto_pub",
        "mosquitto_sub"
    ]));
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let bus = DbusDaemon::start(&f.dir);
    let broker = Mosquitto::start(&f.dir.join("broker"));
    let (_esub, errors) = broker.subscribe(&format!("edgeid/{DEVICE}/error"), "test-errors", false);
    let config = f.write_config(
        "replay",
        &format!(
            "device_id = \"{DEVICE}\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [dbus]\nenabled = true\nbus = \"{}\"\n[liveness]\nmode = \"off\"\n\
             [mqtt]\nenabled = true\nport = {}\n",
            f.camera.display(),
            bus.address,
            broker.port
        ),
    );
    let daemon = Daemon::start(&f, &config, &[]);
    daemon.wait_online(&broker, DEVICE);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = connect(&bus).await;
        let first = client
            .verify("obama", "once-1", 10_000)
            .await
            .expect("Verify");
        assert_eq!(claims(&first)["decision"], "accept");
        let again = client.verify("obama", "once-1", 10_000).await;
        let e = again.expect_err("a replayed nonce must not earn a verdict");
        assert!(
            e.to_string()
                .contains("org.edgeid.Auth1.Error.InvalidArgument")
                && e.to_string().contains("already used"),
            "{e}"
        );
    });
    // The same nonce over MQTT: refused on the error topic.
    broker.publish(
        &format!("edgeid/{DEVICE}/request"),
        r#"{"mode":"verify","subject":"obama","nonce":"once-1"}"#,
    );
    let refusal = errors
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no refusal on the error topic; log:\n{}", daemon.log_text()));
    assert!(
        refusal.contains("InvalidArgument") && refusal.contains("once-1"),
        "{refusal}"
    );
    daemon.stop();
    let verdicts: i64 = f
        .sql()
        .query_row(
            "SELECT count(*) FROM audit WHERE event = 'verify'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(verdicts, 1, "one verdict for one nonce");
}
