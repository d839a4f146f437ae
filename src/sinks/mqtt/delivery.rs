//! Verdicts out: each is written to the on-disk queue and published in
//! order at QoS 1 with MQTT 5 message expiry; it leaves the queue only on
//! PUBACK. When nothing older is waiting and the window has room, a new
//! verdict is handed to the client before its disk write, so the socket
//! write (on the link's task) overlaps the fsync instead of following it;
//! otherwise it is published from the queue.

use std::time::Instant;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;

use super::link::Link;
use super::sink::Sink;
use crate::api::VerdictOut;
use crate::store::unix_now;

/// Verdicts handed to the client and not yet acknowledged; below the
/// receive maximum brokers grant (Mosquitto: 20), so rumqttc never stalls.
pub(super) const WINDOW: usize = 16;

impl Sink {
    pub(super) async fn on_verdict(&mut self, link: &mut Link, v: VerdictOut) {
        let at_sink = Instant::now();
        let direct = link.connected
            && link.caught_up
            && link.in_flight() < WINDOW
            && self.publish(link, &v.verdict, v.exp - unix_now());
        if direct {
            // The link's task was just woken on this worker; let it write
            // the PUBLISH before this task blocks on the disk write.
            tokio::task::yield_now().await;
        } else {
            link.caught_up = false;
        }
        match self.outbox.push(&v.verdict) {
            Ok(id) => {
                if direct {
                    link.cursor = id;
                    link.sent.push_back(Some(id));
                }
                self.latency.queued(id, &v, at_sink, Instant::now());
            }
            Err(e) => {
                if direct {
                    // Out already; only a connection loss before PUBACK loses it.
                    link.sent.push_back(None);
                    tracing::error!(error = %e, "MQTT: cannot queue a verdict on disk; published without a copy on disk");
                } else {
                    tracing::error!(error = %e, "MQTT: cannot queue a verdict on disk; it is lost");
                }
            }
        }
        if !direct {
            self.pump(link);
        }
    }

    /// Hands queued verdicts to the client, oldest first, within the window.
    pub(super) fn pump(&mut self, link: &mut Link) {
        if !link.connected {
            return;
        }
        let room = WINDOW.saturating_sub(link.in_flight());
        if room == 0 {
            link.caught_up = false;
            return;
        }
        let pending = match self.outbox.after(link.cursor, room, unix_now()) {
            Ok(p) => p,
            Err(e) => {
                link.caught_up = false;
                tracing::error!(error = %e, "MQTT: cannot read the verdict queue");
                return;
            }
        };
        // A full batch may leave more behind it.
        let drained = pending.len() < room;
        for p in pending {
            if !self.publish(link, &p.verdict, i64::from(p.remaining_secs)) {
                link.caught_up = false;
                return;
            }
            link.cursor = p.id;
            link.sent.push_back(Some(p.id));
        }
        link.caught_up = drained;
    }

    /// One verdict to the client; false when it is expired or the client is busy.
    fn publish(&self, link: &Link, verdict: &str, remaining_secs: i64) -> bool {
        let Ok(remaining_secs) = u32::try_from(remaining_secs) else {
            return false;
        };
        if remaining_secs == 0 {
            return false;
        }
        let props = PublishProperties {
            message_expiry_interval: Some(remaining_secs),
            content_type: Some("application/jose".into()),
            ..Default::default()
        };
        match link.client.try_publish_with_properties(
            self.topics.verdict.clone(),
            QoS::AtLeastOnce,
            false,
            verdict.to_owned(),
            props,
        ) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "MQTT: client busy; the verdict stays queued");
                false
            }
        }
    }
}
