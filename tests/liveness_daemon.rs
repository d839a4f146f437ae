//! Liveness with real components: the real face models, a folder camera, a
//! private dbus-daemon and a zbus client. A still photo of an enrolled
//! person, and the same photo printed and moved about in front of the
//! camera (frames made here by perspective-warping obama.jpg), must not be
//! accepted; the audit log says why, with figures and no landmarks.

mod support;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use edgeid::decision::liveness::{Check, LivenessPolicy, State, Track};
use futures_util::StreamExt;
use support::auth1::connect;
use support::models::pipeline;
use support::{Daemon, DbusDaemon, Device, Missing, claims, held, samples, tools};

/// One daemon at a time: the held-print test needs the engine to keep up
/// with its camera, and the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// What each daemon test here stands on: the real samples, a fixture whose
/// folder camera plays photos or a held print, a private bus, and the
/// serial lock (released last).
struct Scene {
    bus: DbusDaemon,
    f: Device,
    _serial: MutexGuard<'static, ()>,
}

impl Scene {
    /// The camera plays these sample photos ("obama" is enrolled from two others).
    fn photos(camera: &[&str]) -> Result<Self, Missing> {
        Self::with(|samples| Device::with_obama(samples, camera))
    }

    /// The camera plays obama.jpg printed and moved about (`held`).
    fn held_print() -> Result<Self, Missing> {
        Self::with(|samples| {
            let f = Device::with_obama(samples, &[]);
            held::write_held_frames(&samples.join("obama.jpg"), &f.camera);
            f
        })
    }

    fn with(fixture: impl FnOnce(&Path) -> Device) -> Result<Self, Missing> {
        let samples = samples()?;
        tools(&["dbus-daemon"])?;
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let f = fixture(&samples);
        let bus = DbusDaemon::start(&f.dir);
        Ok(Self {
            bus,
            f,
            _serial: serial,
        })
    }

    /// A daemon on this scene's camera and bus; `liveness` is extra config
    /// (the `[liveness]` section, "" for the defaults).
    fn start(&self, fps: f64, liveness: &str) -> Daemon {
        let (f, bus) = (&self.f, &self.bus);
        let config = f.write_config(
            "liveness",
            &format!(
                "identify_enabled = true\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = {fps:?}\n\
                 [dbus]\nenabled = true\nbus = \"{}\"\n{liveness}",
                f.camera.display(),
                bus.address
            ),
        );
        Daemon::start(f, &config, &[])
    }
}

/// The audit records of verify / identify decisions (after the daemon stopped).
fn decisions(f: &Device) -> Vec<serde_json::Value> {
    f.audit_records()
        .into_iter()
        .filter(|r| r["event"] == "verify" || r["event"] == "identify")
        .collect()
}

/// The liveness record holds a few named figures only: no landmark list,
/// no image, nothing nested.
fn assert_figures_only(liveness: &serde_json::Value) {
    const KEYS: [&str; 15] = [
        "mode",
        "check",
        "shown",
        "frames",
        "resets",
        "motion",
        "parallax",
        "ratio",
        "head_frames",
        "flat_frames",
        "unconfirmed_frames",
        "turn",
        "blinked",
        "challenge",
        "failure",
    ];
    let map = liveness.as_object().expect("a liveness object");
    for (k, v) in map {
        assert!(KEYS.contains(&k.as_str()), "unexpected {k} in {liveness}");
        assert!(
            !v.is_array() && !v.is_object(),
            "{k} is not a figure: {liveness}"
        );
    }
}

#[test]
fn a_held_print_is_flat_from_whichever_frame_the_track_starts() {
    // The real face pipeline on the print's frames, fed to the accumulator
    // from every starting frame of the loop, as a request could.
    let samples = require!(samples());
    let print = held::print_of(&samples.join("obama.jpg"));
    let frames: Vec<_> = held::held_poses()
        .into_iter()
        .map(|h| {
            let image = held::held_picture(&print, h);
            let analysis = pipeline().analyse(&image).expect("analyse");
            (analysis, image)
        })
        .collect();
    for start in 0..frames.len() {
        let mut track = Track::new(LivenessPolicy::default(), 0.9);
        let t0 = Instant::now();
        let mut verdict = None;
        for (k, (a, image)) in frames.iter().cycle().skip(start).take(40).enumerate() {
            let usable = a
                .face
                .as_ref()
                .is_some_and(|f| f.quality_failures.is_empty());
            let at = t0 + Duration::from_millis(200 * k as u64);
            track.push(a.clone(), usable, image, at);
            let (state, figures) = track.evaluate(Check::Motion);
            if state != State::Pending {
                verdict = Some((state, figures));
                break;
            }
        }
        let (state, figures) = verdict.expect("a verdict within 40 frames");
        assert!(
            matches!(state, State::Attack(_)),
            "start {start}: {state:?} {figures:?}"
        );
    }
}

#[test]
fn a_still_photo_of_an_enrolled_person_times_out_without_liveness() {
    let scene = require!(Scene::photos(&["obama2.jpg"]));
    // No [liveness] section: the default ("motion") is what is tested.
    let daemon = scene.start(10.0, "");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (verify, identify) = rt.block_on(async {
        let p = connect(&scene.bus).await;
        let v = p.verify("obama", "still-1", 3000).await.expect("Verify");
        let i = p.identify("still-2", 3000).await.expect("Identify");
        (v, i)
    });
    for (token, nonce) in [(&verify, "still-1"), (&identify, "still-2")] {
        let c = claims(token);
        assert_eq!(
            (c["decision"].as_str(), c["reason"].as_str()),
            (Some("reject"), Some("timeout")),
            "{c}; log:\n{}",
            daemon.log_text()
        );
        assert!(
            scene
                .f
                .verdict_verifies(&scene.f.config, token, Some(nonce))
        );
    }
    daemon.stop();
    let records = decisions(&scene.f);
    assert_eq!(records.len(), 2, "{records:?}");
    for r in &records {
        let d = &r["detail"];
        assert_eq!(d["cause"], "liveness_not_shown", "{d}");
        assert_eq!(d["liveness"]["mode"], "motion", "{d}");
        assert_eq!(d["liveness"]["shown"], false, "{d}");
        // A still picture does not move at all.
        assert_eq!(d["liveness"]["motion"], 0.0, "{d}");
        assert!(d["liveness"]["parallax"].is_number() && d["liveness"]["blinked"].is_boolean());
        assert_figures_only(&d["liveness"]);
    }
}

#[test]
fn a_print_moved_in_front_of_the_camera_is_a_presentation_attack() {
    let scene = require!(Scene::held_print());
    // A frame every 200 ms: the engine analyses each one in turn. One failed
    // attempt would lock the subject, but a print is not a face judged
    // against the claim: it must not lock the person it shows out.
    let daemon = scene.start(
        5.0,
        "[liveness]\nmode = \"motion\"\n[lockout]\nmax_failures = 1\nwindow_secs = 600\n\
         backoff_initial_secs = 600\nbackoff_max_secs = 600\n[daemon]\nmax_timeout_ms = 20000\n",
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (verify, identify, retry) = rt.block_on(async {
        let p = connect(&scene.bus).await;
        let v = p.verify("obama", "held-1", 30_000).await.expect("Verify");
        let i = p.identify("held-2", 30_000).await.expect("Identify");
        let r = p.verify("obama", "held-3", 30_000).await.expect("Verify");
        (v, i, r)
    });
    for token in [&verify, &identify, &retry] {
        let c = claims(token);
        assert_eq!(
            (c["decision"].as_str(), c["reason"].as_str()),
            (Some("reject"), Some("presentation_attack")),
            "{c}; log:\n{}",
            daemon.log_text()
        );
    }
    daemon.stop();
    let (locked, attacks): (Vec<_>, Vec<_>) = decisions(&scene.f)
        .into_iter()
        .partition(|r| r["reason"] == "locked_out");
    assert_eq!(
        (locked.len(), attacks.len()),
        (0, 3),
        "{locked:?} {attacks:?}"
    );
    for r in attacks {
        let l = &r["detail"]["liveness"];
        eprintln!(
            "{} after {} frames: {l}",
            r["event"], r["detail"]["frames_analysed"]
        );
        assert_eq!(l["failure"], "planar", "{l}");
        assert!(l["flat_frames"].as_u64().is_some_and(|n| n >= 2), "{l}");
        assert_eq!(l["shown"], false, "{l}");
        assert!(r["detail"]["score"].is_null(), "never scored: {r}");
        assert_figures_only(l);
    }
}

#[test]
fn walk_up_mode_reports_a_moved_print_as_a_presentation_attack() {
    let scene = require!(Scene::held_print());
    let daemon = scene.start(5.0, "[daemon]\nwalk_up = true\ndebounce_secs = 60\n");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let c = rt.block_on(async {
        let p = connect(&scene.bus).await;
        let mut verdicts = p
            .receive_verdict_issued()
            .await
            .expect("VerdictIssued stream");
        let signal = tokio::time::timeout(Duration::from_secs(40), verdicts.next())
            .await
            .expect("a walk-up verdict")
            .expect("signal");
        claims(signal.args().expect("args").verdict)
    });
    assert_eq!(
        (c["decision"].as_str(), c["reason"].as_str()),
        (Some("reject"), Some("presentation_attack")),
        "{c}; log:\n{}",
        daemon.log_text()
    );
    daemon.stop();
}

#[test]
fn challenge_mode_announces_a_random_side_over_dbus() {
    let scene = require!(Scene::photos(&["obama2.jpg"]));
    let daemon = scene.start(10.0, "[liveness]\nmode = \"challenge\"\n");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (hint, token) = rt.block_on(async {
        let p = connect(&scene.bus).await;
        let mut hints = p.receive_hint().await.expect("Hint stream");
        let token = p.verify("obama", "ch-1", 2500).await.expect("Verify");
        let signal = tokio::time::timeout(Duration::from_secs(5), hints.next())
            .await
            .expect("a Hint signal")
            .expect("signal");
        let args = signal.args().expect("args");
        ((args.nonce.to_owned(), args.hint.to_owned()), token)
    });
    assert_eq!(hint.0, "ch-1");
    assert!(
        [
            "blink, then turn your head to your left",
            "blink, then turn your head to your right"
        ]
        .contains(&hint.1.as_str()),
        "{hint:?}"
    );
    // A still photo can neither blink nor turn.
    assert_eq!(claims(&token)["reason"], "timeout");
    daemon.stop();
    let records = decisions(&scene.f);
    let l = &records[0]["detail"]["liveness"];
    assert_eq!(
        (l["mode"].as_str(), l["check"].as_str()),
        (Some("challenge"), Some("challenge")),
        "{l}"
    );
    let side = if hint.1.ends_with("left") {
        "image_right"
    } else {
        "image_left"
    };
    assert_eq!(
        l["challenge"], side,
        "the hint names the person's side: {l}"
    );
    assert_figures_only(l);
}

#[test]
fn liveness_off_accepts_a_still_photo_and_the_audit_says_it_was_off() {
    let scene = require!(Scene::photos(&["obama2.jpg"]));
    let daemon = scene.start(10.0, "[liveness]\nmode = \"off\"\n");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let token = rt.block_on(async {
        connect(&scene.bus)
            .await
            .verify("obama", "off-1", 10_000)
            .await
            .expect("Verify")
    });
    assert_eq!(claims(&token)["decision"], "accept");
    daemon.stop();
    let records = decisions(&scene.f);
    assert_eq!(
        records[0]["detail"]["liveness"],
        serde_json::json!({"mode": "off"})
    );
}
