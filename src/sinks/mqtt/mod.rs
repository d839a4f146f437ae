//! MQTT 5 for door controllers (rumqttc `v5`).
//!
//! Topics under `<prefix>/<device>/`: `verdict` (QoS 1, not retained, MQTT 5
//! message expiry = the verdict's remaining lifetime), `status` (retained
//! `online`; last will `offline`), `request` (JSON, see `mqtt_request`) and
//! `error` (why a request was refused, QoS 0).
//!
//! Delivery: every verdict is written to the on-disk queue and leaves it
//! only on PUBACK. After a broker outage the connection is rebuilt and the
//! queue replayed from the start, so nothing issued meanwhile is lost (QoS
//! 1: a controller may see a duplicate and tells by `jti`/`seq`).
//!
//! - `topics`: the topic names.
//! - `options`: connection options (credentials, TLS, TCP_NODELAY, will).
//! - `link`: one connection, its event loop on its own task.
//! - `sink`: the task: connect, route events, reconnect, flush on shutdown.
//! - `delivery`: the queue → broker path, in order, within a window.
//! - `requests`: requests → engine; refusals on `error`.
//! - `latency`: frame-to-bus marks, their log line and the observer.

mod delivery;
mod latency;
mod link;
mod options;
mod requests;
mod sink;
mod topics;

pub use topics::Topics;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::mqtt_request::ReplayGuard;
use super::outbox::Outbox;
use crate::config::Config;
use crate::daemon::api::{EngineHandle, VerdictOut};
use crate::daemon::{DaemonError, LatencyObserver};
use crate::store::Store;

/// Nonces the replay guard remembers at most.
const REPLAY_CAPACITY: usize = 100_000;

pub struct MqttSink {
    stop: oneshot::Sender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl MqttSink {
    /// Stops taking requests and delivers what is queued, for up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(grace);
        if tokio::time::timeout(grace + Duration::from_secs(2), self.task)
            .await
            .is_err()
        {
            tracing::warn!("the MQTT sink did not stop in time");
        }
    }
}

pub fn start(
    config: &Config,
    engine: EngineHandle,
    store: Store,
    verdict_tx: mpsc::UnboundedSender<VerdictOut>,
    verdict_rx: mpsc::UnboundedReceiver<VerdictOut>,
) -> Result<MqttSink, DaemonError> {
    start_observed(config, engine, store, verdict_tx, verdict_rx, None)
}

/// [`start`], telling `observer` when each verdict reaches the socket.
pub fn start_observed(
    config: &Config,
    engine: EngineHandle,
    store: Store,
    verdict_tx: mpsc::UnboundedSender<VerdictOut>,
    verdict_rx: mpsc::UnboundedReceiver<VerdictOut>,
    observer: Option<Arc<dyn LatencyObserver>>,
) -> Result<MqttSink, DaemonError> {
    let c = &config.mqtt;
    let topics = Topics::new(&c.topic_prefix, &engine.info.device_id);
    let options = options::options(config, &engine.info.device_id, &topics)?;
    let (stop, stop_rx) = oneshot::channel();
    let replay_ttl = Duration::from_secs(config.verdict_lifetime_secs * 2)
        + Duration::from_millis(u64::from(config.daemon.max_timeout_ms));
    let sink = sink::Sink {
        options,
        topics: Arc::new(topics),
        engine,
        outbox: Outbox::new(store, c.queue_capacity),
        replay: ReplayGuard::new(replay_ttl, REPLAY_CAPACITY),
        max_request_bytes: c.max_request_bytes,
        reconnect_max: Duration::from_millis(c.reconnect_max_ms.max(100)),
        verdict_tx: Some(verdict_tx),
        latency: latency::Latency::new(observer),
    };
    let task = tokio::spawn(sink.run(verdict_rx, stop_rx));
    Ok(MqttSink { stop, task })
}
