//! Decisions: turning scores into accept / reject with a reason.
//!
//! - `reason`: the fixed list of reason codes verdicts carry.
//! - `threshold`: which similarity threshold applies and where it came from.
//! - `gallery`: templates in memory, 1:1 / 1:N scoring (`gallery_bench` times it).
//! - `verify`: the decision for a set of frames, with scores for the audit.
//! - `lockout`: too many failures → `locked_out` for a while.
//! - `liveness`: the `[liveness]` policy and the per-request (or walk-up
//!   track) accumulator that must see a head, not a picture, before scoring.
//! - `enrolment`: accepted samples → template rows.

pub mod enrolment;
pub mod gallery;
pub mod gallery_bench;
pub mod liveness;
pub mod lockout;
pub mod reason;
pub mod threshold;
pub mod verify;

pub use gallery::{Gallery, GalleryError, GalleryLoad};
pub use gallery_bench::{GalleryBenchReport, bench_gallery};
pub use reason::Reason;
pub use threshold::{OperatingPoint, Threshold};
pub use verify::{Decision, Mode, Outcome};
