//! Walk-up mode: identify whoever is in view and publish each verdict; the
//! same subject (or the same "no match") is not announced again within the
//! debounce window. Liveness uses the request mode's track, kept across
//! turns while the same face stays in view, with the motion check only
//! (nobody is there to be told a challenge).

use std::time::{Duration, Instant};

use crate::decision::liveness::{Check, LivenessMode, State, Track};
use crate::decision::{Mode, Outcome, Reason};

use super::super::api::Origin;
use super::super::decide::{Decided, usable};
use super::{Engine, IDLE_TURN};

impl Engine {
    pub(super) fn walk_up_turn(&mut self) {
        let since = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        let Some(captured) = self.fresh_frame(since, IDLE_TURN) else {
            return;
        };
        let at = captured.frame.captured_at;
        let analysis = match self.decider.pipeline.analyse(&captured.frame.image) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "walk-up frame could not be analysed");
                return;
            }
        };
        let is_usable = usable(&analysis);
        let liveness = self.config.liveness;
        let decided = if liveness.mode == LivenessMode::Off {
            if !is_usable {
                return;
            }
            self.decider
                .score(Mode::Identify, None, analysis)
                .with_liveness(LivenessMode::Off, None)
        } else {
            let threshold = self.decider.match_threshold();
            let track = self
                .walk_up_track
                .get_or_insert_with(|| Track::new(liveness, threshold));
            track.push(analysis, is_usable, captured.frame.image.dimensions(), at);
            let (state, figures) = track.evaluate(Check::Motion);
            match state {
                State::Pending => return,
                State::Attack(failure) => {
                    tracing::warn!(?failure, "walk-up: presentation attack suspected");
                    // Start afresh: the next verdict needs new evidence.
                    track.reset();
                    Decided {
                        outcome: Outcome::reject(Mode::Identify, Reason::PresentationAttack, None),
                        detail: serde_json::json!({"cause": "liveness_failed"}),
                    }
                    .with_liveness(liveness.mode, Some(&figures))
                }
                State::Live => match track.take_best() {
                    Some((best, _)) => self
                        .decider
                        .score(Mode::Identify, None, best)
                        .with_liveness(liveness.mode, Some(&figures)),
                    None => return,
                },
            }
        };
        self.announce_walk_up(decided, at);
    }

    fn announce_walk_up(&mut self, decided: Decided, frame_captured_at: Instant) {
        let key = decided
            .outcome
            .subject
            .clone()
            .unwrap_or_else(|| format!("({})", decided.outcome.reason));
        let debounce = Duration::from_secs(self.config.daemon.debounce_secs);
        if self
            .walk_up_seen
            .get(&key)
            .is_some_and(|t| t.elapsed() < debounce)
        {
            return;
        }
        self.walk_up_seen.retain(|_, t| t.elapsed() < debounce);
        self.walk_up_seen.insert(key, Instant::now());
        match self
            .decider
            .finish(decided, None, Origin::WalkUp, Some(frame_captured_at))
        {
            Ok(out) => self.outlets.retain(|o| o.send(out.clone()).is_ok()),
            Err(e) => tracing::error!(error = %e, "walk-up verdict failed"),
        }
    }
}
