//! The shipped D-Bus policy (systemd/org.edgeid.Auth1.conf) on a bus that
//! loads it over the system bus's defaults, as an installed device does:
//! a user outside the `edgeid` groups cannot call Verify and receives none
//! of the daemon's signals, while root (allowed) receives the walk-up
//! verdicts. Before the policy restricted receiving, any local user got
//! every `VerdictIssued` with the recognised person's id.

mod support;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::bus::gdbus;
use support::process::{Guard, spawn_lines};
use support::{Daemon, DbusDaemon, Device, samples, tools};

/// `gdbus monitor` of the daemon's name, as root or as `nobody`.
fn monitor(address: &str, as_nobody: bool) -> (Guard, Receiver<String>) {
    let mut cmd = gdbus(as_nobody);
    cmd.args([
        "monitor",
        "--address",
        address,
        "--dest",
        "org.edgeid.Auth1",
    ]);
    spawn_lines(cmd, "gdbus monitor")
}

/// Lines received within `window` that contain `what`.
fn seen(lines: &Receiver<String>, what: &str, window: Duration) -> Vec<String> {
    let until = Instant::now() + window;
    let mut found = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => found.push(line),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}

#[test]
fn signals_and_calls_follow_the_shipped_policy() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon", "gdbus", "setpriv"]));
    let f = Device::with_obama(&samples, &["obama2.jpg"]);
    let bus = DbusDaemon::with_shipped_policy(&f.dir);
    // Walk-up on a still photo, liveness off: a VerdictIssued every second.
    let config = f.write_config(
        "dbus-policy",
        &format!(
            "identify_enabled = true\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 5.0\n\
             [daemon]\nwalk_up = true\ndebounce_secs = 1\n[dbus]\nenabled = true\nbus = \"{}\"\n\
             [liveness]\nmode = \"off\"\n",
            f.camera.display(),
            bus.address
        ),
    );
    let daemon = Daemon::start(&f, &config, &[]);
    let (_root_guard, root) = monitor(&bus.address, false);
    let (_nobody_guard, nobody) = monitor(&bus.address, true);

    let to_root = seen(&root, "VerdictIssued", Duration::from_secs(8));
    assert!(
        !to_root.is_empty(),
        "root (allowed by the policy) received no walk-up verdict; log:\n{}",
        daemon.log_text()
    );
    let to_nobody = seen(&nobody, "org.edgeid.Auth1.", Duration::from_secs(2));
    assert!(
        to_nobody.is_empty(),
        "a user outside the edgeid groups received signals: {to_nobody:?}"
    );

    // Calls: nobody is not in group edgeid, so the bus refuses Verify.
    let out = gdbus(true)
        .args([
            "call",
            "--address",
            &bus.address,
            "--dest",
            "org.edgeid.Auth1",
        ])
        .args(["--object-path", "/org/edgeid/Auth1"])
        .args([
            "--method",
            "org.edgeid.Auth1.Verify",
            "obama",
            "n-1",
            "1000",
        ])
        .output()
        .expect("gdbus");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("AccessDenied"),
        "Verify as nobody under the shipped policy: {stderr}"
    );
    daemon.stop();
}
