//! What the integration tests share; each test file has `mod support;`.
//!
//! - [`prerequisites`]: [`require`], the one rule for missing prerequisites
//!   (fail under `CI`, skip loudly otherwise; hardware may always skip).
//! - [`samples`]: the one locator of the sample photos (`$EDGEID_TEST_DATA`).
//! - [`tools`]: programs and the Python venv the tests drive.
//! - [`models`]: the committed models and one loaded face pipeline.
//! - [`device`]: a temporary state directory, KEK, config and folder
//!   camera, and the `edgeid` binary pointed at them.
//! - [`chain`]: an unlocked store with audit records, and an attacker's
//!   edits of its chain.
//! - [`output`]: what edgeid prints (JSON, verdict claims).
//! - [`process`], [`daemon`], [`broker`], [`bus`], [`auth1`]: child
//!   processes killed on drop: `edgeid run`, Mosquitto, dbus-daemon, and a
//!   zbus client of `org.edgeid.Auth1`.
//! - [`held`]: frames of a printed photo held up to the camera.
//! - [`speech`]: espeak-ng voices as synthetic speakers.
//! - [`tpm`]: a software TPM (swtpm) for the anchor's hardware counter.
//! - [`fifo_camera`]: a Y4M camera on a FIFO that plays the clips a test
//!   hands it (`eval` feature: the clips come from `edgeid::eval::liveness`).

// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports)]

pub mod auth1;
pub mod broker;
pub mod bus;
pub mod chain;
pub mod daemon;
pub mod device;
#[cfg(feature = "eval")]
pub mod fifo_camera;
pub mod held;
pub mod models;
pub mod output;
pub mod prerequisites;
pub mod process;
pub mod samples;
pub mod speech;
pub mod tools;
pub mod tpm;

pub use broker::{Mosquitto, free_port};
pub use bus::DbusDaemon;
pub use daemon::Daemon;
pub use device::{BIN, DEVICE, Device, edgeid};
pub use output::{claims, stdout_json};
pub use prerequisites::{Missing, require};
pub use process::{Guard, lines, wait_until};
pub use samples::samples;
pub use tools::{python_venv, tools};

/// The repository's root (the crate's manifest directory).
pub fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
