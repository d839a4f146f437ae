//! One authentication attempt, from evidence to a signed, audited verdict.
//!
//! Both entry points use this path and only gather evidence: `edgeid
//! verify` / `identify` read photo files, the daemon watches the camera
//! with liveness. The rules live here and in [`super::matcher`] once, in
//! this order:
//!
//! 1. [`Authenticator::locked_out`], before anything else (the CLI answers
//!    it without loading a model; unknown subjects lock out like anyone,
//!    so lockout tells nothing about who is enrolled).
//! 2. [`Matcher::precheck`] notes a claim that cannot be compared (tampered
//!    templates, another embedder's only, not enrolled); the evidence is
//!    gathered all the same.
//! 3. [`Matcher::judge`]: a presentation attack (liveness or passive PAD),
//!    then an attempt cut short (shutdown, deadline: with liveness in force
//!    a usable face that never showed itself live is `timeout`), then a
//!    claim that cannot be compared answered `no_match` (the audit keeps
//!    the cause), then the best usable face scored 1:1 or 1:N against the
//!    threshold.
//! 4. [`Authenticator::finish`]: the lockout count for a 1:1 attempt, the
//!    audit detail (origin, 1:N opt-in), then the verdict and its audit
//!    record in one transaction.

use serde_json::{Value, json};

use super::enrolment::FACE;
use super::evidence::Provenance;
use super::gallery::GalleryError;
use super::issue::{IssueError, IssueRequest, Issued, issue};
use super::lockout::{self, LockState, Lockout, LockoutConfig};
use super::matcher::Matcher;
use super::request::Request;
use super::threshold::DEFAULT_OPERATING_POINT;
use super::verify::Outcome;
use crate::infer::ModelSpec;
use crate::store::audit::{self, Event};
use crate::store::{KeyRing, Store, StoreError, unix_now_ms};
use crate::verdict::{Mode, Reason};

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(
        "the manifest has no {DEFAULT_OPERATING_POINT} threshold for {model}: set daemon.threshold or pass --threshold"
    )]
    NoThreshold { model: String },
    #[error("the threshold {0} is not a similarity in [-1, 1]")]
    BadThreshold(f32),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not open the gallery")]
    Gallery(#[from] GalleryError),
    #[error("could not issue the verdict")]
    Issue(#[from] IssueError),
}

/// The settings an attempt is judged under.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A fixed similarity threshold; `None` takes the manifest's at the
    /// default operating point.
    pub threshold: Option<f32>,
    /// Where a fixed threshold came from, for the audit record
    /// (`--threshold`, `daemon.threshold`).
    pub threshold_source: &'static str,
    pub lockout: LockoutConfig,
    pub verdict_lifetime_secs: u64,
    /// 1:N is opt-in; recorded with every identify verdict.
    pub identify_enabled: bool,
}

/// The decision path's rules that need no model: lockout, the audit
/// record and the verdict. [`Authenticator::matcher`] adds the embedder's.
#[derive(Debug, Clone)]
pub struct Authenticator {
    policy: Policy,
    lockout: Lockout,
}

/// An outcome and the audit detail that explains it (an object).
#[derive(Debug, Clone)]
pub struct Judged {
    pub outcome: Outcome,
    pub detail: Value,
    /// The factors the decision used (the verdict's `modalities`).
    pub modalities: Vec<&'static str>,
}

impl Judged {
    pub(super) fn reject(req: &Request<'_>, reason: Reason, detail: Value) -> Self {
        Self {
            outcome: Outcome::reject(req.mode, reason, req.subject),
            detail,
            modalities: vec![FACE],
        }
    }
}

impl Authenticator {
    pub fn new(policy: Policy) -> Result<Self, AttemptError> {
        if let Some(t) = policy.threshold
            && !(-1.0..=1.0).contains(&t)
        {
            return Err(AttemptError::BadThreshold(t));
        }
        Ok(Self {
            lockout: Lockout::from(policy.lockout),
            policy,
        })
    }

    /// The embedder `spec` with the policy's threshold, or the manifest's
    /// at the default operating point.
    pub fn matcher(&self, spec: &ModelSpec) -> Result<Matcher, AttemptError> {
        let given = self
            .policy
            .threshold
            .map(|t| (t, self.policy.threshold_source));
        Matcher::new(spec, given)
    }

    /// Step 1, first rule: a claimed subject with too many recent failures
    /// is refused before any model runs.
    pub fn locked_out(
        &self,
        store: &Store,
        req: &Request<'_>,
    ) -> Result<Option<Judged>, AttemptError> {
        let Some(subject) = req.subject else {
            return Ok(None);
        };
        match self.lockout.check(store, subject, unix_now_ms())? {
            LockState::Locked { until_ms, failures } => {
                let detail = json!({"locked_until_ms": until_ms, "recent_failures": failures});
                Ok(Some(Judged::reject(req, Reason::LockedOut, detail)))
            }
            LockState::Open { .. } => Ok(None),
        }
    }

    /// Counts the attempt toward lockout, then signs and audits the verdict;
    /// `provenance` is how the evidence was obtained ([`Provenance::NONE`]
    /// when none was gathered).
    pub fn finish(
        &self,
        store: &mut Store,
        keys: &KeyRing,
        req: &Request<'_>,
        judged: Judged,
        provenance: Provenance,
    ) -> Result<Issued, AttemptError> {
        let Judged {
            outcome,
            mut detail,
            modalities,
        } = judged;
        if let (Mode::Verify, Some(subject)) = (outcome.mode, outcome.subject.as_deref())
            && let Some(accepted) = lockout::attempt(outcome.reason)
            && let LockState::Locked { until_ms, failures } =
                self.lockout
                    .record(store, subject, accepted, unix_now_ms())?
        {
            audit::append(
                store,
                &Event::Lockout {
                    subject,
                    locked_until_ms: until_ms,
                    failures,
                },
            )?;
        }
        detail["origin"] = json!(req.origin);
        if outcome.mode == Mode::Identify {
            detail["identify_enabled"] = json!(self.policy.identify_enabled);
        }
        let issued = issue(
            store,
            keys,
            IssueRequest {
                outcome: &outcome,
                nonce: req.nonce,
                modalities: &modalities,
                provenance,
                lifetime_secs: self.policy.verdict_lifetime_secs,
                detail,
            },
        )?;
        tracing::info!(
            seq = issued.claims.seq,
            decision = issued.claims.decision.as_str(),
            reason = %issued.claims.reason,
            origin = ?req.origin,
            "verdict issued"
        );
        Ok(issued)
    }
}

#[cfg(test)]
mod tests;
