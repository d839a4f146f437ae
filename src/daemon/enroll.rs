//! Enrollment from the camera (D-Bus `EnrollStart`): collect usable face
//! samples from fresh frames, telling the person what to change through
//! `EnrollProgress` hints, then seal them in one transaction.
//!
//! While enrolling, the camera is taken: verify / identify requests are
//! answered `Busy` at once rather than left to time out; listing and
//! revoking are still served.

use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::decision::enrolment::face_templates;
use crate::store::audit::Event;
use crate::store::templates;
use crate::vision::embed::Embedding;
use crate::vision::quality::QualityReport;

use super::api::{ApiError, EnrollEvent, Job, Reply};
use super::decide::{FACE, Seen, usable};
use super::engine::{Engine, shutting_down};

/// Consecutive samples this close in time are near-duplicates; spacing
/// them gives the template set some variety of pose and expression.
const SAMPLE_SPACING: Duration = Duration::from_millis(200);

impl Engine {
    pub(super) fn serve_enroll(
        &mut self,
        subject: String,
        events: UnboundedSender<(String, EnrollEvent)>,
        reply: Reply<()>,
    ) {
        let _ = reply.send(Ok(()));
        let emit = |e: EnrollEvent| {
            let _ = events.send((subject.clone(), e));
        };
        let result = self.collect(&subject, &emit);
        let message = match result {
            Ok(samples) => match self.seal(&subject, &samples) {
                Ok(rows) => {
                    tracing::info!(%subject, templates = rows, "enrolled from the camera");
                    "ok".to_owned()
                }
                Err(e) => format!("failed: {e}"),
            },
            Err(e) => format!("failed: {e}"),
        };
        emit(EnrollEvent::Done { result: message });
    }

    fn collect(
        &mut self,
        subject: &str,
        emit: &dyn Fn(EnrollEvent),
    ) -> Result<Vec<(Embedding, QualityReport)>, ApiError> {
        let needed = self.config.daemon.enroll_samples;
        let started = Instant::now();
        let deadline =
            started + Duration::from_millis(u64::from(self.config.daemon.enroll_timeout_ms));
        let mut samples = Vec::new();
        let mut last_sample: Option<Instant> = None;
        let mut last_hint = String::new();
        emit(EnrollEvent::Progress {
            done: 0,
            needed,
            hint: "look at the camera".into(),
        });
        while samples.len() < needed as usize {
            self.turn();
            self.refuse_while_enrolling();
            if self.stopping() {
                return Err(shutting_down());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ApiError::Timeout(format!(
                    "only {} of {needed} usable samples of {subject} within {} s",
                    samples.len(),
                    self.config.daemon.enroll_timeout_ms / 1000
                )));
            }
            let Some(captured) =
                self.fresh_frame(started, (deadline - now).min(Duration::from_millis(100)))
            else {
                continue;
            };
            if last_sample.is_some_and(|t| captured.frame.captured_at < t + SAMPLE_SPACING) {
                continue;
            }
            let analysis = match self.decider.pipeline.analyse(&captured.frame.image) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "enrollment frame could not be analysed");
                    continue;
                }
            };
            if usable(&analysis)
                && let Some(face) = analysis.face
            {
                samples.push((face.embedding, face.quality));
                last_sample = Some(captured.frame.captured_at);
                let hint = if samples.len() < needed as usize {
                    "good: hold still"
                } else {
                    "done"
                };
                emit(EnrollEvent::Progress {
                    done: samples.len() as u32,
                    needed,
                    hint: hint.into(),
                });
                continue;
            }
            let mut seen = Seen::default();
            seen.note(&analysis);
            let hint = seen.hint.unwrap_or("look at the camera").to_owned();
            // Only changes are signalled, not one signal per frame.
            if hint != last_hint {
                emit(EnrollEvent::Progress {
                    done: samples.len() as u32,
                    needed,
                    hint: hint.clone(),
                });
                last_hint = hint;
            }
        }
        Ok(samples)
    }

    fn seal(
        &mut self,
        subject: &str,
        samples: &[(Embedding, QualityReport)],
    ) -> Result<usize, ApiError> {
        let spec = self.decider.pipeline.embedder_spec().clone();
        let new = face_templates(&spec, samples);
        let qualities: Vec<_> = samples.iter().map(|(_, q)| q).collect();
        let event = Event {
            event: "enroll",
            subject: Some(subject),
            decision: Some("accept"),
            reason: None,
            detail: serde_json::json!({
                "modality": FACE, "model_id": spec.id, "model_sha256": spec.sha256,
                "samples": samples.len(), "accepted": samples.len(), "quality": qualities,
                "replace": true, "origin": "dbus camera enrollment",
            }),
        };
        let keys = &self.decider.keys;
        let rows = templates::enroll(
            &mut self.decider.store,
            &keys.dek,
            subject,
            &new,
            true,
            Some(&event),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
