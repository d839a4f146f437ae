//! Verify / Identify for one request: frames captured after it arrived are
//! analysed until liveness is shown and a usable face is held, or until the
//! deadline. Every analysed face feeds one liveness track; the best usable
//! frame of the track is scored, and only after liveness passed.

use std::time::Instant;

use crate::decision::liveness::{
    Check, Figures, LivenessMode, State, Track, challenge_hint, random_side,
};
use crate::decision::{Mode, Outcome, Reason};

use super::super::api::{ApiError, Origin, VerdictOut};
use super::super::decide::{Decided, Seen, usable};
use super::{ChallengeHint, Engine, IDLE_TURN, challenge_hints};

/// What one request is doing, for the verdict when time runs out.
struct Progress {
    analysed: u32,
    seen: Seen,
    check: Option<Check>,
    track: Track,
    figures: Option<Figures>,
}

impl Engine {
    pub(super) fn serve_decide(
        &mut self,
        mode: Mode,
        subject: Option<&str>,
        nonce: Option<&str>,
        deadline: Instant,
        origin: Origin,
        received_at: Instant,
    ) -> Result<VerdictOut, ApiError> {
        if let Some(decided) = self.decider.precheck(subject)? {
            return self.decider.finish(decided, nonce, origin, None);
        }
        let liveness = self.config.liveness;
        let check = self.liveness_check(origin)?;
        if let Some(Check::Challenge(side)) = check {
            let hint = challenge_hint(side, liveness.require_blink);
            tracing::info!(?origin, hint, "liveness challenge");
            // Nobody listening (no D-Bus sink) is not an error.
            let _ = challenge_hints().send(ChallengeHint {
                nonce: nonce.unwrap_or_default().to_owned(),
                hint: hint.to_owned(),
            });
        }
        let mut p = Progress {
            analysed: 0,
            seen: Seen::default(),
            check,
            track: Track::new(liveness, self.decider.match_threshold()),
            figures: None,
        };
        loop {
            self.turn();
            let now = Instant::now();
            if now >= deadline || self.stopping() {
                let decided = self.expired(mode, subject, &p);
                return self.decider.finish(decided, nonce, origin, None);
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
            p.analysed += 1;
            let is_usable = usable(&analysis);
            if !is_usable {
                p.seen.note(&analysis);
            }
            // The frame that completed the decision, for latency figures.
            let at = Some(captured.frame.captured_at);
            let Some(check) = check else {
                if is_usable {
                    let decided = self
                        .decider
                        .score(mode, subject, analysis)
                        .with_liveness(LivenessMode::Off, None);
                    return self
                        .decider
                        .finish(frames(decided, p.analysed), nonce, origin, at);
                }
                continue;
            };
            let size = captured.frame.image.dimensions();
            p.track
                .push(analysis, is_usable, size, captured.frame.captured_at);
            let (state, figures) = p.track.evaluate(check);
            match state {
                State::Pending => p.figures = Some(figures),
                State::Attack(failure) => {
                    tracing::warn!(?failure, ?origin, "liveness: presentation attack suspected");
                    let decided = Decided {
                        outcome: Outcome::reject(mode, Reason::PresentationAttack, subject),
                        detail: serde_json::json!({"cause": "liveness_failed"}),
                    }
                    .with_liveness(liveness.mode, Some(&figures));
                    return self
                        .decider
                        .finish(frames(decided, p.analysed), nonce, origin, at);
                }
                State::Live => match p.track.take_best() {
                    Some((best, _)) => {
                        let decided = self
                            .decider
                            .score(mode, subject, best)
                            .with_liveness(liveness.mode, Some(&figures));
                        return self
                            .decider
                            .finish(frames(decided, p.analysed), nonce, origin, at);
                    }
                    // Live, but no frame good enough to score yet.
                    None => p.figures = Some(figures),
                },
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

    /// The verdict for a request that ran out of time (or was cut short by
    /// shutdown). A usable face without liveness is `timeout`, and the
    /// audit detail says liveness was not shown; otherwise the quality
    /// reason, as without liveness.
    fn expired(&self, mode: Mode, subject: Option<&str>, p: &Progress) -> Decided {
        let (reason, cause) = if self.stopping() {
            (Reason::Timeout, "shutdown")
        } else if p.check.is_some() && p.track.has_usable() {
            (Reason::Timeout, "liveness_not_shown")
        } else {
            (p.seen.reason(), "deadline")
        };
        let decided = Decided {
            outcome: Outcome::reject(mode, reason, subject),
            detail: serde_json::json!({"frames_analysed": p.analysed, "cause": cause}),
        };
        match p.check {
            Some(_) => decided.with_liveness(self.config.liveness.mode, p.figures.as_ref()),
            None => decided.with_liveness(LivenessMode::Off, None),
        }
    }
}

fn frames(mut decided: Decided, analysed: u32) -> Decided {
    if let Some(map) = decided.detail.as_object_mut() {
        map.insert("frames_analysed".into(), analysed.into());
    }
    decided
}
