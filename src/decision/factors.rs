//! Putting the face and the voice together under a [`Modalities`] policy.
//!
//! `face+voice` fuses calibrated scores: each factor's similarity becomes
//! a log-likelihood ratio (`slope * score + offset`, fitted by `edgeid eval
//! fused` and kept in the manifest's `[[fusion]]` of the two embedders),
//! the ratios add, and the sum must reach the fusion's threshold. Each
//! factor must also reach its own floor (its FAR 1e-2 threshold): a sum
//! alone would let a perfect photo carry a stranger's voice, and two
//! factors are there so that one fake is not enough.

use serde_json::{Value, json};

use super::attempt::Judged;
use super::enrolment::FACE;
use super::modalities::Modalities;
use super::request::Request;
use super::threshold::DEFAULT_OPERATING_POINT;
use super::verify::Outcome;
use super::voice::{FLOOR_OPERATING_POINT, VOICE, VoiceJudgement};
use crate::infer::manifest::FusionSpec;
use crate::infer::{Manifest, ModelSpec};
use crate::verdict::{Decision, Reason};

/// The face+voice fusion in force: the calibration, its threshold and
/// each factor's floor.
#[derive(Debug, Clone)]
pub struct FactorFusion {
    pub spec: FusionSpec,
    pub threshold: f32,
    /// Face then voice: the least similarity each factor must show.
    pub floors: [f32; 2],
}

impl FactorFusion {
    /// The manifest's fusion of the face embedder `face` with the voice
    /// embedder `voice`, fitted with these very files; each factor's floor
    /// is its model's FAR 1e-2 threshold. `None` when not fitted.
    pub fn find(manifest: &Manifest, face: &ModelSpec, voice: &ModelSpec) -> Option<Self> {
        let spec = manifest.fusion(&[&face.id, &voice.id])?;
        if !spec.fits(&[(&face.id, &face.sha256), (&voice.id, &voice.sha256)]) {
            return None;
        }
        Self::new(spec, [Self::floor(face)?, Self::floor(voice)?])
    }

    /// A factor's floor: its model's FAR 1e-2 threshold, `None` if the
    /// manifest has not measured one.
    pub fn floor(model: &ModelSpec) -> Option<f32> {
        model.thresholds.get(FLOOR_OPERATING_POINT).map(|t| t.value)
    }

    /// The fused LLR of a face and a voice similarity, and whether the
    /// rule accepts them: the sum at or above the threshold and each
    /// factor at or above its floor.
    pub fn judge(&self, face: f32, voice: f32) -> (f32, bool) {
        let fused = self.spec.fuse(&[face, voice]).unwrap_or(f32::NEG_INFINITY);
        let [face_floor, voice_floor] = self.floors;
        let accepted = fused >= self.threshold && face >= face_floor && voice >= voice_floor;
        (fused, accepted)
    }

    /// The fusion `spec` with its default-operating-point threshold.
    pub fn new(spec: &FusionSpec, floors: [f32; 2]) -> Option<Self> {
        let threshold = spec.thresholds.get(DEFAULT_OPERATING_POINT)?.value;
        Some(Self {
            spec: spec.clone(),
            threshold,
            floors,
        })
    }
}

/// The judgement of one attempt under `policy`: `face` when the camera was
/// used, `voice` when the microphone was.
pub fn combine(
    policy: Modalities,
    req: &Request<'_>,
    face: Option<Judged>,
    voice: Option<VoiceJudgement>,
    fusion: Option<&FactorFusion>,
) -> Judged {
    match (policy, face, voice) {
        (Modalities::Face, Some(face), _) => face,
        (Modalities::Voice, _, Some(voice)) => voice_alone(req, voice),
        (Modalities::FaceOrVoice, Some(face), Some(voice)) => either(req, face, voice),
        (Modalities::FaceAndVoice, Some(face), Some(voice)) => both(req, face, voice, fusion),
        (policy, face, voice) => {
            // A factor the policy needs was not gathered: the entry point's
            // bug, answered as a timeout rather than a decision.
            tracing::error!(%policy, face = face.is_some(), voice = voice.is_some(), "a factor of the policy was not gathered");
            let detail = json!({"cause": "factor_missing", "policy": policy});
            Judged::reject(req, Reason::Timeout, detail)
        }
    }
}

fn voice_alone(req: &Request<'_>, voice: VoiceJudgement) -> Judged {
    let record = json!(voice);
    let accepted = voice.matched();
    let mut outcome = Outcome::reject(req.mode, voice.reason, req.subject);
    outcome.decision = Decision::of(accepted);
    outcome.score = voice.score;
    outcome.threshold = Some(voice.threshold);
    let mut judged = Judged {
        outcome,
        detail: json!({"voice": record}),
        modalities: vec![VOICE],
    };
    judged.detail["policy"] = json!(Modalities::Voice);
    judged
}

/// `face|voice`: the face if it matched, else the voice; an attack seen by
/// either factor refuses the attempt.
fn either(req: &Request<'_>, face: Judged, voice: VoiceJudgement) -> Judged {
    let attack = face.outcome.reason == Reason::PresentationAttack
        || voice.reason == Reason::PresentationAttack;
    let face_reason = face.outcome.reason;
    let mut judged = if face.outcome.decision == Decision::Accept && !attack {
        with_other(face, "voice", json!(voice), vec![FACE])
    } else if voice.matched() && !attack {
        let face_detail = face.detail;
        let mut judged = voice_alone(req, voice);
        judged.detail["face"] = face_detail;
        judged
    } else {
        let reason = if attack {
            Reason::PresentationAttack
        } else if face_reason != Reason::NoMatch
            && matches!(
                voice.reason,
                Reason::VoiceMismatch | Reason::TooLittleSpeech
            )
        {
            voice.reason
        } else {
            face_reason
        };
        let mut judged = with_other(face, "voice", json!(voice), vec![FACE, VOICE]);
        judged.outcome = Outcome::reject(req.mode, reason, req.subject);
        judged
    };
    judged.detail["policy"] = json!(Modalities::FaceOrVoice);
    judged
}

/// `face+voice`: both factors, fused.
fn both(
    req: &Request<'_>,
    face: Judged,
    voice: VoiceJudgement,
    fusion: Option<&FactorFusion>,
) -> Judged {
    let face_reason = face.outcome.reason;
    let face_score = face.outcome.score;
    let reject = |face: Judged, voice: &VoiceJudgement, reason: Reason, extra: Value| {
        let mut judged = with_other(face, "voice", json!(voice), vec![FACE, VOICE]);
        judged.outcome = Outcome::reject(req.mode, reason, req.subject);
        judged.outcome.score = extra["fused"].as_f64().map(|v| v as f32);
        judged.outcome.threshold = extra["fused_threshold"].as_f64().map(|v| v as f32);
        judged.detail["fusion_figures"] = extra;
        judged.detail["policy"] = json!(Modalities::FaceAndVoice);
        judged
    };
    // Anything but a scored face or a scored voice decides on its own,
    // an attack first.
    if face_reason == Reason::PresentationAttack || voice.reason == Reason::PresentationAttack {
        return reject(face, &voice, Reason::PresentationAttack, json!({}));
    }
    if !matches!(face_reason, Reason::Match | Reason::NoMatch) {
        return reject(face, &voice, face_reason, json!({}));
    }
    if !matches!(voice.reason, Reason::Match | Reason::VoiceMismatch) {
        return reject(face, &voice, voice.reason, json!({}));
    }
    let (Some(sf), Some(sv)) = (face_score, voice.score) else {
        // A claim that could not be compared on either factor.
        let reason = if voice.score.is_none() {
            Reason::VoiceMismatch
        } else {
            Reason::NoMatch
        };
        return reject(face, &voice, reason, json!({}));
    };
    let Some(fusion) = fusion else {
        tracing::error!("face+voice without a fitted fusion: refusing");
        return reject(
            face,
            &voice,
            Reason::NoMatch,
            json!({"cause": "no_fusion_fitted"}),
        );
    };
    let (fused, accepted) = fusion.judge(sf, sv);
    let [face_floor, voice_floor] = fusion.floors;
    let figures = json!({
        "fusion": fusion.spec.id,
        "face_score": sf, "voice_score": sv,
        "face_floor": face_floor, "voice_floor": voice_floor,
        "fused": fused, "fused_threshold": fusion.threshold,
    });
    if !accepted {
        let reason = if sv < voice_floor || (sf >= face_floor && !voice.matched()) {
            Reason::VoiceMismatch
        } else {
            Reason::NoMatch
        };
        return reject(face, &voice, reason, figures);
    }
    let mut judged = with_other(face, "voice", json!(voice), vec![FACE, VOICE]);
    judged.outcome.decision = Decision::Accept;
    judged.outcome.reason = Reason::Match;
    judged.outcome.subject = req.subject.map(str::to_owned);
    judged.outcome.score = Some(fused);
    judged.outcome.threshold = Some(fusion.threshold);
    judged.detail["fusion_figures"] = figures;
    judged.detail["policy"] = json!(Modalities::FaceAndVoice);
    judged
}

/// `judged` with the other factor's record under `key`, using `modalities`.
fn with_other(
    mut judged: Judged,
    key: &str,
    other: Value,
    modalities: Vec<&'static str>,
) -> Judged {
    judged.detail[key] = other;
    judged.modalities = modalities;
    judged
}

#[cfg(test)]
mod tests;
