//! Camera enrollment (D-Bus `EnrollStart`) asks for the same liveness as a
//! verification: a template made from a picture would let that picture in
//! later. A print moved in front of the camera is refused as a
//! presentation attack, a still photo runs out of time without showing
//! head movement, and neither leaves a template behind. Real models, a
//! folder camera, a private dbus-daemon and a zbus client.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::auth1::connect;
use support::{Daemon, DbusDaemon, Device, held, samples, tools};

/// Starts a daemon on a private bus, enrolls `subject` from its camera and
/// returns the EnrollDone result and the subjects afterwards.
fn enroll(f: &Device, subject: &str, fps: f64, timeout_ms: u32) -> (String, Vec<String>) {
    let bus = DbusDaemon::start(&f.dir);
    let config = f.write_config(
        "enroll-liveness",
        &format!(
            "[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = {fps:?}\n\
             [daemon]\nenroll_samples = 2\nenroll_timeout_ms = {timeout_ms}\n\
             [dbus]\nenabled = true\nbus = \"{}\"\n[liveness]\nmode = \"motion\"\n",
            f.camera.display(),
            bus.address
        ),
    );
    let daemon = Daemon::start(f, &config, &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let out = rt.block_on(async {
        let proxy = connect(&bus).await;
        let mut done = proxy.receive_enroll_done().await.expect("done stream");
        proxy
            .enroll_start(subject, &["face"])
            .await
            .expect("EnrollStart");
        let end = tokio::time::timeout(Duration::from_secs(120), done.next())
            .await
            .expect("EnrollDone")
            .expect("signal");
        let result = end.args().expect("args").result.to_owned();
        let mut subjects = proxy.list_subjects().await.expect("ListSubjects");
        subjects.sort();
        (result, subjects)
    });
    daemon.stop();
    out
}

#[test]
fn a_moved_print_cannot_be_enrolled_from_the_camera() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon"]));
    let f = Device::with_obama(&samples, &[]);
    held::write_held_frames(&samples.join("obama.jpg"), &f.camera);
    let (result, subjects) = enroll(&f, "mallory", 5.0, 60_000);
    assert!(
        result.starts_with("failed:") && result.contains("flat picture"),
        "{result}"
    );
    assert_eq!(subjects, vec!["obama".to_owned()], "no template was sealed");
}

#[test]
fn a_still_photo_runs_out_of_time_without_head_movement() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon"]));
    let f = Device::with_obama(&samples, &["biden.jpg"]);
    let (result, subjects) = enroll(&f, "mallory", 10.0, 5_000);
    assert!(
        result.starts_with("failed:") && result.contains("no head movement"),
        "{result}"
    );
    assert_eq!(subjects, vec!["obama".to_owned()], "no template was sealed");
}
