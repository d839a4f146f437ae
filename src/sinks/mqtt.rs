//! MQTT 5 for door controllers (rumqttc `v5`).
//!
//! Topics under `<prefix>/<device>/`: `verdict` (QoS 1, not retained, MQTT 5
//! message expiry = the verdict's remaining lifetime), `status` (retained
//! `online`; last will `offline`), `request` (JSON, see `mqtt_request`) and
//! `error` (why a request was refused, QoS 0).
//!
//! Delivery: every verdict is written to the on-disk queue first and
//! published from there in order; it leaves the queue only on PUBACK. After
//! a broker outage the connection is rebuilt and the queue replayed from
//! the start, so nothing issued meanwhile is lost (QoS 1: a controller may
//! see a duplicate and tells by `jti`/`seq`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, oneshot};

use super::mqtt_request::{ReplayGuard, parse};
use super::outbox::Outbox;
use crate::config::Config;
use crate::daemon::DaemonError;
use crate::daemon::api::{ApiError, EngineHandle, Origin, VerdictOut};
use crate::store::{Store, unix_now};

/// Verdicts handed to the client and not yet acknowledged; below the
/// receive maximum brokers grant (Mosquitto: 20), so rumqttc never stalls.
const WINDOW: usize = 16;

pub struct Topics {
    pub verdict: String,
    pub status: String,
    pub request: String,
    pub error: String,
}

impl Topics {
    pub fn new(prefix: &str, device: &str) -> Self {
        let t = |leaf: &str| format!("{prefix}/{device}/{leaf}");
        Self {
            verdict: t("verdict"),
            status: t("status"),
            request: t("request"),
            error: t("error"),
        }
    }
}

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
    let c = &config.mqtt;
    let topics = Topics::new(&c.topic_prefix, &engine.info.device_id);
    let options = options(config, &engine.info.device_id, &topics)?;
    let (stop, stop_rx) = oneshot::channel();
    let replay_ttl = Duration::from_secs(config.verdict_lifetime_secs * 2)
        + Duration::from_millis(u64::from(config.daemon.max_timeout_ms));
    let sink = Sink {
        options,
        topics: Arc::new(topics),
        engine,
        outbox: Outbox::new(store, c.queue_capacity),
        replay: ReplayGuard::new(replay_ttl, 100_000),
        max_request_bytes: c.max_request_bytes,
        reconnect_max: Duration::from_millis(c.reconnect_max_ms.max(100)),
        verdict_tx: Some(verdict_tx),
        marks: HashMap::new(),
    };
    let task = tokio::spawn(sink.run(verdict_rx, stop_rx));
    Ok(MqttSink { stop, task })
}

fn options(config: &Config, device: &str, topics: &Topics) -> Result<MqttOptions, DaemonError> {
    let c = &config.mqtt;
    let client_id = c
        .client_id
        .clone()
        .unwrap_or_else(|| format!("edgeid-{device}"));
    let mut o = MqttOptions::new(client_id, c.host.clone(), c.port);
    o.set_keep_alive(Duration::from_secs(c.keep_alive_secs.max(5)));
    o.set_clean_start(true);
    o.set_connection_timeout(5);
    // Asks the broker not to forward anything larger; bounds what we read.
    o.set_max_packet_size(Some(64 * 1024));
    o.set_last_will(LastWill::new(
        &topics.status,
        "offline",
        QoS::AtLeastOnce,
        true,
        None,
    ));
    if let Some(user) = &c.username {
        let password = match &c.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| {
                    DaemonError::Mqtt(format!(
                        "cannot read mqtt.password_file {}: {e}",
                        p.display()
                    ))
                })?
                .trim_end()
                .to_owned(),
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if let Some(ca) = &c.tls.ca_file {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| DaemonError::Mqtt(format!("cannot read {}: {e}", p.display())))
        };
        let client_auth = match (&c.tls.cert_file, &c.tls.key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple {
            ca: read(ca)?,
            alpn: None,
            client_auth,
        }));
    }
    Ok(o)
}

struct Sink {
    options: MqttOptions,
    topics: Arc<Topics>,
    engine: EngineHandle,
    outbox: Outbox,
    replay: ReplayGuard,
    max_request_bytes: usize,
    reconnect_max: Duration,
    /// Request tasks send their verdicts here; dropped when stopping so the
    /// channel closes once the last one is answered.
    verdict_tx: Option<mpsc::UnboundedSender<VerdictOut>>,
    /// Queue id → when its frame was captured (frame-to-bus latency).
    marks: HashMap<i64, Instant>,
}

/// One connection's bookkeeping; rebuilt on every reconnect.
struct Session {
    client: AsyncClient,
    connected: bool,
    /// Last queue id handed to the client.
    cursor: i64,
    /// One entry per publish request, in order: the queue id, or None for
    /// status / error messages. Matched to packet ids by Outgoing events.
    sent: VecDeque<Option<i64>>,
    by_pkid: HashMap<u16, i64>,
}

impl Session {
    fn in_flight(&self) -> usize {
        self.sent.iter().filter(|s| s.is_some()).count() + self.by_pkid.len()
    }
}

impl Sink {
    async fn run(
        mut self,
        mut verdicts: mpsc::UnboundedReceiver<VerdictOut>,
        mut stop: oneshot::Receiver<Duration>,
    ) {
        let (err_tx, mut errors) = mpsc::unbounded_channel::<(Option<String>, ApiError)>();
        let mut backoff = Duration::from_millis(100);
        let mut flush_until: Option<Instant> = None;
        let mut verdicts_open = true;
        loop {
            let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 64);
            let mut s = Session {
                client,
                connected: false,
                cursor: 0,
                sent: VecDeque::new(),
                by_pkid: HashMap::new(),
            };
            let failure = loop {
                if let Some(until) = flush_until
                    && ((!verdicts_open
                        && s.connected
                        && s.in_flight() == 0
                        && self.outbox.is_empty().unwrap_or(true))
                        || Instant::now() >= until)
                {
                    self.finish(&s, &mut eventloop).await;
                    return;
                }
                tokio::select! {
                    event = eventloop.poll() => match event {
                        Ok(event) => self.on_event(&mut s, event, &err_tx),
                        Err(e) => break e.to_string(),
                    },
                    v = verdicts.recv(), if verdicts_open => match v {
                        Some(v) => self.on_verdict(&mut s, v),
                        None => verdicts_open = false,
                    },
                    e = errors.recv() => if let Some((nonce, e)) = e {
                        self.publish_error(&mut s, nonce.as_deref(), &e);
                    },
                    grace = &mut stop, if flush_until.is_none() => {
                        flush_until = Some(Instant::now() + grace.unwrap_or_default());
                        self.verdict_tx = None;
                        tracing::info!(queued = self.outbox.len().unwrap_or(0), "MQTT: flushing the verdict queue");
                    },
                    _ = tokio::time::sleep(Duration::from_millis(200)), if flush_until.is_some() => {}
                }
            };
            if s.connected {
                tracing::warn!(error = %failure, "MQTT: connection lost; verdicts wait in the on-disk queue");
            } else {
                tracing::debug!(error = %failure, "MQTT: cannot connect");
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
                        Some(v) => self.on_verdict(&mut s, v),
                        None => verdicts_open = false,
                    },
                }
            }
            backoff = (backoff * 2).min(self.reconnect_max);
            if s.connected {
                backoff = Duration::from_millis(100);
            }
        }
    }

    fn on_event(
        &mut self,
        s: &mut Session,
        event: Event,
        err_tx: &mpsc::UnboundedSender<(Option<String>, ApiError)>,
    ) {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                tracing::info!(code = ?ack.code, queued = self.outbox.len().unwrap_or(0), "MQTT: connected");
                s.connected = true;
                if let Err(e) = s
                    .client
                    .try_subscribe(self.topics.request.clone(), QoS::AtLeastOnce)
                {
                    tracing::error!(error = %e, "MQTT: cannot subscribe to requests");
                }
                if s.client
                    .try_publish(self.topics.status.clone(), QoS::AtLeastOnce, true, "online")
                    .is_ok()
                {
                    s.sent.push_back(None);
                }
                self.pump(s);
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(Some(id)) = s.sent.pop_front() {
                    s.by_pkid.insert(pkid, id);
                    if let Some(t) = self.marks.remove(&id) {
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        tracing::info!(
                            queue_id = id,
                            frame_to_bus_ms = format!("{ms:.2}"),
                            "MQTT: verdict published"
                        );
                    }
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(id) = s.by_pkid.remove(&ack.pkid)
                    && let Err(e) = self.outbox.acknowledged(id)
                {
                    tracing::error!(error = %e, "MQTT: cannot remove a delivered verdict from the queue");
                }
                self.pump(s);
            }
            Event::Incoming(Packet::Publish(p))
                if p.topic.as_ref() == self.topics.request.as_bytes() =>
            {
                self.on_request(&p.payload, err_tx);
            }
            _ => {}
        }
    }

    fn on_request(
        &mut self,
        payload: &[u8],
        err_tx: &mpsc::UnboundedSender<(Option<String>, ApiError)>,
    ) {
        let request = parse(payload, self.max_request_bytes)
            .and_then(|r| self.replay.check(&r.nonce, Instant::now()).map(|()| r));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, bytes = payload.len(), "MQTT: request refused");
                let _ = err_tx.send((None, e));
                return;
            }
        };
        let Some(verdict_tx) = self.verdict_tx.clone() else {
            let _ = err_tx.send((
                Some(request.nonce),
                ApiError::ShuttingDown("edgeid is shutting down".into()),
            ));
            return;
        };
        let engine = self.engine.clone();
        let err_tx = err_tx.clone();
        tokio::spawn(async move {
            let nonce = request.nonce.clone();
            match engine
                .decide(
                    request.mode,
                    request.subject,
                    Some(request.nonce),
                    request.timeout_ms,
                    Origin::Mqtt,
                )
                .await
            {
                Ok(v) => {
                    let _ = verdict_tx.send(v);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT: request not answered with a verdict");
                    let _ = err_tx.send((Some(nonce), e));
                }
            }
        });
    }

    fn on_verdict(&mut self, s: &mut Session, v: VerdictOut) {
        match self.outbox.push(&v.verdict) {
            Ok(id) => {
                if let Some(t) = v.frame_captured_at {
                    self.marks.insert(id, t);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "MQTT: cannot queue a verdict on disk; it is lost")
            }
        }
        self.pump(s);
    }

    /// Hands queued verdicts to the client, oldest first, within the window.
    fn pump(&mut self, s: &mut Session) {
        if !s.connected {
            return;
        }
        let room = WINDOW.saturating_sub(s.in_flight());
        if room == 0 {
            return;
        }
        let pending = match self.outbox.after(s.cursor, room, unix_now()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "MQTT: cannot read the verdict queue");
                return;
            }
        };
        for p in pending {
            let props = PublishProperties {
                message_expiry_interval: Some(p.remaining_secs),
                content_type: Some("application/jose".into()),
                ..Default::default()
            };
            match s.client.try_publish_with_properties(
                self.topics.verdict.clone(),
                QoS::AtLeastOnce,
                false,
                p.verdict,
                props,
            ) {
                Ok(()) => {
                    s.cursor = p.id;
                    s.sent.push_back(Some(p.id));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "MQTT: client busy; the verdict stays queued");
                    return;
                }
            }
        }
    }

    fn publish_error(&mut self, s: &mut Session, nonce: Option<&str>, e: &ApiError) {
        if !s.connected {
            return;
        }
        let body = serde_json::json!({"error": e.code(), "message": e.to_string(), "nonce": nonce});
        if s.client
            .try_publish(
                self.topics.error.clone(),
                QoS::AtMostOnce,
                false,
                body.to_string(),
            )
            .is_ok()
        {
            s.sent.push_back(None);
        }
    }

    /// Graceful goodbye: the retained status says offline (the will is for crashes).
    async fn finish(&mut self, s: &Session, eventloop: &mut rumqttc::v5::EventLoop) {
        tracing::info!(
            queued = self.outbox.len().unwrap_or(0),
            expired = self.outbox.expired,
            overflowed = self.outbox.overflowed,
            "MQTT: stopping"
        );
        if s.connected {
            let _ = s.client.try_publish(
                self.topics.status.clone(),
                QoS::AtLeastOnce,
                true,
                "offline",
            );
            let _ = s.client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(ev) = eventloop.poll().await {
                    if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}
