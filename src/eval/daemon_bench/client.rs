//! The measuring client: two broker connections (requests, verdicts), every
//! arrival stamped on one clock, and the sink's marks for the same verdicts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rumqttc::NetworkOptions;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;

use super::{DaemonBenchError, Sample, Target, ms, random_tag};
use crate::sinks::mqtt::{LatencyObserver, PublishMark};
use crate::store::unix_now;
use crate::verdict::jws;

/// Longest wait for the sink's report of a verdict already received.
const MARK_WAIT: Duration = Duration::from_secs(2);

/// Collects the sink's marks, keyed by the verdict text.
#[derive(Default)]
pub struct Marks {
    marks: Mutex<HashMap<String, PublishMark>>,
}

impl LatencyObserver for Marks {
    fn verdict_published(&self, mark: &PublishMark) {
        self.lock().insert(mark.verdict.clone(), mark.clone());
    }
}

impl Marks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PublishMark>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn take(&self, verdict: &str) -> Option<PublishMark> {
        self.lock().remove(verdict)
    }
}

/// What a connection's event loop saw.
enum Seen {
    Message {
        topic: String,
        payload: String,
        at: Instant,
    },
    SubAck,
    Failed(String),
}

struct Topics {
    request: String,
    verdict: String,
    error: String,
    status: String,
}

pub(super) struct BenchClient {
    requests: AsyncClient,
    verdicts: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    topics: Topics,
    drivers: Vec<tokio::task::JoinHandle<()>>,
}

impl BenchClient {
    pub(super) async fn connect(target: &Target) -> Result<Self, DaemonBenchError> {
        let t = |leaf: &str| format!("{}/{}/{leaf}", target.topic_prefix, target.device_id);
        let topics = Topics {
            request: t("request"),
            verdict: t("verdict"),
            error: t("error"),
            status: t("status"),
        };
        let (tx, seen) = mpsc::unbounded_channel();
        let tag = random_tag()?;
        let (verdicts, verdict_loop) =
            AsyncClient::new(options(target, &format!("edgeid-bench-sub-{tag}")), 64);
        let (requests, request_loop) =
            AsyncClient::new(options(target, &format!("edgeid-bench-req-{tag}")), 64);
        let drivers = vec![
            tokio::spawn(drive(verdict_loop, tx.clone())),
            tokio::spawn(drive(request_loop, tx)),
        ];
        let mut client = Self {
            requests,
            verdicts,
            seen,
            topics,
            drivers,
        };
        for (topic, qos) in [
            (&client.topics.verdict, QoS::AtLeastOnce),
            (&client.topics.error, QoS::AtLeastOnce),
            (&client.topics.status, QoS::AtLeastOnce),
        ] {
            client
                .verdicts
                .subscribe(topic.clone(), qos)
                .await
                .map_err(|e| DaemonBenchError::Mqtt(e.to_string()))?;
        }
        let mut acks = 0;
        let until = Instant::now() + Duration::from_secs(10);
        while acks < 3 {
            match client.next(until).await? {
                Some(Seen::SubAck) => acks += 1,
                Some(_) => {}
                None => {
                    return Err(DaemonBenchError::Mqtt(format!(
                        "no subscription acknowledgement from the broker at {}:{}",
                        target.host, target.port
                    )));
                }
            }
        }
        Ok(client)
    }

    /// The next event before `until` (None: timed out).
    async fn next(&mut self, until: Instant) -> Result<Option<Seen>, DaemonBenchError> {
        let wait = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, self.seen.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(DaemonBenchError::Mqtt("the client stopped".into())),
            Ok(Some(Seen::Failed(e))) => Err(DaemonBenchError::Mqtt(e)),
            Ok(Some(seen)) => Ok(Some(seen)),
        }
    }

    /// Waits for the daemon's retained `online` status: it has subscribed
    /// to requests by then.
    pub(super) async fn wait_online(
        &mut self,
        timeout: Duration,
        daemon_alive: &dyn Fn() -> bool,
    ) -> Result<(), DaemonBenchError> {
        let until = Instant::now() + timeout;
        loop {
            if !daemon_alive() {
                return Err(DaemonBenchError::DaemonStopped);
            }
            if Instant::now() >= until {
                return Err(DaemonBenchError::NotReady(timeout.as_secs()));
            }
            let step = (Instant::now() + Duration::from_millis(200)).min(until);
            if let Some(Seen::Message { topic, payload, .. }) = self.next(step).await?
                && topic == self.topics.status
                && payload == "online"
            {
                return Ok(());
            }
        }
    }

    pub(super) async fn request(
        &mut self,
        target: &Target,
        nonce: &str,
        timeout: Duration,
        marks: &Marks,
        daemon_alive: &dyn Fn() -> bool,
        published: &dyn Fn(Instant),
    ) -> Result<Sample, DaemonBenchError> {
        let mut body =
            serde_json::json!({"mode": "verify", "subject": target.subject, "nonce": nonce});
        if let Some(t) = target.timeout_ms {
            body["timeout_ms"] = t.into();
        }
        let body = body.to_string();
        let sent = Instant::now();
        self.requests
            .publish(self.topics.request.clone(), QoS::AtLeastOnce, false, body)
            .await
            .map_err(|e| DaemonBenchError::Mqtt(e.to_string()))?;
        published(sent);
        let until = sent + timeout;
        loop {
            if !daemon_alive() {
                return Err(DaemonBenchError::DaemonStopped);
            }
            let step = (Instant::now() + Duration::from_millis(200)).min(until);
            let Some(seen) = self.next(step).await? else {
                if Instant::now() >= until {
                    return Err(DaemonBenchError::NoVerdict {
                        nonce: nonce.to_owned(),
                        secs: timeout.as_secs(),
                    });
                }
                continue;
            };
            let Seen::Message {
                topic, payload, at, ..
            } = seen
            else {
                continue;
            };
            if topic == self.topics.error {
                let refusal: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
                if refusal["nonce"] == nonce {
                    return Err(DaemonBenchError::Refused {
                        nonce: nonce.to_owned(),
                        message: payload,
                    });
                }
                continue;
            }
            if topic != self.topics.verdict {
                continue;
            }
            // A late verdict for an earlier request is not this one.
            let carries_nonce = jws::decode_unverified(&payload)
                .is_ok_and(|(_, c)| c.nonce.as_deref() == Some(nonce));
            if !carries_nonce {
                continue;
            }
            let verified = jws::verify(
                &payload,
                &target.public_key,
                &target.kid,
                Some(nonce),
                unix_now(),
            )
            .map_err(|source| DaemonBenchError::BadVerdict {
                nonce: nonce.to_owned(),
                source,
            })?;
            // The sink reports a verdict after its disk write, which may
            // finish after the verdict has already arrived here.
            let mut mark = marks.take(&payload);
            let wait_until = Instant::now() + MARK_WAIT;
            while mark.is_none() && Instant::now() < wait_until {
                tokio::time::sleep(Duration::from_millis(1)).await;
                mark = marks.take(&payload);
            }
            let frame = mark.as_ref().and_then(|m| m.frame_captured_at);
            let claims = verified.claims;
            return Ok(Sample {
                nonce: nonce.to_owned(),
                seq: claims.seq,
                decision: claims.decision.as_str().to_owned(),
                reason: claims.reason.as_str().to_owned(),
                request_to_verdict_ms: ms(at, sent),
                frame_to_bus_ms: frame.map(|f| ms(at, f)),
                request_to_frame_ms: frame.map(|f| ms(f, sent)),
                frame_to_sink_ms: mark
                    .as_ref()
                    .and_then(|m| Some(ms(m.at_sink, m.frame_captured_at?))),
                pipeline_ms: None,
                sink_to_socket_ms: mark.as_ref().map(|m| ms(m.published, m.at_sink)),
                sink_to_disk_ms: mark.as_ref().map(|m| ms(m.queued, m.at_sink)),
                socket_to_subscriber_ms: mark.as_ref().map(|m| ms(at, m.published)),
            });
        }
    }

    pub(super) async fn close(self) {
        let _ = self.requests.disconnect().await;
        let _ = self.verdicts.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        for d in self.drivers {
            d.abort();
        }
    }
}

fn options(target: &Target, client_id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, target.host.clone(), target.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_start(true);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    o.set_network_options(network);
    o
}

/// Polls one connection, forwarding what the bench needs, stamped on arrival.
async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Seen>) {
    loop {
        let seen = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => Seen::Message {
                at: Instant::now(),
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: String::from_utf8_lossy(&p.payload).into_owned(),
            },
            Ok(Event::Incoming(Packet::SubAck(_))) => Seen::SubAck,
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Seen::Failed(e.to_string()));
                return;
            }
        };
        if tx.send(seen).is_err() {
            return;
        }
    }
}
