//! A camera that is missing at start, appears, then vanishes: the daemon
//! keeps serving and says so in its systemd status (`STATUS=` on the
//! NOTIFY_SOCKET, what `systemctl status edgeid` shows) each time.

mod support;

use std::time::Duration;

use support::{DEVICE, Daemon, Device, samples};

#[test]
fn camera_state_changes_show_in_the_systemd_status() {
    let samples = require!(samples());
    let f = Device::with_obama(&samples, &[]);
    let camera = f.dir.join("camera-later");
    let config = f.write_config(
        "camera",
        &format!(
            "device_id = \"{DEVICE}\"\n\
             [camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 10.0\n\
             retry_initial_ms = 100\nretry_max_ms = 400\n",
            camera.display()
        ),
    );
    let mut daemon = Daemon::start(&f, &config, &[]);
    assert!(
        daemon.wait_for("camera unavailable, retrying", Duration::from_secs(20)),
        "no STATUS= for a missing camera; log:\n{}",
        daemon.log_text()
    );
    std::fs::create_dir(&camera).expect("camera dir");
    std::fs::copy(samples.join("obama2.jpg"), camera.join("obama2.jpg")).expect("photo");
    assert!(
        daemon.wait_for("camera running", Duration::from_secs(20)),
        "no STATUS= once the camera appeared; log:\n{}",
        daemon.log_text()
    );
    std::fs::remove_dir_all(&camera).expect("unplug");
    assert!(
        daemon.wait_for("camera unavailable, retrying", Duration::from_secs(20)),
        "no STATUS= once the camera vanished; log:\n{}",
        daemon.log_text()
    );
    assert!(daemon.log_text().contains("camera unavailable; retrying"));
    daemon.stop();
}
