//! `edgeid doctor`: one screen that says whether this device can work, and
//! what to do when it cannot. Each check is ok, warn or fail with a
//! one-line explanation and a fix; any failure makes the exit status 1.
//!
//! - `report`: the check type and the screen / JSON output.
//! - `devices`: camera and microphone.
//! - `models`: checksums, the inference backend and the provider obtained.
//! - `store`: the KEK and its source, the keys, the store (schema,
//!   integrity, rollback anchor) — all read-only.
//! - `links`: D-Bus (name owned, policy installed) and MQTT (broker
//!   reachable, TLS handshake).
//! - `system`: time synchronisation and free disk in the state directory.
//!
//! The probes that touch hardware or the network live in the library
//! (`sources::camera_probe`, `sources::audio::probe`, `store::health`,
//! `sinks::mqtt::probe`, `sinks::dbus::probe`); this module only judges
//! what they found against the configuration.

mod devices;
mod links;
mod models;
mod report;
mod store;
mod system;

use std::time::Duration;

use clap::Args;

use super::GlobalArgs;
use super::exit::ExitStatus;
use super::state::load_config;
use report::{Check, Report};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The microphone to listen to, an ALSA PCM name as cpal lists it
    /// (default: the config's `[microphone]`, else "default").
    #[arg(long, env = "EDGEID_MICROPHONE")]
    pub microphone: Option<String>,
    /// How long to listen to the microphone, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub listen_secs: f64,
    /// Longest wait for the bus and the broker, seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

pub fn run(global: &GlobalArgs, args: DoctorArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let listen = Duration::from_secs_f64(args.listen_secs.clamp(0.1, 30.0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut checks: Vec<Check> = vec![
        devices::camera(&config.camera),
        devices::microphone(&config, args.microphone.as_deref(), listen),
    ];
    checks.extend(models::check(global));
    checks.extend(store::check(global, &config));
    checks.push(runtime.block_on(links::dbus(&config.dbus, timeout)));
    checks.push(runtime.block_on(links::mqtt(&config, timeout)));
    checks.push(system::time_sync());
    checks.push(system::disk(&global.state_dir));
    let report = Report::new(checks);
    report.print(global.json)?;
    if report.failed > 0 {
        return Err(ExitStatus {
            code: 1,
            message: format!(
                "{} check(s) failed: {}",
                report.failed,
                report.failed_names().join(", ")
            ),
        }
        .into());
    }
    Ok(())
}
