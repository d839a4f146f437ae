//! MQTT 5 for door controllers (rumqttc `v5`).
//!
//! Topics under `<prefix>/<device>/`: `verdict` (QoS 1, not retained, MQTT 5
//! message expiry = the verdict's remaining lifetime), `status` (retained
//! `online`; last will `offline`), `request` (JSON, see `request`) and
//! `error` (why a request was refused, QoS 0).
//!
//! Delivery: every verdict is written to the on-disk queue and leaves it
//! only on PUBACK. After a broker outage the connection is rebuilt and the
//! queue replayed from the start, so nothing issued meanwhile is lost (QoS
//! 1: a controller may see a duplicate and tells by `jti`/`seq`).
//!
//! - `config`: the `[mqtt]` and `[mqtt.tls]` sections.
//! - `topics`: the topic names.
//! - `options`: connection options (credentials, TLS, TCP_NODELAY, will).
//! - `error`: [`MqttError`], what fails at start or on a connection.
//! - `link`: one connection, its event loop on its own task.
//! - `sink`: [`start`], and the task: connect, route events, reconnect,
//!   flush on shutdown.
//! - `outbox`: the on-disk verdict queue, as the sink uses it.
//! - `delivery`: the queue → broker path, in order, within a window.
//! - `request`: the request schema (pure, no I/O).
//! - `probe`: one connection with the daemon's settings (`edgeid doctor`).
//! - `intake`: requests → engine; refusals on `error`.
//! - `latency`: frame-to-bus marks, their log line and the observer.
//!
//! The sink reaches the engine only through `api::EngineHandle`, and is
//! given its section and channels by the daemon: it never sees the rest of
//! the configuration.

pub mod config;
mod delivery;
mod error;
mod intake;
pub mod latency;
mod link;
mod options;
pub mod outbox;
pub mod probe;
pub mod request;
mod sink;
mod topics;

pub use config::{MqttConfig, MqttConfigError, TlsConfig, is_topic_level};
pub use error::MqttError;
pub use latency::{LatencyObserver, PublishMark};
pub use sink::{MqttSink, start};
pub use topics::Topics;
