//! The decision path's rules that need the embedder: which templates can
//! be compared (the gallery of this embedder, tampered and other-model
//! subjects answered before any evidence), and judging the evidence
//! against the threshold. See [`super::attempt`] for the whole order.

use serde_json::{Value, json};

use super::attempt::{AttemptError, Judged};
use super::enrolment::FACE;
use super::evidence::{Ended, Evidence, LivenessVerdict};
use super::gallery::fused::{self, FusedModel};
use super::gallery::{Gallery, GalleryLoad, SubjectScore};
use super::request::Request;
use super::threshold::{DEFAULT_OPERATING_POINT, OperatingPoint, Threshold};
use super::verify::{IDENTIFY_TOP_K, Outcome, decide_identify, decide_verify, select_face};
use crate::infer::ModelSpec;
use crate::infer::manifest::FusionSpec;
use crate::pipeline::FrameAnalysis;
use crate::store::audit;
use crate::store::{DataKey, Store, templates};
use crate::verdict::{Decision, Mode, Reason};

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

/// The embedder in use and the similarity that makes a match; with a
/// score fusion, the further embedders and the fusion's threshold.
#[derive(Debug, Clone)]
pub struct Matcher {
    model_id: String,
    model_sha256: String,
    threshold: Threshold,
    extra: Vec<ExtraModel>,
    fusion: Option<(FusionSpec, Threshold)>,
}

/// A further embedder of a fused matcher, with its own threshold (used for
/// subjects enrolled under it alone).
#[derive(Debug, Clone)]
struct ExtraModel {
    id: String,
    sha256: String,
    threshold: f32,
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
            extra: Vec::new(),
            fusion: None,
        })
    }

    /// Fused matching (`[face] embedder = "fused"`): the further embedders
    /// `extra` (after the primary) and the manifest's fusion of them all,
    /// which must have been fitted with these very model files and carry
    /// a threshold at the default operating point.
    pub fn fused_with(
        mut self,
        extra: &[&ModelSpec],
        fusion: Option<&FusionSpec>,
    ) -> Result<Self, AttemptError> {
        if extra.is_empty() {
            return Ok(self);
        }
        let mut labels = vec![(self.model_id.as_str(), self.model_sha256.as_str())];
        labels.extend(extra.iter().map(|s| (s.id.as_str(), s.sha256.as_str())));
        let ids: Vec<&str> = labels.iter().map(|(id, _)| *id).collect();
        let missing = || AttemptError::NoThreshold {
            model: format!("fusion of {}", ids.join("+")),
        };
        let fusion = fusion.filter(|f| f.fits(&labels)).ok_or_else(missing)?;
        let t = fusion
            .thresholds
            .get(DEFAULT_OPERATING_POINT)
            .ok_or_else(missing)?;
        for spec in extra {
            let own = Threshold::resolve(None, spec, OperatingPoint(DEFAULT_OPERATING_POINT))
                .ok_or_else(|| AttemptError::NoThreshold {
                    model: spec.id.clone(),
                })?;
            self.extra.push(ExtraModel {
                id: spec.id.clone(),
                sha256: spec.sha256.clone(),
                threshold: own.value,
            });
        }
        let source = format!(
            "manifest fusion {}:{DEFAULT_OPERATING_POINT} ({})",
            fusion.id, t.measured_on
        );
        self.fusion = Some((
            fusion.clone(),
            Threshold {
                value: t.value,
                source,
            },
        ));
        Ok(self)
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
        let mut load = Gallery::open(store, dek, FACE, model, subject)?;
        for e in &self.extra {
            let model = templates::ModelLabel {
                id: &e.id,
                sha256: &e.sha256,
            };
            load = load.with_extra(Gallery::open(store, dek, FACE, model, subject)?);
        }
        // Every load sees every row: the first one's tampered list is all.
        load.audit_tampered(store, found_by)?;
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
        } else if enrolled.contains(subject) {
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
        if let Some((fusion, threshold)) = &self.fusion {
            let outcome = self.decide_fused(enrolled, req, &frames, fusion, threshold, &mut detail);
            if let Some(frame) = outcome.frame.and_then(|i| frames.get(i)) {
                detail["quality"] = json!(frame.face.as_ref().map(|f| f.quality));
                detail["timings"] = json!(frame.timings);
            }
            return self.explained(Judged {
                outcome,
                detail,
                modalities: vec![FACE],
            });
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
        self.explained(Judged {
            outcome,
            detail,
            modalities: vec![FACE],
        })
    }

    /// The fused decision: each subject scored by every model it has
    /// templates of (fused), or by its one model alone at that model's
    /// threshold, with `needs_reenrolment` in the detail.
    fn decide_fused(
        &self,
        enrolled: &GalleryLoad,
        req: &Request<'_>,
        frames: &[&FrameAnalysis],
        fusion: &FusionSpec,
        threshold: &Threshold,
        detail: &mut Value,
    ) -> Outcome {
        let (frame, face) = match select_face(frames) {
            Ok(found) => found,
            Err(reason) => return Outcome::reject(req.mode, reason, req.subject),
        };
        let probe = |id: &str, sha: &str| {
            face.embeddings
                .iter()
                .find(|e| e.model_id == id && e.model_sha256 == sha)
                .map(|e| e.embedding.as_slice())
        };
        let mut models = vec![FusedModel {
            gallery: &enrolled.gallery,
            probe: probe(&self.model_id, &self.model_sha256),
            threshold: self.threshold.value,
        }];
        for (e, gallery) in self.extra.iter().zip(&enrolled.extra) {
            models.push(FusedModel {
                gallery,
                probe: probe(&e.id, &e.sha256),
                threshold: e.threshold,
            });
        }
        let t = threshold.value;
        let (best, candidates) = match (req.mode, req.subject) {
            (Mode::Verify, Some(subject)) => (
                fused::score_subject(&models, fusion, t, subject),
                Vec::new(),
            ),
            _ => {
                let top = fused::top_subjects(&models, fusion, t, IDENTIFY_TOP_K);
                (top.first().cloned(), top)
            }
        };
        let Some(best) = best else {
            return Outcome::reject(req.mode, Reason::UnknownSubject, req.subject);
        };
        if best.partial(models.len()) {
            detail["scored_with"] = json!(best.models);
            detail["needs_reenrolment"] = json!([best.subject]);
            tracing::warn!(subject = %best.subject, models = ?best.models, "scored with fewer embedders than the fusion: re-enrol the subject");
        }
        let accepted = best.accepted();
        Outcome {
            decision: Decision::of(accepted),
            reason: Reason::of_score(accepted),
            mode: req.mode,
            subject: match req.mode {
                Mode::Verify => req.subject.map(str::to_owned),
                _ => accepted.then(|| best.subject.clone()),
            },
            score: Some(best.score),
            threshold: Some(best.threshold),
            frame: Some(frame),
            candidates: candidates
                .into_iter()
                .map(|c| SubjectScore {
                    subject: c.subject,
                    score: c.score,
                })
                .collect(),
        }
    }

    /// Adds which embedder and threshold the judgement was made with.
    fn explained(&self, mut judged: Judged) -> Judged {
        let mut extra = json!({
            "model_id": self.model_id,
            "model_sha256": self.model_sha256,
            "threshold_source": self.threshold.source,
        });
        if let Some((fusion, t)) = &self.fusion {
            extra["fusion"] = json!(fusion.id);
            extra["threshold_source"] = json!(t.source);
        }
        if let (Value::Object(map), Value::Object(extra)) = (&mut judged.detail, extra) {
            map.extend(extra);
        }
        judged
    }
}

#[cfg(test)]
mod fused_tests;
