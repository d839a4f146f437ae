//! `edgeid config check`: parse and validate the configuration (unknown
//! keys are named), check that the files it points to exist, and print
//! what the daemon would do with it.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Serialize;

use edgeid::config::{Config, DEFAULT_CONFIG};
use edgeid::sources::SourceKind;

use super::GlobalArgs;
use super::output::emit;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration file and the files it names.
    Check,
}

#[derive(Debug, Serialize)]
struct Report {
    file: Option<PathBuf>,
    ok: bool,
    problems: Vec<String>,
    camera: String,
    mqtt: Option<String>,
    dbus: Option<String>,
    identify_enabled: bool,
    walk_up: bool,
    /// `[liveness] mode`: what the daemon must see before scoring a face.
    liveness: &'static str,
    /// `[lockout]`: failed attempts allowed per window.
    lockout: String,
    /// `[decision] modalities`: what a decision needs.
    modalities: &'static str,
    /// `[microphone]`: the daemon's voice input, if any.
    microphone: Option<String>,
}

pub fn run(global: &GlobalArgs, cmd: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check = cmd;
    let file = global.config.clone().or_else(|| {
        Path::new(DEFAULT_CONFIG)
            .is_file()
            .then(|| PathBuf::from(DEFAULT_CONFIG))
    });
    let config = Config::load(file.as_deref())?;
    let problems = missing_files(&config);
    let report = Report {
        ok: problems.is_empty(),
        camera: format!(
            "{:?} {}",
            config.camera.source,
            config
                .camera
                .path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/dev/video0".into())
        )
        .to_lowercase(),
        mqtt: config.mqtt.enabled.then(|| {
            format!(
                "{}:{} (tls {})",
                config.mqtt.host,
                config.mqtt.port,
                config.mqtt.tls.ca_file.is_some()
            )
        }),
        dbus: config.dbus.enabled.then(|| config.dbus.bus.clone()),
        identify_enabled: config.identify_enabled,
        walk_up: config.daemon.walk_up,
        liveness: config.liveness.mode.as_str(),
        lockout: format!(
            "{} failures in {} s, then waits of {} s doubling to {} s",
            config.lockout.max_failures,
            config.lockout.window_secs,
            config.lockout.backoff_initial_secs,
            config.lockout.backoff_max_secs
        ),
        modalities: config.decision.modalities.as_str(),
        microphone: config.microphone.device.clone().or_else(|| {
            config
                .microphone
                .fifo
                .as_ref()
                .map(|f| format!("fifo {}", f.display()))
        }),
        file,
        problems,
    };
    emit(global.json, &report, |r| {
        let name = r
            .file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(defaults)".into());
        println!(
            "config {name}: {}",
            if r.ok { "ok" } else { "has problems" }
        );
        println!("  camera   {}", r.camera);
        println!("  mqtt     {}", r.mqtt.as_deref().unwrap_or("off"));
        println!("  dbus     {}", r.dbus.as_deref().unwrap_or("off"));
        println!("  identify {} (walk-up {})", r.identify_enabled, r.walk_up);
        println!("  liveness {}", r.liveness);
        println!("  lockout  {}", r.lockout);
        println!("  decision {}", r.modalities);
        println!("  mic      {}", r.microphone.as_deref().unwrap_or("none"));
        for p in &r.problems {
            eprintln!("  problem: {p}");
        }
    })?;
    if !report.ok {
        anyhow::bail!("the configuration names files that are missing: fix the paths above");
    }
    Ok(())
}

fn missing_files(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut need = |key: &str, path: Option<&Path>| {
        if let Some(p) = path
            && !p.exists()
        {
            out.push(format!("{key} = {} does not exist", p.display()));
        }
    };
    if matches!(c.camera.source, SourceKind::Folder | SourceKind::V4l2) {
        need("camera.path", c.camera.path.as_deref());
    }
    need("kek_file", c.kek_file.as_deref());
    need("microphone.fifo", c.microphone.fifo.as_deref());
    if c.mqtt.enabled {
        need("mqtt.tls.ca_file", c.mqtt.tls.ca_file.as_deref());
        need("mqtt.tls.cert_file", c.mqtt.tls.cert_file.as_deref());
        need("mqtt.tls.key_file", c.mqtt.tls.key_file.as_deref());
        need("mqtt.password_file", c.mqtt.password_file.as_deref());
    }
    out
}
