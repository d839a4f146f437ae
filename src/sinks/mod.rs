//! Sinks: where verdicts leave the device and requests come in.
//!
//! - `mqtt`: door controllers (MQTT 5), with `mqtt_request` (request
//!   schema, replay guard) and `outbox` (the on-disk delivery queue).
//! - `dbus`: kiosk apps (`org.edgeid.Auth1`), with `dbus_auth` (who the
//!   caller is, and whether they may administer).
//!
//! Sinks call into the daemon through `daemon::api::EngineHandle`; they
//! never touch the pipeline or the store's templates.

pub mod dbus;
pub mod dbus_auth;
pub mod mqtt;
pub mod mqtt_request;
pub mod outbox;
