//! Verify / Identify for one request: frames captured after it arrived are
//! analysed until liveness is shown and a usable face is held, or until the
//! deadline. Every analysed face feeds one liveness track; the best usable
//! frame of the track is the evidence, and only after liveness passed.
//! Judging it is the decision path's.

use std::time::Instant;

use crate::decision::liveness::{Check, LivenessMode, State, Track, challenge_hint, random_side};
use crate::decision::{
    Capture, Ended, Evidence, Judged, Liveness, LivenessCheck, LivenessVerdict, Modalities,
    Provenance, Request, Sample, Seen,
};

use super::{Engine, IDLE_TURN};
use crate::api::{ApiError, ChallengeHint, Origin, VerdictOut};
use crate::decision::evidence::usable;

impl Engine {
    /// One request under `policy`: the face (camera, liveness) and/or the
    /// voice (microphone), judged together.
    pub(super) fn serve_decide(
        &mut self,
        req: &Request<'_>,
        policy: Modalities,
        deadline: Instant,
        received_at: Instant,
    ) -> Result<VerdictOut, ApiError> {
        if let Some(judged) = self.decider.locked_out(req)? {
            return self.decider.finish(req, judged, Provenance::NONE, None);
        }
        let (face, mut provenance, at) = if policy.uses_face() {
            let (judged, provenance, at) = self.face_factor(req, deadline, received_at)?;
            (Some(judged), provenance, at)
        } else {
            let capture = self.mic_capture();
            let provenance = Provenance {
                capture,
                liveness: LivenessCheck::None,
            };
            (None, provenance, None)
        };
        let (voice, heard_at) = if policy.uses_voice() {
            let heard = self.listen(received_at, deadline);
            let mut judged = self.decider.judge_voice(req, &heard.evidence);
            // `detail` is always an object; indexing would panic if not.
            if let (Some(timings), Some(detail)) = (heard.timings, judged.detail.as_object_mut()) {
                detail.insert("timings".into(), timings);
            }
            (Some(judged), heard.audio_end)
        } else {
            (None, None)
        };
        // The evidence was complete when its last part was captured.
        let at = at.max(heard_at);
        if policy == Modalities::FaceOrVoice
            && face
                .as_ref()
                .is_some_and(|f| f.outcome.decision != crate::decision::Decision::Accept)
            && voice.as_ref().is_some_and(|v| v.matched())
        {
            // The voice decided: the verdict says where it was heard.
            provenance = Provenance {
                capture: self.mic_capture(),
                liveness: LivenessCheck::None,
            };
        }
        let judged = self.decider.combine(policy, req, face, voice);
        self.decider.finish(req, judged, provenance, at)
    }

    /// The face factor: camera work (with liveness) and its judgement.
    fn face_factor(
        &mut self,
        req: &Request<'_>,
        deadline: Instant,
        received_at: Instant,
    ) -> Result<(Judged, Provenance, Option<Instant>), ApiError> {
        // Someone who cannot be compared gets the same camera work and a
        // `no_match`, so a requester cannot tell who is enrolled.
        let uncomparable = self.decider.uncomparable(req)?;
        let check = self.liveness_check(req.origin)?;
        if let Some(Check::Challenge(side)) = check {
            let hint = challenge_hint(side, self.config.liveness.require_blink);
            tracing::info!(origin = ?req.origin, hint, "liveness challenge");
            // Nobody listening (no D-Bus sink) is not an error.
            let _ = self.hints.send(ChallengeHint {
                nonce: req.nonce.unwrap_or_default().to_owned(),
                hint: hint.to_owned(),
            });
        }
        let (evidence, at) = self.gather(check, deadline, received_at);
        let judged = self.decider.judge(req, &evidence, uncomparable.as_ref());
        Ok((judged, evidence.provenance(), at))
    }

    /// The `src` of a verdict decided by the voice: a live device, or a
    /// stream someone else captured.
    fn mic_capture(&self) -> Capture {
        if self.config.microphone.fifo.is_some() {
            Capture::Stream
        } else {
            Capture::Microphone
        }
    }

    /// Frames captured after the request arrived, analysed until liveness
    /// is shown (or fails) and a usable face is held, or until the
    /// deadline; with the capture time of the frame that completed it.
    fn gather(
        &mut self,
        check: Option<Check>,
        deadline: Instant,
        received_at: Instant,
    ) -> (Evidence, Option<Instant>) {
        let policy = self.config.liveness;
        let mut seen = Seen::default();
        let mut track = Track::new(policy, self.decider.match_threshold());
        // The check actually applied: a challenge-mode daemon gives MQTT
        // requests the motion check.
        let mut liveness = Liveness::unchecked(match check {
            Some(Check::Motion) => LivenessCheck::Motion,
            Some(Check::Challenge(_)) => LivenessCheck::Challenge,
            None => LivenessCheck::Off,
        });
        let capture = self.config.camera.source.into();
        let evidence = |samples, seen, liveness, ended| Evidence {
            samples,
            seen,
            liveness,
            ended,
            capture,
        };
        loop {
            self.turn();
            let now = Instant::now();
            if now >= deadline || self.stopping() {
                let ended = if self.stopping() {
                    Ended::Shutdown
                } else {
                    Ended::Deadline
                };
                return (evidence(Vec::new(), seen, liveness, ended), None);
            }
            let Some(captured) = self.fresh_frame(received_at, (deadline - now).min(IDLE_TURN))
            else {
                continue;
            };
            let analysis = match self.decider.pipeline.analyse(&captured.frame.image) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "frame could not be analysed");
                    continue;
                }
            };
            seen.note(&analysis);
            let is_usable = usable(&analysis);
            // The frame that completed the evidence, for latency figures.
            let at = Some(captured.frame.captured_at);
            let Some(check) = check else {
                if is_usable {
                    let samples = vec![Sample::new(analysis)];
                    return (evidence(samples, seen, liveness, Ended::Complete), at);
                }
                continue;
            };
            track.push(
                analysis,
                is_usable,
                &captured.frame.image,
                captured.frame.captured_at,
            );
            let (state, figures) = track.evaluate(check);
            liveness.figures = Some(figures);
            match state {
                State::Pending => {}
                State::Attack(failure) => {
                    tracing::warn!(?failure, "liveness: presentation attack suspected");
                    liveness.verdict = LivenessVerdict::Attack;
                    return (evidence(Vec::new(), seen, liveness, Ended::Complete), at);
                }
                // Live, but maybe no frame good enough to score yet.
                State::Live => {
                    if let Some((best, _)) = track.take_best() {
                        liveness.verdict = LivenessVerdict::Live;
                        let samples = vec![Sample::new(best)];
                        return (evidence(samples, seen, liveness, Ended::Complete), at);
                    }
                }
            }
        }
    }

    /// The check this request must pass. Challenges need a screen to show
    /// the hint: only D-Bus callers (kiosks) get one; MQTT door
    /// controllers get the motion check.
    fn liveness_check(&self, origin: Origin) -> Result<Option<Check>, ApiError> {
        match self.config.liveness.mode {
            LivenessMode::Off => Ok(None),
            LivenessMode::Challenge if origin == Origin::Dbus => random_side(&self.rng)
                .map(|side| Some(Check::Challenge(side)))
                .map_err(|_| {
                    tracing::error!("the system random generator failed");
                    ApiError::Internal("no random challenge could be drawn".into())
                }),
            LivenessMode::Motion | LivenessMode::Challenge => Ok(Some(Check::Motion)),
        }
    }
}
