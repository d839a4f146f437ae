//! The daemon's decision state: the store, keys, face pipeline and an
//! in-memory gallery opened once (and again after enroll / revoke), so a
//! request costs one pipeline run and one scoring pass, not a gallery open.
//!
//! The rules match `edgeid verify` / `identify`: lockout, unknown subject,
//! tampered templates and other-model templates are answered before any
//! scoring; every outcome becomes exactly one signed, audited verdict.

use std::time::Instant;

use crate::config::Config;
use crate::decision::liveness::{Figures, LivenessMode};
use crate::decision::lockout::{self, LockState, Lockout};
use crate::decision::threshold::DEFAULT_OPERATING_POINT;
use crate::decision::verify as rules;
use crate::decision::{Gallery, Mode, OperatingPoint, Outcome, Reason, Threshold};
use crate::pipeline::{FacePipeline, FrameAnalysis};
use crate::store::audit::{self, Event};
use crate::store::templates;
use crate::store::{KeyRing, Store, unix_now_ms};
use crate::verdict::{IssueRequest, issue};

use super::DaemonError;
use super::api::{ApiError, Origin, VerdictOut};

pub use crate::decision::enrolment::FACE;

pub struct Decider {
    pub store: Store,
    pub keys: KeyRing,
    pub pipeline: FacePipeline,
    gallery: Gallery,
    tampered: Vec<crate::decision::gallery::TamperedRow>,
    threshold: Threshold,
    lockout: Lockout,
    lifetime_secs: u64,
    identify_enabled: bool,
}

/// An outcome and the audit detail that explains it.
pub struct Decided {
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}

impl Decider {
    pub fn new(
        store: Store,
        keys: KeyRing,
        pipeline: FacePipeline,
        config: &Config,
    ) -> Result<Self, DaemonError> {
        let spec = pipeline.embedder_spec();
        let threshold = Threshold::resolve(config.daemon.threshold, spec, OperatingPoint(DEFAULT_OPERATING_POINT))
            .ok_or_else(|| DaemonError::Setup(format!("the manifest has no {DEFAULT_OPERATING_POINT} threshold for {}: set daemon.threshold", spec.id)))?;
        let load = Gallery::open(&store, &keys.dek, FACE, &spec.id, None)
            .map_err(|e| DaemonError::Setup(e.to_string()))?;
        let mut this = Self {
            store,
            keys,
            pipeline,
            gallery: load.gallery,
            tampered: Vec::new(),
            threshold,
            lockout: Lockout::from(config.lockout),
            lifetime_secs: config.verdict_lifetime_secs,
            identify_enabled: config.identify_enabled,
        };
        this.note_load(load.tampered, load.other_models.keys().cloned().collect())?;
        Ok(this)
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// The similarity that makes a match (liveness tracks use it to tell
    /// when the face in view became someone else's).
    pub fn match_threshold(&self) -> f32 {
        self.threshold.value
    }

    /// Reopens the gallery after the templates changed.
    pub fn reload(&mut self) -> Result<(), ApiError> {
        let spec = self.pipeline.embedder_spec();
        let load =
            Gallery::open(&self.store, &self.keys.dek, FACE, &spec.id, None).map_err(internal)?;
        self.gallery = load.gallery;
        self.note_load(load.tampered, load.other_models.keys().cloned().collect())
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    fn note_load(
        &mut self,
        tampered: Vec<crate::decision::gallery::TamperedRow>,
        stale: Vec<String>,
    ) -> Result<(), DaemonError> {
        for t in &tampered {
            audit::append(
                &mut self.store,
                &Event {
                    event: "store_tampered",
                    subject: Some(&t.subject),
                    decision: None,
                    reason: Some(Reason::StoreTampered.as_str()),
                    detail: serde_json::json!({"template_row": t.row, "found_by": "daemon gallery open"}),
                },
            )
            .map_err(|e| DaemonError::Setup(e.to_string()))?;
        }
        if !stale.is_empty() {
            tracing::warn!(subjects = ?stale, "subjects enrolled with another face model are not searched: re-enrol them");
        }
        self.tampered = tampered;
        Ok(())
    }

    /// What can be answered before looking at the camera.
    pub fn precheck(&mut self, subject: Option<&str>) -> Result<Option<Decided>, ApiError> {
        let Some(subject) = subject else {
            return Ok(None);
        };
        if let LockState::Locked { until_ms, failures } = self
            .lockout
            .check(&self.store, subject, unix_now_ms())
            .map_err(internal)?
        {
            return Ok(Some(Decided {
                outcome: Outcome::reject(Mode::Verify, Reason::LockedOut, Some(subject)),
                detail: serde_json::json!({"locked_until_ms": until_ms, "recent_failures": failures}),
            }));
        }
        let reason = if self.tampered.iter().any(|t| t.subject == subject) {
            Some(Reason::StoreTampered)
        } else if self.gallery.contains(subject) {
            None
        } else if templates::subject_exists(&self.store, subject).map_err(internal)? {
            Some(Reason::ModelMismatch)
        } else {
            Some(Reason::UnknownSubject)
        };
        Ok(reason.map(|r| Decided {
            outcome: Outcome::reject(Mode::Verify, r, Some(subject)),
            detail: serde_json::json!({}),
        }))
    }

    /// Scores one analysed frame that has a usable face.
    pub fn score(&self, mode: Mode, subject: Option<&str>, analysis: FrameAnalysis) -> Decided {
        let frames = [analysis];
        let outcome = match (mode, subject) {
            (Mode::Verify, Some(s)) => {
                rules::decide_verify(&self.gallery, s, &frames, &self.threshold)
            }
            _ => rules::decide_identify(&self.gallery, &frames, &self.threshold),
        };
        let [analysis] = frames;
        let quality = analysis.face.as_ref().map(|f| f.quality);
        Decided {
            outcome,
            detail: serde_json::json!({"quality": quality, "timings": analysis.timings}),
        }
    }

    /// Records lockout state for a 1:1 result, signs, audits.
    pub fn finish(
        &mut self,
        decided: Decided,
        nonce: Option<&str>,
        origin: Origin,
        frame_captured_at: Option<Instant>,
    ) -> Result<VerdictOut, ApiError> {
        let Decided {
            outcome,
            mut detail,
        } = decided;
        if let Some(subject) = outcome.subject.as_deref()
            && outcome.mode == Mode::Verify
            && let Some(accepted) = lockout::attempt(outcome.reason)
        {
            let state = self
                .lockout
                .record(&mut self.store, subject, accepted, unix_now_ms())
                .map_err(internal)?;
            if let LockState::Locked { until_ms, failures } = state {
                audit::append(
                    &mut self.store,
                    &Event {
                        event: "lockout",
                        subject: Some(subject),
                        decision: None,
                        reason: Some(Reason::LockedOut.as_str()),
                        detail: serde_json::json!({"locked_until_ms": until_ms, "failures": failures}),
                    },
                )
                .map_err(internal)?;
            }
        }
        let spec = self.pipeline.embedder_spec();
        if let Some(map) = detail.as_object_mut() {
            map.insert("model_id".into(), spec.id.clone().into());
            map.insert("model_sha256".into(), spec.sha256.clone().into());
            map.insert(
                "threshold_source".into(),
                self.threshold.source.clone().into(),
            );
            map.insert("origin".into(), serde_json::json!(origin));
            if outcome.mode == Mode::Identify {
                map.insert("identify_enabled".into(), self.identify_enabled.into());
            }
        }
        let issued = issue(
            &mut self.store,
            &self.keys,
            IssueRequest {
                outcome: &outcome,
                nonce,
                modalities: &[FACE],
                lifetime_secs: self.lifetime_secs,
                detail,
            },
        )
        .map_err(|e| ApiError::Internal(format!("could not issue the verdict: {e}")))?;
        tracing::info!(
            seq = issued.claims.seq,
            decision = issued.claims.decision.as_str(),
            reason = %issued.claims.reason,
            ?origin,
            "verdict issued"
        );
        Ok(VerdictOut {
            verdict: issued.verdict,
            exp: issued.claims.exp,
            origin,
            frame_captured_at,
        })
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "store error while deciding");
    ApiError::Internal(e.to_string())
}

/// Why no frame so far was usable, as `select_face` ranks it.
#[derive(Debug, Default)]
pub struct Seen {
    pub frames: u32,
    pub faces: u32,
    pub multiple: u32,
    /// The last quality hint, for enrollment progress.
    pub hint: Option<&'static str>,
}

impl Seen {
    pub fn note(&mut self, analysis: &FrameAnalysis) {
        self.frames += 1;
        self.hint = None;
        if analysis.ambiguous {
            self.multiple += 1;
            self.hint = Some("one person at a time");
        } else if let Some(face) = &analysis.face {
            self.faces += 1;
            self.hint = face.quality_failures.first().map(|f| f.hint());
        } else {
            self.hint = Some("no face in view: look at the camera");
        }
    }

    /// The reason for a request that ran out of time.
    pub fn reason(&self) -> Reason {
        if self.multiple > 0 {
            Reason::MultipleFaces
        } else if self.faces > 0 {
            Reason::LowQuality
        } else if self.frames > 0 {
            Reason::NoFace
        } else {
            Reason::Timeout
        }
    }
}

impl Decided {
    /// Adds the liveness record to the audit detail: the mode in force and
    /// the figures that explain the judgement (never landmarks or images).
    pub fn with_liveness(mut self, mode: LivenessMode, figures: Option<&Figures>) -> Self {
        let mut record = figures
            .and_then(|f| serde_json::to_value(f).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(map) = record.as_object_mut() {
            map.insert("mode".into(), mode.as_str().into());
        }
        if let Some(map) = self.detail.as_object_mut() {
            map.insert("liveness".into(), record);
        }
        self
    }
}

/// True when the frame has a face good enough to decide on.
pub fn usable(analysis: &FrameAnalysis) -> bool {
    rules::select_face(std::slice::from_ref(analysis)).is_ok()
}
