//! Sinks: where verdicts leave the device and requests come in.
//!
//! - `mqtt`: door controllers (MQTT 5): its `[mqtt]` section, the request
//!   schema and replay guard, the on-disk delivery queue.
//! - `dbus`: kiosk apps (`org.edgeid.Auth1`): its `[dbus]` section, and who
//!   the caller is and whether they may administer.
//!
//! Sinks call into the engine through `api::EngineHandle`; they never touch
//! the pipeline or the store's templates, and never import the daemon: it
//! starts them with their own config section and the channels they serve,
//! and wraps their start-up errors (`MqttError`, `DbusError`).

pub mod dbus;
pub mod mqtt;
