//! The daemon's voice factor: the voice stages, the voice templates opened
//! once (and again after enrolment or revocation), the probes heard
//! recently (the replay rule's memory) and the face+voice fusion. The
//! rules are the decision path's (`decision::voice`, `decision::factors`).

use std::time::Instant;

use crate::api::ApiError;
use crate::decision::factors::FactorFusion;
use crate::decision::voice::{RecentProbes, VoiceEvidence, VoiceJudgement, VoiceMatcher};
use crate::decision::{AttemptError, GalleryLoad, Request};
use crate::store::{KeyRing, Store};
use crate::voice::VoicePipeline;

use super::decide::internal;

/// What noticed tampered voice templates, in their audit records.
const FOUND_BY: &str = "daemon voice gallery open";

pub struct VoiceSide {
    pub pipeline: VoicePipeline,
    matcher: VoiceMatcher,
    enrolled: GalleryLoad,
    recent: RecentProbes,
    /// The manifest's face+voice fusion for the loaded embedders, if fitted.
    pub fusion: Option<FactorFusion>,
}

impl VoiceSide {
    pub fn new(
        pipeline: VoicePipeline,
        fusion: Option<FactorFusion>,
        store: &mut Store,
        keys: &KeyRing,
    ) -> Result<Self, AttemptError> {
        let matcher = VoiceMatcher::new(pipeline.embedder().spec())?;
        let enrolled = matcher.open_gallery(store, &keys.dek, None, FOUND_BY)?;
        tracing::info!(
            templates = enrolled.gallery.len(),
            subjects = enrolled.gallery.subject_count(),
            fusion = fusion.as_ref().map(|f| f.spec.id.as_str()),
            "voice gallery open"
        );
        Ok(Self {
            pipeline,
            matcher,
            enrolled,
            recent: RecentProbes::default(),
            fusion,
        })
    }

    pub fn reload(&mut self, store: &mut Store, keys: &KeyRing) -> Result<(), ApiError> {
        self.enrolled = self
            .matcher
            .open_gallery(store, &keys.dek, None, FOUND_BY)
            .map_err(|e| internal("reopening the voice gallery", &e))?;
        Ok(())
    }

    /// Judges what was heard against the claimed subject, and remembers the
    /// probe for the replay rule.
    pub fn judge(&mut self, req: &Request<'_>, evidence: &VoiceEvidence) -> VoiceJudgement {
        let judgement = match req.subject {
            Some(subject) => self
                .matcher
                .judge(&self.enrolled, subject, evidence, &self.recent),
            None => self.matcher.not_heard("1:N is by face only"),
        };
        if let VoiceEvidence::Heard { embedding, .. } = evidence {
            self.recent.remember(embedding, Instant::now());
        }
        judgement
    }

    /// The judgement when the microphone gave nothing.
    pub fn not_heard(&self, why: &str) -> VoiceJudgement {
        self.matcher.not_heard(why)
    }
}
