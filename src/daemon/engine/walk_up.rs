//! Walk-up mode: identify whoever is in view and publish each verdict; the
//! same subject (or the same "no match") is not announced again within the
//! debounce window. Liveness uses the request mode's track, kept across
//! turns while the same face stays in view, with the motion check only
//! (nobody is there to be told a challenge).

use std::time::{Duration, Instant};

use crate::decision::evidence::usable;
use crate::decision::liveness::{Check, LivenessMode, State, Track};
use crate::decision::{
    Ended, Evidence, Liveness, LivenessCheck, LivenessVerdict, Mode, Origin, Request, Sample, Seen,
};

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
        let mut seen = Seen::default();
        seen.note(&analysis);
        let is_usable = usable(&analysis);
        let policy = self.config.liveness;
        let evidence = if policy.mode == LivenessMode::Off {
            if !is_usable {
                return;
            }
            Evidence {
                samples: vec![Sample::new(analysis)],
                seen,
                liveness: Liveness::unchecked(LivenessCheck::Off),
                ended: Ended::Complete,
                capture: self.config.camera.source.into(),
            }
        } else {
            let threshold = self.decider.match_threshold();
            let track = self
                .walk_up_track
                .get_or_insert_with(|| Track::new(policy, threshold));
            track.push(analysis, is_usable, &captured.frame.image, at);
            let (state, figures) = track.evaluate(Check::Motion);
            let mut liveness = Liveness::unchecked(LivenessCheck::Motion);
            liveness.figures = Some(figures);
            let samples = match state {
                State::Pending => return,
                State::Attack(failure) => {
                    tracing::warn!(?failure, "walk-up: presentation attack suspected");
                    // Start afresh: the next verdict needs new evidence.
                    track.reset();
                    liveness.verdict = LivenessVerdict::Attack;
                    Vec::new()
                }
                State::Live => match track.take_best() {
                    Some((best, _)) => {
                        liveness.verdict = LivenessVerdict::Live;
                        vec![Sample::new(best)]
                    }
                    None => return,
                },
            };
            Evidence {
                samples,
                seen,
                liveness,
                ended: Ended::Complete,
                capture: self.config.camera.source.into(),
            }
        };
        self.announce_walk_up(&evidence, at);
    }

    fn announce_walk_up(&mut self, evidence: &Evidence, frame_captured_at: Instant) {
        let req = Request::new(Mode::Identify, None, None, Origin::WalkUp);
        let judged = self.decider.judge(&req, evidence, None);
        let key = judged
            .outcome
            .subject
            .clone()
            .unwrap_or_else(|| format!("({})", judged.outcome.reason));
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
        let provenance = evidence.provenance();
        match self
            .decider
            .finish(&req, judged, provenance, Some(frame_captured_at))
        {
            Ok(out) => self.outlets.retain(|o| o.send(out.clone()).is_ok()),
            Err(e) => tracing::error!(error = %e, "walk-up verdict failed"),
        }
    }
}
