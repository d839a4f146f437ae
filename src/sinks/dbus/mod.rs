//! D-Bus for kiosk apps: `org.edgeid.Auth1` at `/org/edgeid/Auth1`.
//!
//! - `config`: the `[dbus]` section (which bus, the admin group).
//! - `interface`: the methods, properties and signals, and the named
//!   errors callers get instead of a verdict.
//! - `auth`: who the caller is (from the bus), and whether they may
//!   administer; checked in edgeid so a mis-installed bus policy does not
//!   open enrollment to everyone.
//! - `service`: connect, claim the name, forward engine events as signals.
//! - `probe`: who owns the name, is the policy installed (`edgeid doctor`).
//!
//! The sink reaches the engine only through `api::EngineHandle`; the
//! daemon hands it its channels.

pub mod auth;
pub mod config;
pub mod interface;
pub mod probe;
pub mod service;

pub use config::{DbusConfig, DbusConfigError};
pub use interface::{Auth1, Auth1Error};
pub use service::{BUS_NAME, DbusError, OBJECT_PATH, serve};
