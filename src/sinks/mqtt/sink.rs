//! [`start`] and the sink's task: builds a connection, routes its events, keeps writing
//! verdicts to disk while the broker is away, reconnects with backoff, and
//! on shutdown flushes the queue for up to the grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::Outgoing;
use rumqttc::v5::Event;
use rumqttc::v5::MqttOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use tokio::sync::{mpsc, oneshot};

use super::Topics;
use super::config::MqttConfig;
use super::error::MqttError;
use super::intake::ErrorTx;
use super::latency::{Latency, LatencyObserver};
use super::link::{Link, Polled};
use super::options::options;
use super::outbox::Outbox;
use crate::api::{ApiError, EngineHandle, RateLimiter, VerdictOut};
use crate::store::Store;

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

/// Starts the sink's task. Verdicts to publish arrive on `verdict_rx`;
/// request tasks send theirs on `verdict_tx`. `observer`, when given, is told when each verdict reaches
/// the socket.
pub fn start(
    c: &MqttConfig,
    engine: EngineHandle,
    store: Store,
    verdict_tx: mpsc::UnboundedSender<VerdictOut>,
    verdict_rx: mpsc::UnboundedReceiver<VerdictOut>,
    observer: Option<Arc<dyn LatencyObserver>>,
) -> Result<MqttSink, MqttError> {
    let device = &engine.info.device_id;
    if !super::is_topic_level(device) {
        return Err(MqttError::DeviceId(
            device.escape_debug().take(64).collect(),
        ));
    }
    let topics = Topics::new(&c.topic_prefix, device);
    let options = options(c, &engine.info.device_id, &topics)?;
    let (stop, stop_rx) = oneshot::channel();
    let sink = Sink {
        options,
        topics: Arc::new(topics),
        engine,
        outbox: Outbox::new(store, c.queue_capacity),
        max_request_bytes: c.max_request_bytes,
        rate: RateLimiter::new(c.requests_per_minute),
        refusals_unpublished: 0,
        reconnect_max: Duration::from_millis(c.reconnect_max_ms.max(100)),
        verdict_tx: Some(verdict_tx),
        latency: Latency::new(observer),
    };
    let task = tokio::spawn(sink.run(verdict_rx, stop_rx));
    Ok(MqttSink { stop, task })
}

pub(super) struct Sink {
    pub options: MqttOptions,
    pub topics: Arc<Topics>,
    pub engine: EngineHandle,
    pub outbox: Outbox,
    pub max_request_bytes: usize,
    /// The request topic as a whole: any publisher may use it.
    pub rate: RateLimiter<()>,
    /// Refusals the client could not queue for the error topic (counted
    /// and logged, never silently lost).
    pub refusals_unpublished: u64,
    pub reconnect_max: Duration,
    /// Request tasks send their verdicts here; dropped when stopping so the
    /// channel closes once the last one is answered.
    pub verdict_tx: Option<mpsc::UnboundedSender<VerdictOut>>,
    pub latency: Latency,
}

impl Sink {
    pub async fn run(
        mut self,
        mut verdicts: mpsc::UnboundedReceiver<VerdictOut>,
        mut stop: oneshot::Receiver<Duration>,
    ) {
        let (err_tx, mut errors) = mpsc::unbounded_channel::<(Option<String>, ApiError)>();
        let mut backoff = Duration::from_millis(100);
        let mut flush_until: Option<Instant> = None;
        let mut verdicts_open = true;
        let mut failed_attempts: u32 = 0;
        loop {
            let mut link = Link::open(self.options.clone());
            let failure = loop {
                if let Some(until) = flush_until
                    && ((!verdicts_open
                        && link.connected
                        && link.in_flight() == 0
                        && self.outbox.is_empty().unwrap_or(true))
                        || Instant::now() >= until)
                {
                    self.finish(&mut link).await;
                    return;
                }
                tokio::select! {
                    polled = link.next() => match polled {
                        Polled::Event(event, at) => self.on_event(&mut link, *event, at, &err_tx),
                        Polled::Failed(e) => break e,
                    },
                    v = verdicts.recv(), if verdicts_open => match v {
                        Some(v) => self.on_verdict(&mut link, v).await,
                        None => verdicts_open = false,
                    },
                    e = errors.recv() => if let Some((nonce, e)) = e {
                        self.publish_error(&mut link, nonce.as_deref(), &e);
                    },
                    grace = &mut stop, if flush_until.is_none() => {
                        flush_until = Some(Instant::now() + grace.unwrap_or_default());
                        self.verdict_tx = None;
                        tracing::info!(queued = self.outbox.len().unwrap_or(0), "MQTT: flushing the verdict queue");
                    },
                    _ = tokio::time::sleep(Duration::from_millis(200)), if flush_until.is_some() => {}
                }
            };
            // The event loop has stopped; the link only collects new verdicts now.
            let was_connected = link.connected;
            link.connected = false;
            if was_connected {
                tracing::warn!(error = %failure, "MQTT: connection lost; verdicts wait in the on-disk queue");
                failed_attempts = 0;
            } else {
                failed_attempts += 1;
                // Say it loudly the first time and then ever more rarely: a
                // bad certificate or an unreachable broker must show in the
                // log, without one line per retry for hours.
                if failed_attempts.is_power_of_two() {
                    tracing::warn!(error = %failure, attempts = failed_attempts, "MQTT: cannot connect; verdicts wait in the on-disk queue");
                } else {
                    tracing::debug!(error = %failure, "MQTT: cannot connect");
                }
            }
            if flush_until.is_some_and(|u| Instant::now() >= u) {
                tracing::warn!(
                    queued = self.outbox.len().unwrap_or(0),
                    "MQTT: stopping with verdicts still queued on disk"
                );
                return;
            }
            // Keep writing new verdicts to disk while waiting to reconnect.
            let wait = tokio::time::sleep(backoff);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    v = verdicts.recv(), if verdicts_open => match v {
                        Some(v) => self.on_verdict(&mut link, v).await,
                        None => verdicts_open = false,
                    },
                }
            }
            backoff = (backoff * 2).min(self.reconnect_max);
            if was_connected {
                backoff = Duration::from_millis(100);
            }
        }
    }

    fn on_event(&mut self, link: &mut Link, event: Event, at: Instant, err_tx: &ErrorTx) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                tracing::info!(code = ?ack.code, queued = self.outbox.len().unwrap_or(0), "MQTT: connected");
                link.connected = true;
                if let Err(e) = link
                    .client
                    .try_subscribe(self.topics.request.clone(), QoS::AtLeastOnce)
                {
                    tracing::error!(error = %e, "MQTT: cannot subscribe to requests");
                }
                if link
                    .client
                    .try_publish(self.topics.status.clone(), QoS::AtLeastOnce, true, "online")
                    .is_ok()
                {
                    link.sent.push_back(None);
                }
                self.pump(link);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(Some(id)) = link.sent.pop_front() {
                    link.by_pkid.insert(pkid, id);
                    self.latency.published(id, at);
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(id) = link.by_pkid.remove(&ack.pkid)
                    && let Err(e) = self.outbox.acknowledged(id)
                {
                    tracing::error!(error = %e, "MQTT: cannot remove a delivered verdict from the queue");
                }
                self.pump(link);
                if link.in_flight() == 0
                    && let Err(e) = self.outbox.checkpoint_if_due()
                {
                    tracing::warn!(error = %e, "MQTT: WAL checkpoint failed");
                }
            }
            Event::Incoming(Packet::Publish(p))
                if p.topic.as_ref() == self.topics.request.as_bytes() =>
            {
                self.on_request(&p.payload, err_tx);
            }
            _ => {}
        }
    }

    /// Graceful goodbye: the retained status says offline (the will is for crashes).
    async fn finish(&mut self, link: &mut Link) {
        tracing::info!(
            queued = self.outbox.len().unwrap_or(0),
            expired = self.outbox.expired,
            overflowed = self.outbox.overflowed,
            "MQTT: stopping"
        );
        if link.connected {
            let _ = link.client.try_publish(
                self.topics.status.clone(),
                QoS::AtLeastOnce,
                true,
                "offline",
            );
            let _ = link.client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Polled::Event(ev, _) = link.next().await {
                    if matches!(*ev, Event::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}
