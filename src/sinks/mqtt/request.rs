//! Requests from door controllers on `<prefix>/<device>/request`:
//! `{"mode": "verify"|"identify", "subject": "...", "nonce": "...", "timeout_ms": 2000}`.
//!
//! The payload is untrusted: its size is checked before parsing, unknown
//! fields are refused, the nonce is required (it binds the verdict to this
//! request) and a nonce seen recently is refused as a replay.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::api::{ApiError, check_nonce, check_subject};
use crate::decision::Mode;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub mode: Mode,
    #[serde(default)]
    pub subject: Option<String>,
    pub nonce: String,
    /// 0 or absent: the daemon's default.
    #[serde(default)]
    pub timeout_ms: u32,
}

/// Parses and checks one request payload.
pub fn parse(payload: &[u8], max_bytes: usize) -> Result<Request, ApiError> {
    if payload.len() > max_bytes {
        return Err(ApiError::InvalidArgument(format!(
            "request of {} bytes refused: the limit is {max_bytes}",
            payload.len()
        )));
    }
    let req: Request = serde_json::from_slice(payload)
        .map_err(|e| ApiError::InvalidArgument(format!("malformed request: {e}")))?;
    check_nonce(&req.nonce)?;
    match (req.mode, &req.subject) {
        (Mode::Verify, Some(s)) => check_subject(s)?,
        (Mode::Verify, None) => {
            return Err(ApiError::InvalidArgument(
                "a verify request needs a subject".into(),
            ));
        }
        (Mode::Identify, Some(_)) => {
            return Err(ApiError::InvalidArgument(
                "an identify request takes no subject".into(),
            ));
        }
        (Mode::Identify, None) => {}
    }
    Ok(req)
}

/// Nonces seen within `ttl`, bounded in number: a replay inside the window
/// is refused; outside it the verdict it earned has long expired anyway.
pub struct ReplayGuard {
    ttl: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl ReplayGuard {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `nonce`; an error if it was already seen within the window.
    pub fn check(&mut self, nonce: &str, now: Instant) -> Result<(), ApiError> {
        while let Some((t, n)) = self.order.front() {
            if now.duration_since(*t) < self.ttl && self.order.len() < self.capacity {
                break;
            }
            if self.seen.get(n) == Some(t) {
                self.seen.remove(n);
            }
            self.order.pop_front();
        }
        if self.seen.contains_key(nonce) {
            return Err(ApiError::InvalidArgument(format!(
                "nonce {nonce:?} was already used: each request needs a fresh nonce"
            )));
        }
        self.seen.insert(nonce.to_owned(), now);
        self.order.push_back((now, nonce.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_schema_checked() {
        let ok = parse(
            br#"{"mode":"verify","subject":"alice","nonce":"n-1"}"#,
            1024,
        )
        .expect("valid");
        assert_eq!(
            (ok.mode, ok.subject.as_deref(), ok.nonce.as_str()),
            (Mode::Verify, Some("alice"), "n-1")
        );
        assert!(
            parse(
                br#"{"mode":"identify","nonce":"n-2","timeout_ms":500}"#,
                1024
            )
            .is_ok()
        );
        for bad in [
            &br#"{"mode":"verify","subject":"alice"}"#[..],
            br#"{"mode":"verify","nonce":"n"}"#,
            br#"{"mode":"identify","subject":"a","nonce":"n"}"#,
            br#"{"mode":"delete","nonce":"n"}"#,
            br#"{"mode":"identify","nonce":"n","admin":true}"#,
            br#"{"mode":"identify","nonce":""}"#,
            br#"{"mode":"identify","nonce":"has space"}"#,
            br#"{"mode":"verify","subject":"../etc","nonce":"n"}"#,
            b"\xff\xfe garbage",
            b"",
        ] {
            assert!(
                parse(bad, 1024).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!(r#"{{"mode":"identify","nonce":"{}"}}"#, "x".repeat(2000));
        assert!(
            parse(big.as_bytes(), 1024)
                .unwrap_err()
                .to_string()
                .contains("limit is 1024")
        );
    }

    #[test]
    fn replays_are_refused_within_the_window_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut g = ReplayGuard::new(Duration::from_secs(60), 3);
        g.check("a", t0).expect("first use");
        assert!(g.check("a", t0 + Duration::from_secs(1)).is_err());
        g.check("b", t0).expect("b");
        g.check("c", t0).expect("c");
        g.check("d", t0).expect("d evicts the oldest");
        assert!(g.seen.len() <= 3);
        g.check("x", t0 + Duration::from_secs(120)).expect("x");
        assert!(g.check("x", t0 + Duration::from_secs(121)).is_err());
    }
}
