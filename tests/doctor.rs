//! `edgeid doctor` on real parts: a device with keys, its daemon on a
//! private dbus-daemon and Mosquitto, and a microphone that is a real ALSA
//! PCM (a `file` plugin the test writes, opened by name through cpal, as in
//! tests/voice_mic.rs) says ok for each; a damaged model, a missing KEK, an
//! unreachable broker, a missing camera and a missing store each fail the
//! check named after them, with exit status 1 and `--json` that parses.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::broker::{Mosquitto, free_port};
use support::bus::DbusDaemon;
use support::daemon::Daemon;
use support::device::{DEVICE, Device};
use support::models::models_dir;
use support::output::stdout_json;
use support::{samples, tools};

/// The status of check `name` in a `doctor --json` report.
fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))["status"]
        .as_str()
        .expect("status")
}

fn summary<'a>(report: &'a Value, name: &str) -> &'a str {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["summary"].as_str())
        .unwrap_or("")
}

/// Runs `doctor --json ARGS` on `device` with `config`; its report.
fn doctor(device: &Device, config: &Path, args: &[&str], env: &[(&str, &Path)]) -> (Output, Value) {
    let mut cmd = device.command(config);
    cmd.args(["doctor", "--json", "--timeout-secs", "3"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run edgeid doctor");
    let report = stdout_json(&out);
    (out, report)
}

/// An ALSA configuration in `home` whose PCM `edgeid_test` captures 3 s
/// of a 440 Hz tone from a file, through the `file` plugin.
fn alsa_microphone(home: &Path) {
    let infile = home.join("tone.raw");
    let bytes: Vec<u8> = (0..48_000)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
        .flat_map(i16::to_le_bytes)
        .collect();
    std::fs::write(&infile, bytes).expect("tone");
    std::fs::write(
        home.join(".asoundrc"),
        format!(
            "pcm.edgeid_test {{\n type plug\n slave {{ pcm \"edgeid_file\" format S16_LE rate 16000 channels 1 }}\n}}\n\
             pcm.edgeid_file {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n",
            infile.display()
        ),
    )
    .expect("asoundrc");
}

#[test]
fn a_working_device_with_its_bus_and_broker_passes() {
    let samples = require!(samples());
    require!(tools(&["dbus-daemon", "mosquitto"]));
    let d = Device::with_obama(&samples, &["obama2.jpg"]);
    let bus = DbusDaemon::start(&d.dir);
    let broker = Mosquitto::start(&d.dir.join("broker"));
    let config = d.write_config(
        "doctor",
        &format!(
            "device_id = \"{DEVICE}\"\n[camera]\nsource = \"folder\"\npath = \"{}\"\nfps = 5.0\n\
             [liveness]\nmode = \"off\"\n[dbus]\nenabled = true\nbus = \"{}\"\n\
             [mqtt]\nenabled = true\nport = {}\n[inference]\nbackend = \"tract\"\n",
            d.camera.display(),
            bus.address,
            broker.port
        ),
    );
    let daemon = Daemon::start(&d, &config, &[]);
    daemon.wait_online(&broker, DEVICE);
    let home = d.dir.join("home");
    std::fs::create_dir(&home).expect("home");
    alsa_microphone(&home);

    let (out, report) = doctor(
        &d,
        &config,
        &["--microphone", "edgeid_test"],
        &[("HOME", &home)],
    );
    let text = format!("{report:#}\n{}", String::from_utf8_lossy(&out.stderr));
    for name in [
        "camera",
        "microphone",
        "models",
        "inference",
        "keys",
        "store",
        "anchor",
        "dbus",
        "mqtt",
        "disk",
    ] {
        assert_eq!(status(&report, name), "ok", "{name}: {text}");
    }
    assert!(out.status.success(), "{text}");
    assert_eq!(report["ok"], true);
    assert_ne!(status(&report, "time"), "fail", "{text}");
    // What was found, not only a verdict.
    assert!(summary(&report, "dbus").contains("owned by :"), "{text}");
    assert!(summary(&report, "inference").starts_with("tract"), "{text}");
    assert!(
        summary(&report, "keys").contains("EDGEID_KEK_FILE"),
        "{text}"
    );
    let mic = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "microphone"))
        .expect("microphone")["detail"]
        .clone();
    let level = mic["rms_dbfs"].as_f64().expect("a level");
    // A sine of amplitude 8000/32768 is -15.3 dBFS RMS.
    assert!((-20.0..-10.0).contains(&level), "level {level}: {text}");
    assert!(mic["seconds"].as_f64().expect("seconds") >= 0.5, "{text}");

    // The screen: one line per check, and the same verdicts.
    let screen = d
        .command(&config)
        .env("HOME", &home)
        .args(["doctor", "--microphone", "edgeid_test"])
        .output()
        .expect("doctor");
    let screen = String::from_utf8_lossy(&screen.stdout);
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("anchor")),
        "{screen}"
    );
    daemon.stop();
}

/// `models/` with one model's bytes changed: every other file linked.
fn models_with_a_damaged_one(dir: &Path) -> (PathBuf, String) {
    let out = dir.join("models");
    std::fs::create_dir(&out).expect("models dir");
    let mut smallest: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(models_dir()).expect("models") {
        let path = entry.expect("entry").path();
        let len = path.metadata().expect("meta").len();
        if path.extension().is_some_and(|e| e == "onnx")
            && smallest.as_ref().is_none_or(|(l, _)| len < *l)
        {
            smallest = Some((len, path.clone()));
        }
        std::os::unix::fs::symlink(&path, out.join(path.file_name().expect("name"))).expect("link");
    }
    let (_, victim) = smallest.expect("an onnx model");
    let name = victim.file_name().expect("name").to_owned();
    let mut bytes = std::fs::read(&victim).expect("read model");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::remove_file(out.join(&name)).expect("unlink");
    std::fs::write(out.join(&name), bytes).expect("damaged copy");
    (out, name.to_string_lossy().into_owned())
}

#[test]
fn each_broken_part_fails_its_named_check() {
    let d = Device::new("device_id = \"door-1\"\n");
    d.init();
    let config = d.write_config(
        "base",
        &format!(
            "[camera]\nsource = \"folder\"\npath = \"{}\"\n[inference]\nbackend = \"tract\"\n",
            d.camera.display()
        ),
    );
    let mic = ["--microphone", "no_such_microphone"];

    // Sound: only the missing microphone, a warning, and exit 0.
    let (out, report) = doctor(&d, &config, &mic, &[]);
    assert!(out.status.success(), "{report:#}");
    assert_eq!(status(&report, "microphone"), "warn", "{report:#}");
    assert!(summary(&report, "microphone").contains("no_such_microphone"));
    assert_eq!(status(&report, "keys"), "ok", "{report:#}");
    assert_eq!(status(&report, "anchor"), "ok", "{report:#}");

    // A damaged model: `models` fails and names it.
    let (models, damaged) = models_with_a_damaged_one(&d.dir);
    let (out, report) = doctor(&d, &config, &mic, &[("EDGEID_MODELS_DIR", &models)]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "models"), "fail", "{report:#}");
    assert!(
        summary(&report, "models").contains("sha256")
            || summary(&report, "models").contains("checksum"),
        "{report:#}"
    );
    let spec_id = damaged.trim_end_matches(".onnx");
    assert!(
        summary(&report, "models").contains(spec_id.split('_').next().unwrap_or(spec_id)),
        "{damaged}: {report:#}"
    );
    assert_eq!(report["failed"], 1, "{report:#}");

    // No KEK: `keys` fails, the store is still looked at.
    let mut cmd = d.command(&config);
    cmd.env_remove("EDGEID_KEK_FILE")
        .args(["doctor", "--json", "--timeout-secs", "3"])
        .args(mic);
    let out = cmd.output().expect("doctor");
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "keys"), "fail", "{report:#}");
    assert!(
        summary(&report, "keys").contains("no key-encryption key"),
        "{report:#}"
    );
    assert_eq!(status(&report, "store"), "ok", "{report:#}");

    // A broker nobody listens on: `mqtt` fails, within the timeout.
    let unreachable = d.write_config(
        "mqtt",
        &format!(
            "[camera]\nsource = \"folder\"\npath = \"{}\"\n[inference]\nbackend = \"tract\"\n\
             [mqtt]\nenabled = true\nport = {}\n",
            d.camera.display(),
            free_port()
        ),
    );
    let (out, report) = doctor(&d, &unreachable, &mic, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "mqtt"), "fail", "{report:#}");
    assert!(
        summary(&report, "mqtt").contains("127.0.0.1")
            || summary(&report, "mqtt").contains("localhost"),
        "{report:#}"
    );

    // A voice policy whose microphone is missing: `microphone` fails.
    let voice = d.write_config(
        "voice",
        &format!(
            "[camera]\nsource = \"folder\"\npath = \"{}\"\n[inference]\nbackend = \"tract\"\n\
             [decision]\nmodalities = \"face+voice\"\n[microphone]\nfifo = \"{}\"\n",
            d.camera.display(),
            d.dir.join("no-such-fifo").display()
        ),
    );
    let (out, report) = doctor(&d, &voice, &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "microphone"), "fail", "{report:#}");
    assert!(
        summary(&report, "microphone").contains("no-such-fifo"),
        "{report:#}"
    );

    // A V4L2 camera that is not there (none on this machine).
    let camera = d.write_config(
        "camera",
        "[camera]\nsource = \"v4l2\"\npath = \"/dev/video-edgeid-none\"\n[inference]\nbackend = \"tract\"\n",
    );
    let (out, report) = doctor(&d, &camera, &mic, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "camera"), "fail", "{report:#}");
    assert!(
        summary(&report, "camera").contains("no camera at /dev/video-edgeid-none"),
        "{report:#}"
    );

    // No store yet: `store` fails and says how to make one.
    let fresh = d.dir.join("fresh-state");
    let (out, report) = doctor(&d, &config, &mic, &[("EDGEID_STATE_DIR", &fresh)]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(status(&report, "store"), "fail", "{report:#}");
    let fix = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "store"))
        .and_then(|c| c["fix"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(fix.contains("keys init"), "{report:#}");
    assert!(!fresh.join("edgeid.db").exists(), "doctor created a store");
}
