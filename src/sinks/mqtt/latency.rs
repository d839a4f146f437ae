//! Frame-to-bus latency: when each verdict's frame was captured, reached
//! the sink, was queued on disk and was written to the socket. Logged per
//! verdict (`frame_to_bus_ms`) and handed to an optional observer
//! (`edgeid bench --daemon`, through the daemon's `RunHooks`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::api::{Origin, VerdictOut};

/// Told the moments each verdict passed on its way to a bus, on the
/// daemon's own monotonic clock (`edgeid bench --daemon` runs the daemon
/// in-process and lines these up with what its subscriber receives).
/// Called on the sink's task after the socket write: keep it short.
pub trait LatencyObserver: Send + Sync {
    fn verdict_published(&self, mark: &PublishMark);
}

/// One verdict's way out through the MQTT sink.
#[derive(Debug, Clone)]
pub struct PublishMark {
    /// The compact JWS, as published.
    pub verdict: String,
    pub origin: Origin,
    /// When the frame the decision used was captured, or for a voice
    /// decision the probe's last audio (None: neither, e.g. a timeout).
    pub frame_captured_at: Option<Instant>,
    /// The sink took the verdict from the engine.
    pub at_sink: Instant,
    /// The verdict was in the on-disk queue.
    pub queued: Instant,
    /// The PUBLISH was written to the broker's socket.
    pub published: Instant,
}

/// Marks for verdicts never published (expired in the queue) are dropped
/// oldest first beyond this.
const MAX_MARKS: usize = 1024;

struct Mark {
    /// Kept only for an observer.
    verdict: Option<String>,
    origin: Origin,
    frame_captured_at: Option<Instant>,
    at_sink: Instant,
    queued: Instant,
}

pub(super) struct Latency {
    observer: Option<Arc<dyn LatencyObserver>>,
    /// Queue id → its mark, until the verdict is first published.
    marks: BTreeMap<i64, Mark>,
}

impl Latency {
    pub fn new(observer: Option<Arc<dyn LatencyObserver>>) -> Self {
        Self {
            observer,
            marks: BTreeMap::new(),
        }
    }

    /// Remembers a verdict just queued as `id`.
    pub fn queued(&mut self, id: i64, v: &VerdictOut, at_sink: Instant, queued: Instant) {
        if v.frame_captured_at.is_none() && self.observer.is_none() {
            return;
        }
        if self.marks.len() >= MAX_MARKS {
            self.marks.pop_first();
        }
        self.marks.insert(
            id,
            Mark {
                verdict: self.observer.as_ref().map(|_| v.verdict.clone()),
                origin: v.origin,
                frame_captured_at: v.frame_captured_at,
                at_sink,
                queued,
            },
        );
    }

    /// The PUBLISH for queue id `id` was written to the socket at `at`.
    pub fn published(&mut self, id: i64, at: Instant) {
        let Some(mark) = self.marks.remove(&id) else {
            return;
        };
        if let Some(t) = mark.frame_captured_at {
            let ms = at.saturating_duration_since(t).as_secs_f64() * 1e3;
            tracing::info!(
                queue_id = id,
                frame_to_bus_ms = format!("{ms:.2}"),
                "MQTT: verdict published"
            );
        }
        if let (Some(observer), Some(verdict)) = (&self.observer, mark.verdict) {
            observer.verdict_published(&PublishMark {
                verdict,
                origin: mark.origin,
                frame_captured_at: mark.frame_captured_at,
                at_sink: mark.at_sink,
                queued: mark.queued,
                published: at,
            });
        }
    }
}
