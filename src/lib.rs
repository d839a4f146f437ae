//! edgeid: on-device biometric authentication.
//!
//! Data flows one way, and the modules follow it:
//! `sources` (frames) → `vision` stages → `pipeline` (evidence for one
//! frame) → `decision` (accept / reject with a reason) → sinks.
//! `infer` runs the models for the stages; `eval` measures the whole (with
//! the default `eval` feature only: a device build leaves it out).

pub mod api;
pub mod build_info;
pub mod config;
pub mod daemon;
pub mod decision;
#[cfg(feature = "eval")]
pub mod eval;
pub mod infer;
pub mod pipeline;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod untrusted;
pub mod verdict;
pub mod vision;
pub mod voice;
