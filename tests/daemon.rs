//! The daemon under a NOTIFY_SOCKET the test reads: READY=1 after start-up,
//! WATCHDOG=1 from the pipeline loop, pings stop while the pipeline is
//! wedged (test hook) and resume after, SIGTERM ends with STOPPING=1 and
//! exit 0. Plus `edgeid config check` on the example and on a typo.

mod support;

use std::time::Duration;

use support::{Daemon, Device, edgeid, samples};

#[test]
fn ready_then_watchdog_pings_that_stop_when_the_pipeline_wedges() {
    let samples = require!(samples());
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let wedge = f.dir.join("wedge");
    let config = f.write_config(
        "daemon",
        &format!(
            "[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n",
            f.camera.display()
        ),
    );
    // Pings every 150 ms (half of WATCHDOG_USEC).
    let mut d = Daemon::start(
        &f,
        &config,
        &[
            ("WATCHDOG_USEC", "300000"),
            (edgeid::daemon::WEDGE_ENV, wedge.to_str().expect("utf8")),
        ],
    );
    let pings = d.count("WATCHDOG=1", Duration::from_secs(2));
    assert!(pings >= 5, "only {pings} watchdog pings in 2 s");

    std::fs::write(&wedge, b"").expect("wedge");
    // A turn that passed the wedge check just before the file appeared may
    // still ping once; give it time, then forget what is already queued.
    std::thread::sleep(Duration::from_millis(500));
    d.discard_pending();
    let wedged = d.count("WATCHDOG=1", Duration::from_secs(2));
    assert_eq!(wedged, 0, "a wedged pipeline must not ping");

    std::fs::remove_file(&wedge).expect("unwedge");
    assert!(
        d.wait_for("WATCHDOG=1", Duration::from_secs(2)),
        "pings resume"
    );

    d.guard.signal(libc::SIGTERM);
    assert!(
        d.wait_for("STOPPING=1", Duration::from_secs(5)),
        "STOPPING=1 on SIGTERM"
    );
    assert_eq!(
        d.guard.wait_exit(Duration::from_secs(15)),
        Some(0),
        "log:\n{}",
        d.log_text()
    );
}

#[test]
fn config_check_names_unknown_keys_and_accepts_the_example() {
    let out = edgeid()
        .args(["config", "check", "--config"])
        .arg(support::repo().join("edgeid.toml.example"))
        .output()
        .expect("run");
    // The example's camera is /dev/video0, which may be missing here: that is
    // reported as a problem, but the file itself must parse and validate.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("camera.path"),
        "{stderr}"
    );

    let tmp = tempfile::tempdir().expect("tmp");
    // What the daemon will do is printed, the security settings included.
    let p = tmp.path().join("ok.toml");
    std::fs::write(
        &p,
        "[liveness]\nmode = \"challenge\"\n[lockout]\nmax_failures = 3\nwindow_secs = 90\n",
    )
    .expect("write");
    let out = edgeid()
        .args(["--json", "config", "check", "--config"])
        .arg(&p)
        .output()
        .expect("run");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["liveness"], "challenge", "{report}");
    assert_eq!(
        report["lockout"], "3 failures in 90 s, then waits of 2 s doubling to 300 s",
        "{report}"
    );

    for (body, key) in [
        ("[mqtt]\nhostname = \"x\"\n", "hostname"),
        ("[camera]\nsource = \"folder\"\npth = \"/tmp\"\n", "pth"),
        ("[daemon]\nwalk_up = true\n", "identify_enabled"),
        ("[camera]\nsource = \"folder\"\n", "camera.path"),
        ("[liveness]\nmode = \"none\"\n", "none"),
        ("[liveness]\nmin_paralax = 0.1\n", "min_paralax"),
        ("[liveness]\nmin_motion = 0.01\n", "liveness.min_motion"),
    ] {
        let p = tmp.path().join("c.toml");
        std::fs::write(&p, body).expect("write");
        let out = edgeid()
            .args(["config", "check", "--config"])
            .arg(&p)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(key),
            "{body:?}: {stderr}"
        );
    }
}
