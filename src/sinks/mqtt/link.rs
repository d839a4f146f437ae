//! One broker connection: the rumqttc event loop, driven on its own task so
//! that socket writes never wait for the sink's disk writes, and the
//! bookkeeping of what was handed to it. Rebuilt on every reconnect.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::mpsc;

use super::error::MqttError;

/// Requests the client buffers before `try_publish` reports it busy.
const CLIENT_CAPACITY: usize = 64;

/// What the event loop produced, stamped when it did.
pub(super) enum Polled {
    Event(Box<Event>, Instant),
    Failed(MqttError),
}

pub(super) struct Link {
    pub client: AsyncClient,
    events: mpsc::UnboundedReceiver<Polled>,
    driver: tokio::task::JoinHandle<()>,
    pub connected: bool,
    /// Last queue id handed to the client.
    pub cursor: i64,
    /// Every queued verdict up to `cursor` has been handed to the client,
    /// so a new verdict may go out at once, ahead of its disk write.
    pub caught_up: bool,
    /// One entry per publish request, in order: the queue id, or None for
    /// status / error messages. Matched to packet ids by Outgoing events.
    pub sent: VecDeque<Option<i64>>,
    pub by_pkid: HashMap<u16, i64>,
}

impl Link {
    pub fn open(options: MqttOptions) -> Self {
        let (client, eventloop) = AsyncClient::new(options, CLIENT_CAPACITY);
        let (tx, events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(drive(eventloop, tx));
        Self {
            client,
            events,
            driver,
            connected: false,
            cursor: 0,
            caught_up: false,
            sent: VecDeque::new(),
            by_pkid: HashMap::new(),
        }
    }

    /// Verdicts handed to the client and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.sent.iter().filter(|s| s.is_some()).count() + self.by_pkid.len()
    }

    /// The next event; `Failed` once the connection is gone.
    pub async fn next(&mut self) -> Polled {
        self.events
            .recv()
            .await
            .unwrap_or(Polled::Failed(MqttError::EventLoopStopped))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Polls the event loop until the connection fails (the sink then builds a
/// new link after a backoff) or the link is dropped.
async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Polled>) {
    loop {
        let polled = match eventloop.poll().await {
            Ok(event) => Polled::Event(Box::new(event), Instant::now()),
            Err(e) => {
                let _ = tx.send(Polled::Failed(e.into()));
                return;
            }
        };
        if tx.send(polled).is_err() {
            return;
        }
    }
}
