//! The decision path's rules that need the embedder: which templates can
//! be compared (the gallery of this embedder, tampered and other-model
//! subjects answered before any evidence), and judging the evidence
//! against the threshold. See [`super::attempt`] for the whole order.

use serde_json::{Value, json};

use super::attempt::{AttemptError, Judged};
use super::enrolment::FACE;
use super::evidence::{Ended, Evidence, LivenessVerdict};
use super::gallery::{Gallery, GalleryLoad};
use super::request::Request;
use super::threshold::{DEFAULT_OPERATING_POINT, OperatingPoint, Threshold};
use super::verify::{decide_identify, decide_verify, select_face};
use crate::infer::ModelSpec;
use crate::store::audit::{self, Event};
use crate::store::{DataKey, Store, templates};
use crate::verdict::{Mode, Reason};

/// Why a claimed subject cannot be compared with the face. Verdicts do not
/// say: they answer `no_match` after the same camera work as for anyone
/// enrolled, so a requester cannot learn who is enrolled (nor whose
/// templates were tampered with or need re-enrolment); the audit record
/// keeps the cause, and the CLI tells its operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Uncomparable {
    /// `store_tampered`, `model_mismatch` or `unknown_subject`.
    pub cause: Reason,
    /// What explains it (rows, the models enrolled with).
    pub detail: Value,
}

/// The embedder in use and the similarity that makes a match.
#[derive(Debug, Clone)]
pub struct Matcher {
    model_id: String,
    model_sha256: String,
    threshold: Threshold,
}

impl Matcher {
    /// `given` (a value and where it came from) wins; otherwise the
    /// manifest's threshold at the default operating point.
    pub(super) fn new(spec: &ModelSpec, given: Option<(f32, &str)>) -> Result<Self, AttemptError> {
        let threshold = match given {
            Some((value, source)) => Threshold {
                value,
                source: source.to_owned(),
            },
            None => Threshold::resolve(None, spec, OperatingPoint(DEFAULT_OPERATING_POINT))
                .ok_or_else(|| AttemptError::NoThreshold {
                    model: spec.id.clone(),
                })?,
        };
        Ok(Self {
            model_id: spec.id.clone(),
            model_sha256: spec.sha256.clone(),
            threshold,
        })
    }

    pub fn threshold(&self) -> &Threshold {
        &self.threshold
    }

    /// Opens the face gallery of this embedder (only `subject`'s templates
    /// when given) and audits every template that failed its integrity
    /// check, naming `found_by`.
    pub fn open_gallery(
        &self,
        store: &mut Store,
        dek: &DataKey,
        subject: Option<&str>,
        found_by: &str,
    ) -> Result<GalleryLoad, AttemptError> {
        let model = templates::ModelLabel {
            id: &self.model_id,
            sha256: &self.model_sha256,
        };
        let load = Gallery::open(store, dek, FACE, model, subject)?;
        for t in &load.tampered {
            audit::append(
                store,
                &Event::StoreTampered {
                    subject: &t.subject,
                    template_row: t.row,
                    found_by,
                },
            )?;
        }
        let stale = load.needs_reenrolment();
        if !stale.is_empty() {
            tracing::warn!(subjects = ?stale, model = %self.model_id, "subjects enrolled with another face model are not searched: re-enrol them");
        }
        Ok(load)
    }

    /// Why a claimed subject cannot be compared: tampered templates (failing
    /// their integrity check, or rows of its enrolment deleted outside
    /// `revoke`, per the audit log), then templates of another embedder
    /// only, then not enrolled at all.
    /// `None` when the subject can be compared (or none was claimed).
    pub fn precheck(
        &self,
        store: &Store,
        enrolled: &GalleryLoad,
        req: &Request<'_>,
    ) -> Result<Option<Uncomparable>, AttemptError> {
        let Some(subject) = req.subject else {
            return Ok(None);
        };
        let tampered: Vec<_> = enrolled
            .tampered
            .iter()
            .filter(|t| t.subject == subject)
            .map(|t| t.row)
            .collect();
        let (cause, detail) = if !tampered.is_empty() {
            (Reason::StoreTampered, json!({"tampered_rows": tampered}))
        } else if let Some(found) = audit::enrolment_tampering(store, subject)? {
            (Reason::StoreTampered, json!({"enrolment_tampering": found}))
        } else if enrolled.gallery.contains(subject) {
            return Ok(None);
        } else if templates::subject_exists(store, subject)? {
            let models = enrolled.other_models.get(subject);
            (Reason::ModelMismatch, json!({"enrolled_with": models}))
        } else {
            (Reason::UnknownSubject, json!({}))
        };
        Ok(Some(Uncomparable { cause, detail }))
    }

    /// The decision the evidence supports. Scores stay in the audit detail.
    /// `uncomparable` is what [`Matcher::precheck`] found: such a claim is
    /// judged on the same evidence as any other and, where a face would
    /// have been scored, answered `no_match`.
    pub fn judge(
        &self,
        enrolled: &GalleryLoad,
        req: &Request<'_>,
        evidence: &Evidence,
        uncomparable: Option<&Uncomparable>,
    ) -> Judged {
        let mut detail = json!({
            "frames_analysed": evidence.seen.frames,
            "liveness": evidence.liveness.record(),
        });
        if req.mode == Mode::Identify {
            let stale = enrolled.needs_reenrolment();
            if !stale.is_empty() {
                detail["needs_reenrolment"] = json!(stale);
            }
            if !enrolled.tampered.is_empty() {
                detail["tampered_rows"] = json!(enrolled.tampered);
            }
        }
        if evidence.samples.iter().any(|s| s.pad.is_some()) {
            let scores: Vec<_> = evidence
                .samples
                .iter()
                .map(|s| s.pad.map(|p| p.score))
                .collect();
            detail["pad_scores"] = json!(scores);
        }
        let pad_failed = evidence
            .samples
            .iter()
            .any(|s| s.pad.is_some_and(|p| !p.live));
        let stopped = |cause: &str, reason| {
            let mut detail = detail.clone();
            detail["cause"] = json!(cause);
            self.explained(Judged::reject(req, reason, detail))
        };
        if evidence.liveness.verdict == LivenessVerdict::Attack {
            return stopped("liveness_failed", Reason::PresentationAttack);
        }
        if pad_failed {
            return stopped("pad_failed", Reason::PresentationAttack);
        }
        match evidence.ended {
            Ended::Shutdown => return stopped("shutdown", Reason::Timeout),
            Ended::Deadline if evidence.liveness.check.in_force() && evidence.seen.usable > 0 => {
                return stopped("liveness_not_shown", Reason::Timeout);
            }
            Ended::Deadline => return stopped("deadline", evidence.seen.reason()),
            Ended::Complete => {}
        }
        let frames: Vec<_> = evidence.samples.iter().map(|s| &s.analysis).collect();
        if let Some(u) = uncomparable {
            let mut detail = detail.clone();
            detail["cause"] = json!(u.cause);
            if let (Value::Object(map), Value::Object(extra)) = (&mut detail, u.detail.clone()) {
                map.extend(extra);
            }
            // What the frames showed is said as for anyone; a usable face
            // is a no_match without being compared.
            let reason = select_face(&frames).err().unwrap_or(Reason::NoMatch);
            tracing::warn!(cause = %u.cause, subject = ?req.subject, %reason, "a claimed subject cannot be compared");
            return self.explained(Judged::reject(req, reason, detail));
        }
        let gallery = &enrolled.gallery;
        let outcome = match (req.mode, req.subject) {
            (Mode::Verify, Some(subject)) => {
                decide_verify(gallery, subject, &frames, &self.threshold)
            }
            _ => decide_identify(gallery, &frames, &self.threshold),
        };
        if let Some(frame) = outcome.frame.and_then(|i| frames.get(i)) {
            detail["quality"] = json!(frame.face.as_ref().map(|f| f.quality));
            detail["timings"] = json!(frame.timings);
        }
        self.explained(Judged { outcome, detail })
    }

    /// Adds which embedder and threshold the judgement was made with.
    fn explained(&self, mut judged: Judged) -> Judged {
        let extra = json!({
            "model_id": self.model_id,
            "model_sha256": self.model_sha256,
            "threshold_source": self.threshold.source,
        });
        if let (Value::Object(map), Value::Object(extra)) = (&mut judged.detail, extra) {
            map.extend(extra);
        }
        judged
    }
}
