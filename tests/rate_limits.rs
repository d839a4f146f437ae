//! Request rate limits: a D-Bus caller (by uid) and the MQTT request topic
//! (all publishers together) get `dbus.requests_per_minute` /
//! `mqtt.requests_per_minute` requests in a burst, then `Busy` refusals
//! (on the error topic for MQTT) instead of signed, audited verdicts.

mod support;

use std::time::Duration;

use support::auth1::connect;
use support::{DEVICE, Daemon, DbusDaemon, Device, Mosquitto, samples, tools};

#[test]
fn callers_over_their_rate_are_refused_busy() {
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
        "rate",
        &format!(
            "device_id = \"{DEVICE}\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             [dbus]\nenabled = true\nbus = \"{}\"\nrequests_per_minute = 2\n\
             [liveness]\nmode = \"off\"\n\
             [mqtt]\nenabled = true\nport = {}\nrequests_per_minute = 2\n",
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
        for n in ["r-1", "r-2"] {
            client
                .verify("obama", n, 10_000)
                .await
                .expect("within the rate");
        }
        let e = client
            .verify("obama", "r-3", 10_000)
            .await
            .expect_err("the third call in a minute");
        assert!(
            e.to_string().contains("org.edgeid.Auth1.Error.Busy")
                && e.to_string().contains("rate limit"),
            "{e}"
        );
    });

    for n in 1..=4 {
        broker.publish(
            &format!("edgeid/{DEVICE}/request"),
            &format!(r#"{{"mode":"verify","subject":"obama","nonce":"m-{n}"}}"#),
        );
    }
    let mut refused = 0;
    while let Ok(line) = errors.recv_timeout(Duration::from_secs(5)) {
        assert!(
            line.contains("Busy") && line.contains("rate limit"),
            "{line}"
        );
        refused += 1;
    }
    assert_eq!(
        refused,
        2,
        "4 requests at 2 a minute: 2 refusals; log:\n{}",
        daemon.log_text()
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
    assert_eq!(verdicts, 4, "2 D-Bus and 2 MQTT verdicts, no more");
}
