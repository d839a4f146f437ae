//! Enrollment from the camera and the microphone (D-Bus `EnrollStart`
//! with ["face"], ["voice"] or both; the voice part is in
//! `engine::listen`). The face: collect usable face
//! samples from fresh frames, telling the person what to change through
//! `EnrollProgress` hints, check (unless `[liveness] mode = "off"`) that
//! the face is a live head and one person throughout, then seal them in
//! one transaction.
//!
//! While enrolling, the camera is taken: verify / identify requests are
//! answered `Busy` at once rather than left to time out; listing and
//! revoking are still served.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::decision::Modalities;
use crate::decision::enrolment::{FACE, evidence_templates};
use crate::decision::evidence::{Seen, usable};
use crate::decision::liveness::{Check, Figures, LivenessMode, State, Track};
use crate::decision::voice::{self, MIN_ENROL_SPEECH_S, VOICE};
use crate::pipeline::ModelEmbedding;
use crate::store::audit::Event;
use crate::store::templates;
use crate::vision::quality::QualityReport;

use super::decide::internal;
use super::engine::{Engine, shutting_down};
use crate::api::{Admin, ApiError, EnrollEvent, Job, Reply};

/// Consecutive samples this close in time are near-duplicates; spacing
/// them gives the template set some variety of pose and expression.
const SAMPLE_SPACING: Duration = Duration::from_millis(200);

/// What a camera enrollment gathered before sealing.
struct Collected {
    /// Each sample's descriptors (one per configured embedder).
    samples: Vec<(Vec<ModelEmbedding>, QualityReport)>,
    /// The liveness judgement's figures (None when liveness is off).
    liveness: Option<Figures>,
}

impl Engine {
    pub(super) fn serve_enroll(
        &mut self,
        subject: String,
        modalities: Modalities,
        replace: bool,
        by: Admin,
        events: UnboundedSender<(String, EnrollEvent)>,
        reply: Reply<()>,
    ) {
        if let Err(e) = self.may_enrol(&subject, modalities, replace) {
            let _ = reply.send(Err(e));
            return;
        }
        let _ = reply.send(Ok(()));
        let emit = |e: EnrollEvent| {
            let _ = events.send((subject.clone(), e));
        };
        let message = match self.enrol(&subject, modalities, replace, by, &emit) {
            Ok(rows) => {
                tracing::info!(%subject, %modalities, templates = rows, "enrolled");
                "ok".to_owned()
            }
            Err(e) => format!("failed: {e}"),
        };
        emit(EnrollEvent::Done { result: message });
    }

    /// Replacing is asked for explicitly (EnrollReplace), never implied:
    /// EnrollStart refuses a modality the subject holds already, and
    /// EnrollReplace a subject that is not enrolled.
    fn may_enrol(
        &self,
        subject: &str,
        modalities: Modalities,
        replace: bool,
    ) -> Result<(), ApiError> {
        let held = templates::modalities_of(&self.decider.store, subject)
            .map_err(|e| internal("looking the subject up", &e))?;
        let asked = [
            (modalities.uses_face(), FACE),
            (modalities.uses_voice(), VOICE),
        ];
        if let Some((_, m)) = asked.iter().find(|(a, m)| *a && held.contains(*m))
            && !replace
        {
            return Err(ApiError::SubjectExists(format!(
                "{subject} has {m} templates already: EnrollReplace replaces them"
            )));
        }
        if replace && held.is_empty() {
            return Err(ApiError::NoSuchSubject(format!(
                "{subject} is not enrolled: EnrollStart enrols it"
            )));
        }
        Ok(())
    }

    /// Gathers every modality asked for, then seals them: nothing is sealed
    /// unless all were gathered.
    fn enrol(
        &mut self,
        subject: &str,
        modalities: Modalities,
        replace: bool,
        by: Admin,
        emit: &dyn Fn(EnrollEvent),
    ) -> Result<usize, ApiError> {
        let face = if modalities.uses_face() {
            Some(self.collect(subject, emit)?)
        } else {
            None
        };
        let voice = if modalities.uses_voice() {
            let deadline = Instant::now()
                + Duration::from_millis(u64::from(self.config.daemon.enroll_timeout_ms));
            let mut last = String::new();
            let mut say = |held: u32, hint: &str| {
                // Only changes are signalled.
                let line = format!("{held} {hint}");
                if line != last {
                    emit(EnrollEvent::Progress {
                        done: held,
                        needed: MIN_ENROL_SPEECH_S as u32,
                        hint: hint.to_owned(),
                    });
                    last = line;
                }
            };
            Some(self.listen_enrol(subject, deadline, &mut say)?)
        } else {
            None
        };
        let mut rows = 0;
        if let Some(collected) = face {
            rows += self.seal(subject, &collected, replace, by)?;
        }
        if let Some(clips) = voice {
            rows += self.seal_voice(subject, &clips, replace, by)?;
        }
        Ok(rows)
    }

    /// Usable samples of one person and, unless liveness is off, proof
    /// that the face in front of the camera is a head, not a picture: a
    /// template made from a photo would let that photo in later.
    fn collect(
        &mut self,
        subject: &str,
        emit: &dyn Fn(EnrollEvent),
    ) -> Result<Collected, ApiError> {
        let needed = self.config.daemon.enroll_samples;
        let policy = self.config.liveness;
        let mut track = (policy.mode != LivenessMode::Off)
            .then(|| Track::new(policy, self.decider.match_threshold()));
        let started = Instant::now();
        let deadline =
            started + Duration::from_millis(u64::from(self.config.daemon.enroll_timeout_ms));
        let mut samples = Vec::new();
        let mut last_sample: Option<Instant> = None;
        let mut last_hint = String::new();
        let mut resets = 0;
        let mut figures = None;
        let mut live = track.is_none();
        let mut say = |done: usize, hint: &str, force: bool| {
            // Only changes are signalled, not one signal per frame.
            if force || hint != last_hint {
                emit(EnrollEvent::Progress {
                    done: done as u32,
                    needed,
                    hint: hint.to_owned(),
                });
                last_hint = hint.to_owned();
            }
        };
        say(0, "look at the camera", true);
        while samples.len() < needed as usize || !live {
            self.turn();
            self.refuse_while_enrolling();
            if self.stopping() {
                return Err(shutting_down());
            }
            let now = Instant::now();
            if now >= deadline {
                let why = if samples.len() < needed as usize {
                    format!("only {} of {needed} usable samples", samples.len())
                } else {
                    "no head movement showing a live face (not a picture)".to_owned()
                };
                return Err(ApiError::Timeout(format!(
                    "{why} of {subject} within {} s",
                    self.config.daemon.enroll_timeout_ms / 1000
                )));
            }
            let Some(captured) =
                self.fresh_frame(started, (deadline - now).min(Duration::from_millis(100)))
            else {
                continue;
            };
            let analysis = match self.decider.pipeline.analyse(&captured.frame.image) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "enrollment frame could not be analysed");
                    continue;
                }
            };
            let is_usable = usable(&analysis);
            if let Some(track) = track.as_mut() {
                track.push(
                    analysis.clone(),
                    is_usable,
                    &captured.frame.image,
                    captured.frame.captured_at,
                );
                let (state, f) = track.evaluate(Check::Motion);
                if f.resets > resets {
                    // Someone else (or a swapped picture) came into view:
                    // samples of two people must never make one template set.
                    resets = f.resets;
                    live = false;
                    if !samples.is_empty() {
                        samples.clear();
                        say(
                            0,
                            "starting again: one person only, facing the camera",
                            true,
                        );
                    }
                }
                match state {
                    State::Attack(failure) => {
                        tracing::warn!(?failure, %subject, "enrollment: presentation attack suspected");
                        return Err(ApiError::PresentationAttack(format!(
                            "the face moved like a flat picture ({failure:?}); {subject} was not enrolled"
                        )));
                    }
                    State::Live => live = true,
                    State::Pending => {}
                }
                figures = Some(f);
            }
            let spaced =
                last_sample.is_none_or(|t| captured.frame.captured_at >= t + SAMPLE_SPACING);
            if is_usable
                && spaced
                && samples.len() < needed as usize
                && let Some(face) = analysis.face
            {
                samples.push((face.embeddings, face.quality));
                last_sample = Some(captured.frame.captured_at);
                let hint = match (samples.len() < needed as usize, live) {
                    (true, _) => "good: hold still",
                    (false, true) => "done",
                    (false, false) => "now turn your head slowly to one side",
                };
                say(samples.len(), hint, true);
                continue;
            }
            if samples.len() >= needed as usize {
                say(
                    samples.len(),
                    "now turn your head slowly to one side",
                    false,
                );
                continue;
            }
            let mut seen = Seen::default();
            seen.note(&analysis);
            say(
                samples.len(),
                seen.hint.unwrap_or("look at the camera"),
                false,
            );
        }
        Ok(Collected {
            samples,
            liveness: figures,
        })
    }

    fn seal(
        &mut self,
        subject: &str,
        collected: &Collected,
        replace: bool,
        by: Admin,
    ) -> Result<usize, ApiError> {
        let samples = &collected.samples;
        let spec = self.decider.pipeline.embedder_spec().clone();
        let new = evidence_templates(samples);
        let qualities: Vec<_> = samples.iter().map(|(_, q)| q).collect();
        let event = Event::Enroll {
            subject,
            detail: serde_json::json!({
                "modality": FACE, "model_id": spec.id, "model_sha256": spec.sha256,
                "samples": samples.len(), "accepted": samples.len(), "quality": qualities,
                "replace": replace, "origin": "dbus camera enrollment", "by": by,
                "liveness": {
                    "mode": self.config.liveness.mode.as_str(),
                    "figures": collected.liveness,
                },
            }),
        };
        let keys = &self.decider.keys;
        let rows = templates::enroll_modality(
            &mut self.decider.store,
            &keys.dek,
            subject,
            FACE,
            &new,
            replace,
            Some(&event),
        )
        .map_err(|e| internal("sealing the templates", &e))?;
        self.decider.reload()?;
        Ok(rows.len())
    }

    /// One voice template per clip of the speech heard.
    fn seal_voice(
        &mut self,
        subject: &str,
        clips: &[Vec<f32>],
        replace: bool,
        by: Admin,
    ) -> Result<usize, ApiError> {
        let Some(voice) = self.decider.voice.as_ref() else {
            return Err(ApiError::Disabled("the voice models are not loaded".into()));
        };
        let mut prints = Vec::with_capacity(clips.len());
        for clip in clips {
            let print = voice
                .pipeline
                .embed_speech(clip)
                .map_err(|e| internal("embedding the voice", &e))?;
            let quality =
                serde_json::json!({"speech_s": print.speech_s, "partials": print.partials});
            prints.push((print.embedding, quality));
        }
        let spec = voice.pipeline.embedder().spec().clone();
        let extra = serde_json::json!({
            "samples": clips.len(), "origin": "dbus microphone enrollment", "by": by,
        });
        let keys = &self.decider.keys;
        let rows = voice::enrol(
            &mut self.decider.store,
            &keys.dek,
            &spec,
            subject,
            &prints,
            replace,
            extra,
        )
        .map_err(|e| internal("sealing the voice templates", &e))?;
        self.decider.reload()?;
        Ok(rows.len())
    }

    /// Requests that need the camera are refused while it is taken.
    fn refuse_while_enrolling(&mut self) {
        while let Ok(job) = self.jobs.try_recv() {
            match job {
                Job::Decide { reply, .. } => {
                    let _ = reply.send(Err(ApiError::Busy(
                        "an enrollment is using the camera: try again when it ends".into(),
                    )));
                }
                Job::Enroll { reply, .. } => {
                    let _ = reply.send(Err(ApiError::Busy(
                        "another enrollment is in progress".into(),
                    )));
                }
                other => self.handle(other),
            }
        }
    }
}
