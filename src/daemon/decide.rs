//! The daemon's side of the decision path: the store, keys, face pipeline
//! and a gallery opened once (and again after enroll / revoke), so a
//! request costs one pipeline run and one scoring pass, not a gallery
//! open. Every rule is the [`Authenticator`]'s, shared with the CLI verbs.

use std::time::Instant;

use crate::api::{ApiError, VerdictOut};
use crate::config::Config;
use crate::decision::Modalities;
use crate::decision::factors::{FactorFusion, combine};
use crate::decision::voice::{VoiceEvidence, VoiceJudgement};
use crate::decision::{
    AttemptError, Authenticator, Evidence, Gallery, GalleryLoad, Judged, Matcher, Provenance,
    Request, Uncomparable,
};
use crate::pipeline::FacePipeline;
use crate::store::{KeyRing, Store};
use crate::voice::VoicePipeline;

use super::voice::VoiceSide;

/// What noticed tampered templates, in their audit records.
const FOUND_BY: &str = "daemon gallery open";

pub struct Decider {
    pub store: Store,
    pub keys: KeyRing,
    pub pipeline: FacePipeline,
    auth: Authenticator,
    matcher: Matcher,
    enrolled: GalleryLoad,
    /// The voice factor, when a microphone is configured.
    pub voice: Option<VoiceSide>,
}

impl Decider {
    /// `voice`: the voice stages and the face+voice fusion fitted for
    /// these embedders, when a microphone is configured.
    pub fn new(
        mut store: Store,
        keys: KeyRing,
        pipeline: FacePipeline,
        voice: Option<(VoicePipeline, Option<FactorFusion>)>,
        config: &Config,
    ) -> Result<Self, AttemptError> {
        let auth = Authenticator::new(config.decision_policy())?;
        let matcher = auth
            .matcher(pipeline.embedder_spec())?
            .fused_with(&pipeline.extra_specs(), pipeline.fusion())?;
        let enrolled = matcher.open_gallery(&mut store, &keys.dek, None, FOUND_BY)?;
        let voice = voice
            .map(|(p, fusion)| VoiceSide::new(p, fusion, &mut store, &keys))
            .transpose()?;
        Ok(Self {
            store,
            keys,
            pipeline,
            auth,
            matcher,
            enrolled,
            voice,
        })
    }

    pub fn gallery(&self) -> &Gallery {
        &self.enrolled.gallery
    }

    /// The similarity that makes a match (liveness tracks use it to tell
    /// when the face in view became someone else's).
    pub fn match_threshold(&self) -> f32 {
        self.matcher.threshold().value
    }

    /// Reopens the gallery after the templates changed.
    pub fn reload(&mut self) -> Result<(), ApiError> {
        self.enrolled = self
            .matcher
            .open_gallery(&mut self.store, &self.keys.dek, None, FOUND_BY)
            .map_err(|e| internal("reopening the gallery", &e))?;
        if let Some(voice) = self.voice.as_mut() {
            voice.reload(&mut self.store, &self.keys)?;
        }
        Ok(())
    }

    /// The voice factor of a request (remembered for the replay rule).
    pub fn judge_voice(&mut self, req: &Request<'_>, evidence: &VoiceEvidence) -> VoiceJudgement {
        match self.voice.as_mut() {
            Some(voice) => voice.judge(req, evidence),
            // `EngineHandle::policy` refuses voice requests without a
            // microphone; the models are loaded with it.
            None => {
                tracing::error!("a voice request reached an engine without the voice models");
                VoiceJudgement::unavailable(
                    "the voice models are not loaded",
                    serde_json::json!({}),
                )
            }
        }
    }

    /// The factors judged under `policy`, into one judgement.
    pub fn combine(
        &self,
        policy: Modalities,
        req: &Request<'_>,
        face: Option<Judged>,
        voice: Option<VoiceJudgement>,
    ) -> Judged {
        let fusion = self.voice.as_ref().and_then(|v| v.fusion.as_ref());
        combine(policy, req, face, voice, fusion)
    }

    /// A locked-out claim, answered before looking at the camera.
    pub fn locked_out(&self, req: &Request<'_>) -> Result<Option<Judged>, ApiError> {
        self.auth
            .locked_out(&self.store, req)
            .map_err(|e| internal("checking the lockout", &e))
    }

    /// Why the claimed subject cannot be compared, if it cannot; the
    /// camera work goes ahead all the same.
    pub fn uncomparable(&self, req: &Request<'_>) -> Result<Option<Uncomparable>, ApiError> {
        self.matcher
            .precheck(&self.store, &self.enrolled, req)
            .map_err(|e| internal("checking the claimed subject", &e))
    }

    pub fn judge(
        &self,
        req: &Request<'_>,
        evidence: &Evidence,
        uncomparable: Option<&Uncomparable>,
    ) -> Judged {
        self.matcher
            .judge(&self.enrolled, req, evidence, uncomparable)
    }

    /// Lockout, audit record and signature; the verdict for the sinks.
    pub fn finish(
        &mut self,
        req: &Request<'_>,
        judged: Judged,
        provenance: Provenance,
        frame_captured_at: Option<Instant>,
    ) -> Result<VerdictOut, ApiError> {
        let issued = self
            .auth
            .finish(&mut self.store, &self.keys, req, judged, provenance)
            .map_err(|e| internal("issuing the verdict", &e))?;
        Ok(VerdictOut {
            verdict: issued.verdict,
            exp: issued.claims.exp,
            origin: req.origin,
            frame_captured_at,
        })
    }

    /// Judges the evidence and issues its verdict.
    pub fn conclude(
        &mut self,
        req: &Request<'_>,
        evidence: &Evidence,
        uncomparable: Option<&Uncomparable>,
        frame_captured_at: Option<Instant>,
    ) -> Result<VerdictOut, ApiError> {
        let judged = self.judge(req, evidence, uncomparable);
        self.finish(req, judged, evidence.provenance(), frame_captured_at)
    }
}

/// A failure inside the engine is the operator's to read in the log, with
/// its whole chain of causes; the caller gets an `Internal` answer naming
/// what failed, without the store's details.
pub fn internal(what: &str, e: &dyn std::error::Error) -> ApiError {
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    tracing::error!(error = %e, ?causes, "{what} failed");
    ApiError::Internal(format!("{what} failed; see the daemon log"))
}
