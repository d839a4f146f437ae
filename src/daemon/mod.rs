//! The long-running service (`edgeid run`): a capture thread feeding an
//! engine thread (pipeline, decisions, store), and the sinks (D-Bus, MQTT)
//! on a tokio runtime carrying requests in and verdicts out.
//!
//! - `run`: start-up order, the wiring of engine and sinks, shutdown.
//! - `error`: [`DaemonError`], why it could not start, with the cause.
//! - `engine`, `enroll`, `decide`: the engine thread and its decisions;
//!   it serves the jobs of `api`, the request port the sinks use.
//! - `voice`: the voice factor (stages, voice templates, replay memory).
//! - `status`: the camera's state, told to systemd and the log.
//! - `notify`: sd_notify (READY, STATUS, WATCHDOG, STOPPING).
//! - `memory`: the allocator's settings for a months-long process.
//!
//! Its config is `config::Config`; the `[daemon]` section lives there
//! (`config::DaemonConfig`) because the config is assembled below the
//! daemon. The daemon is the layer that wires the others: nothing but the
//! command line imports it.

pub mod decide;
pub mod engine;
pub mod enroll;
mod error;
mod memory;
pub mod notify;
mod run;
mod status;
pub mod voice;

pub use error::DaemonError;
pub use run::{RunHooks, RunOptions, WEDGE_ENV, run, run_with};
