//! The engine's request port: what the sinks (D-Bus, MQTT) may ask of the
//! engine and what they get back. The sinks submit [`Job`]s through an
//! [`EngineHandle`] and translate [`ApiError`]s into their wire forms; the
//! daemon's engine thread serves the jobs and knows nothing of buses.
//!
//! It sits between the decision layer and the sinks, so that neither the
//! sinks nor the engine need to import the other.
//!
//! - `error`: [`ApiError`], one variant per answer a caller can act on.
//! - `job`: jobs, verdicts and events in flight, the engine's fixed facts.
//! - `handle`: [`EngineHandle`]: argument checks, the bounded queue, waiting.
//! - `replay`: [`ReplayGuard`], one verdict per nonce on every bus.
//! - `rate`: [`RateLimiter`], requests per minute per caller.

mod error;
mod handle;
mod job;
mod rate;
mod replay;

/// Where a request came from; the decision path records it.
pub use crate::decision::Origin;
pub use error::ApiError;
pub use handle::{EngineHandle, Limits, MAX_NONCE_LEN, check_nonce, check_subject};
pub use job::{Admin, ChallengeHint, EngineInfo, EnrollEvent, Job, Reply, VerdictOut};
pub use rate::RateLimiter;
pub use replay::{REPLAY_CAPACITY, REPLAY_MARGIN, ReplayGuard};
