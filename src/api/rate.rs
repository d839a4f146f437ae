//! Request rate limits: a token bucket per caller (a D-Bus uid, or the
//! MQTT request topic as a whole), so one kiosk app or one publisher
//! cannot flood the engine, the audit log and the disk with signed
//! verdicts, or hold the camera queue, while others still get served.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ApiError;

/// Buckets kept at most; the fullest (idle) ones are forgotten first, and
/// a forgotten caller starts with a full bucket, which is the same state.
const MAX_CALLERS: usize = 4096;

pub struct RateLimiter<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Eq + Hash + Clone + std::fmt::Debug> RateLimiter<K> {
    /// Up to `per_minute` requests a minute per caller, in bursts of as
    /// many.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `caller`, or says how long to wait.
    pub fn admit(&self, caller: &K, now: Instant) -> Result<(), ApiError> {
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        // A poisoned lock only means another thread panicked mid-update of
        // plain numbers: the map is still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            buckets.retain(|_, b| refill(*b, now, per_sec, capacity).tokens < capacity);
        }
        let bucket = buckets.entry(caller.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        *bucket = refill(*bucket, now, per_sec, capacity);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec);
        tracing::warn!(
            ?caller,
            per_minute = self.per_minute,
            "request over the rate limit"
        );
        Err(ApiError::Busy(format!(
            "rate limit: at most {} requests a minute; try again in {:.1} s",
            self.per_minute,
            wait.as_secs_f64()
        )))
    }
}

fn refill(b: Bucket, now: Instant, per_sec: f64, capacity: f64) -> Bucket {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + elapsed * per_sec).min(capacity),
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate_per_caller() {
        let limit = RateLimiter::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limit.admit(&1000u32, t0).is_ok());
        }
        let refused = limit
            .admit(&1000, t0)
            .expect_err("61st in the same instant");
        assert!(
            refused.to_string().contains("try again in 1.0 s"),
            "{refused}"
        );
        // Another caller is not affected.
        assert!(limit.admit(&1001, t0).is_ok());
        // One token a second comes back.
        assert!(limit.admit(&1000, t0 + Duration::from_millis(999)).is_err());
        assert!(limit.admit(&1000, t0 + Duration::from_millis(2000)).is_ok());
    }

    #[test]
    fn many_callers_do_not_grow_the_map_without_bound() {
        let limit = RateLimiter::new(10);
        let t0 = Instant::now();
        for uid in 0..(MAX_CALLERS as u32 * 2) {
            assert!(limit.admit(&uid, t0).is_ok());
        }
        let later = t0 + Duration::from_secs(120);
        assert!(limit.admit(&u32::MAX, later).is_ok());
        let kept = limit.buckets.lock().map(|b| b.len()).unwrap_or(0);
        assert!(kept <= MAX_CALLERS + 1, "{kept}");
    }
}
