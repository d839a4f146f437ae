//! Decisions: turning evidence into accept / reject with a reason, a
//! signed verdict and an audit record. One path for every entry point.
//!
//! - `attempt`: the [`Authenticator`], the one decision path (lockout,
//!   audit, verdict), and `matcher`: its rules that need the embedder
//!   (which subjects can be compared, judging the evidence).
//! - `request`, `evidence`: what an entry point hands it.
//! - `verify`: choosing the face and scoring it 1:1 or 1:N.
//! - `threshold`: which similarity threshold applies and where it came from.
//! - `gallery`: templates in memory, 1:1 / 1:N scoring.
//! - `lockout`: the `[lockout]` section; too many failures → `locked_out`.
//! - `liveness`: the `[liveness]` section and the per-request (or walk-up
//!   track) accumulator that must see a head, not a picture, before scoring.
//! - `pad`: the passive presentation-attack rule for photos.
//! - `issue`: sequence number, signature and audit record in one transaction.
//! - `modalities`: the `face` / `voice` / `face+voice` / `face|voice`
//!   policy and what a request may ask of it.
//! - `voice`: the voice factor (voiceprint, replay rule, templates), and
//!   `factors`: face and voice under a policy, fused when both are needed.
//! - `enrolment`: accepted samples → template rows.
//! - `synthetic`: stand-in templates (tests and the gallery benchmark only).

pub mod attempt;
pub mod enrolment;
pub mod evidence;
pub mod factors;
pub mod gallery;
pub mod issue;
pub mod liveness;
pub mod lockout;
pub mod matcher;
pub mod modalities;
pub mod pad;
pub mod request;
/// Stand-in templates for the gallery's tests and benchmark.
#[cfg(any(test, feature = "eval"))]
pub mod synthetic;
pub mod threshold;
pub mod verify;
pub mod voice;

pub use attempt::{AttemptError, Authenticator, Judged, Policy};
pub use evidence::{
    Capture, Ended, Evidence, Liveness, LivenessCheck, LivenessVerdict, Provenance, Sample, Seen,
};
pub use gallery::{Gallery, GalleryError, GalleryLoad};
pub use issue::{IssueError, IssueRequest, Issued};
pub use matcher::{Matcher, Uncomparable};
pub use modalities::{DecisionConfig, Modalities, ModalitiesError};
pub use request::{Origin, Request};
pub use threshold::{OperatingPoint, Threshold};
pub use verify::Outcome;
// The verdict's vocabulary, used throughout the decision path.
pub use crate::verdict::{Decision, Mode, Reason};
