//! The replay guard for every bus: a request nonce is good for one verdict.
//!
//! A nonce is remembered for [`ReplayGuard::window`]: the longest a request
//! may wait for the camera, plus the verdict's lifetime, plus a margin for
//! clocks and networks. A controller that follows docs/verdict.md (accept
//! one verdict per nonce, only while `exp` has not passed, and forget a
//! pending nonce after `max_timeout_ms` + `verdict_lifetime_secs`) can
//! therefore never be handed a second verdict for a nonce it still holds.
//! When the memory is full of nonces still in their window, new requests
//! are refused as `Busy` rather than forgetting one early: failing closed
//! beats reopening a replay.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ApiError;

/// The margin past `max_timeout + verdict lifetime`.
pub const REPLAY_MARGIN: Duration = Duration::from_secs(60);

/// Nonces remembered at most (about 100 bytes each).
pub const REPLAY_CAPACITY: usize = 100_000;

pub struct ReplayGuard {
    window: Duration,
    capacity: usize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    at: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl ReplayGuard {
    /// Remembers nonces for `max_timeout + verdict_lifetime + REPLAY_MARGIN`.
    pub fn new(max_timeout: Duration, verdict_lifetime: Duration, capacity: usize) -> Self {
        Self {
            window: max_timeout + verdict_lifetime + REPLAY_MARGIN,
            capacity,
            seen: Mutex::new(Seen::default()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Spends `nonce`: an error if it was used within the window, or if the
    /// memory is full of nonces still inside theirs.
    pub fn spend(&self, nonce: &str, now: Instant) -> Result<(), ApiError> {
        // A poisoned lock only means another request panicked mid-check;
        // the map itself is always consistent between statements.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((t, n)) = seen.order.front() {
            if now.saturating_duration_since(*t) < self.window {
                break;
            }
            let (t, n) = (*t, n.clone());
            if seen.at.get(&n) == Some(&t) {
                seen.at.remove(&n);
            }
            seen.order.pop_front();
        }
        if seen.at.contains_key(nonce) {
            return Err(ApiError::InvalidArgument(format!(
                // Checked printable and short before it gets here.
                "nonce {nonce:?} was already used: each request needs a fresh nonce"
            )));
        }
        if seen.order.len() >= self.capacity {
            return Err(ApiError::Busy(
                "too many recent requests to remember their nonces: try again shortly".into(),
            ));
        }
        seen.at.insert(nonce.to_owned(), now);
        seen.order.push_back((now, nonce.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(capacity: usize) -> ReplayGuard {
        ReplayGuard::new(Duration::from_secs(30), Duration::from_secs(30), capacity)
    }

    #[test]
    fn a_nonce_is_good_for_one_request_within_the_window() {
        let g = guard(10);
        let t0 = Instant::now();
        assert_eq!(g.window(), Duration::from_secs(120));
        g.spend("n-1", t0).expect("first use");
        // The ~92 s replay of the hardening report is now refused.
        let replay = g.spend("n-1", t0 + Duration::from_secs(92));
        assert!(
            matches!(replay, Err(ApiError::InvalidArgument(_))),
            "{replay:?}"
        );
        // Past the window the nonce may come again: any verdict it earned
        // before has expired and its controller has forgotten it.
        g.spend("n-1", t0 + Duration::from_secs(121))
            .expect("after the window");
    }

    #[test]
    fn a_full_memory_refuses_new_requests_instead_of_forgetting_nonces() {
        let g = guard(3);
        let t0 = Instant::now();
        for n in ["a", "b", "c"] {
            g.spend(n, t0).expect("room");
        }
        assert!(matches!(g.spend("d", t0), Err(ApiError::Busy(_))));
        // "a" is still remembered: the flood did not evict it.
        assert!(matches!(
            g.spend("a", t0),
            Err(ApiError::InvalidArgument(_))
        ));
        g.spend("d", t0 + Duration::from_secs(121))
            .expect("the old ones aged out");
    }
}
