//! Listening to the microphone for one request or one enrolment. Audio is
//! captured all the time into the microphone's ring, so a person who spoke
//! while the camera was being judged is heard: listening takes the audio
//! captured since the request arrived, until enough speech is held or the
//! deadline passes. Nothing from before the request counts: it may be the
//! previous person's, or what the previous request left unheard.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::decision::voice::{
    MIN_ENROL_SPEECH_S, MIN_PROBE_SPEECH_S, PROBE_TARGET_SPEECH_S, VoiceEvidence,
};
use crate::sources::audio::{AudioSource, To16kMono};
use crate::voice::level::dbfs;
use crate::voice::{RATE, VoicePipeline};

use super::{Engine, IDLE_TURN};

/// The most audio one probe listens to.
const MAX_PROBE_AUDIO_S: f64 = 12.0;
/// How often the speech held so far is measured.
const CHECK_EVERY_S: f64 = 0.5;
/// Enrolment clips: the speech is cut into clips of about this length,
/// each a template (the replay rule compares probes with each).
const ENROL_CLIP_S: f64 = 3.0;
/// Below this level over the last second, the person is asked to speak up.
const TOO_QUIET_DBFS: f64 = -50.0;
/// Above this level with no speech found, the place is too noisy.
const NOISY_DBFS: f64 = -30.0;

fn seconds(samples: usize) -> f64 {
    samples as f64 / RATE as f64
}

fn samples(seconds: f64) -> usize {
    (seconds * RATE as f64) as usize
}

/// What one request heard.
pub(super) struct Heard {
    pub evidence: VoiceEvidence,
    /// When the last audio listened to was captured: the probe was
    /// complete then (latency marks, as a face's frame capture time).
    pub audio_end: Option<Instant>,
    /// The voice stages' times in ms (`vad`, `mel`, `embed`, `total`), for
    /// the audit record, when the probe was embedded.
    pub timings: Option<Value>,
}

/// The audio held so far and when its last sample was captured.
struct Recording {
    audio: Vec<f32>,
    end: Option<Instant>,
}

impl Engine {
    /// 16 kHz mono audio captured from `since` until
    /// `enough` says so or the deadline; `Err` says why nothing was heard.
    fn record(
        &mut self,
        since: Instant,
        deadline: Instant,
        max_s: f64,
        enough: &mut dyn FnMut(&[f32]) -> bool,
    ) -> Result<Recording, String> {
        let Some(mic) = self.mic.as_ref() else {
            return Err("no microphone is configured".into());
        };
        let (rate, channels) = mic.format();
        let mut resampler = To16kMono::new(rate, channels).map_err(|e| e.to_string())?;
        let mut audio = Vec::new();
        let mut end = None;
        let mut next_check = samples(CHECK_EVERY_S);
        loop {
            self.turn();
            if self.stopping() {
                return Err("edgeid is shutting down".into());
            }
            if audio.len() >= samples(max_s) {
                break;
            }
            // Past the deadline, what is already in the ring still counts
            // (the person spoke while the camera was being judged); only
            // waiting for more stops.
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(IDLE_TURN);
            let Some(mic) = self.mic.as_ref() else { break };
            let Some(chunk) = mic.next_timeout(wait) else {
                if Instant::now() >= deadline {
                    break;
                }
                continue;
            };
            if chunk.captured_at.is_some_and(|t| t < since) {
                continue;
            }
            match resampler.push(&chunk) {
                Ok(s) => audio.extend(s),
                Err(e) => tracing::warn!(error = %e, "microphone audio could not be resampled"),
            }
            let span = chunk.frames() as f64 / f64::from(chunk.rate.max(1));
            end = chunk.captured_at.map(|t| t + Duration::from_secs_f64(span));
            if audio.len() >= next_check {
                next_check = audio.len() + samples(CHECK_EVERY_S);
                if enough(&audio) {
                    break;
                }
            }
        }
        if let Ok(tail) = resampler.finish() {
            audio.extend(tail);
        }
        if audio.is_empty() {
            let status = self.mic.as_ref().map(|m| m.status());
            let why = status
                .and_then(|s| s.last_error)
                .unwrap_or_else(|| "no audio arrived from the microphone".into());
            return Err(why);
        }
        Ok(Recording { audio, end })
    }

    /// What the microphone gave for a request that arrived at `since`.
    pub(super) fn listen(&mut self, since: Instant, deadline: Instant) -> Heard {
        let mut enough =
            |audio: &[f32]| seconds(VoicePipeline::speech(audio).len()) >= PROBE_TARGET_SPEECH_S;
        let heard = |evidence, audio_end, timings| Heard {
            evidence,
            audio_end,
            timings,
        };
        let Recording { audio, end } =
            match self.record(since, deadline, MAX_PROBE_AUDIO_S, &mut enough) {
                Ok(recording) => recording,
                Err(why) => return heard(VoiceEvidence::Unavailable { why }, None, None),
            };
        let Some(voice) = self.decider.voice.as_ref() else {
            let why = "the voice models are not loaded".into();
            return heard(VoiceEvidence::Unavailable { why }, end, None);
        };
        // Exactly the target's worth of speech from its start: the same
        // recording played again gives the same probe, whatever the
        // chunking, so the replay rule sees it.
        let t0 = Instant::now();
        let mut speech = VoicePipeline::speech(&audio);
        let vad = t0.elapsed();
        let speech_s = seconds(speech.len());
        if speech_s < MIN_PROBE_SPEECH_S {
            return heard(VoiceEvidence::TooLittle { speech_s }, end, None);
        }
        speech.truncate(samples(PROBE_TARGET_SPEECH_S));
        match voice.pipeline.embed_speech(&speech) {
            Ok(print) => {
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                let t = print.timings;
                let timings = json!({
                    "vad": ms(vad), "mel": ms(t.mel), "embed": ms(t.embed),
                    "total": ms(vad + t.mel + t.embed),
                });
                let evidence = VoiceEvidence::Heard {
                    embedding: print.embedding,
                    speech_s: print.speech_s,
                };
                heard(evidence, end, Some(timings))
            }
            Err(e) => {
                tracing::error!(error = %e, "the voice embedder failed");
                let why = "the voice embedder failed; see the daemon log".into();
                heard(VoiceEvidence::Unavailable { why }, end, None)
            }
        }
    }

    /// Speech for a voice enrolment: at least [`MIN_ENROL_SPEECH_S`],
    /// cut into clips, with progress hints (`say(seconds held, hint)`).
    pub(in crate::daemon) fn listen_enrol(
        &mut self,
        subject: &str,
        deadline: Instant,
        say: &mut dyn FnMut(u32, &str),
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        say(0, "say a few sentences in your normal voice");
        let mut held = 0.0;
        let mut enough = |audio: &[f32]| {
            let speech = seconds(VoicePipeline::speech(audio).len());
            let recent = &audio[audio.len().saturating_sub(RATE)..];
            let level = dbfs(recent);
            let hint = if level < TOO_QUIET_DBFS {
                "too quiet: speak up or come closer"
            } else if speech <= held && level > NOISY_DBFS {
                "too noisy: move somewhere quieter"
            } else {
                "keep speaking"
            };
            held = speech;
            say(speech as u32, hint);
            speech >= MIN_ENROL_SPEECH_S
        };
        let max_s = (deadline - Instant::now()).as_secs_f64();
        let audio = self
            .record(Instant::now(), deadline, max_s, &mut enough)
            .map_err(|why| ApiError::Timeout(format!("no voice of {subject} was heard: {why}")))?
            .audio;
        let speech = VoicePipeline::speech(&audio);
        if seconds(speech.len()) < MIN_ENROL_SPEECH_S {
            return Err(ApiError::Timeout(format!(
                "only {:.1} s of speech of {subject}, {MIN_ENROL_SPEECH_S:.0} s needed",
                seconds(speech.len())
            )));
        }
        Ok(clips(&speech, samples(ENROL_CLIP_S)))
    }
}

/// `speech` cut into clips of `len` samples, the remainder joined to the
/// last clip (so none is too short to embed well).
fn clips(speech: &[f32], len: usize) -> Vec<Vec<f32>> {
    let mut out: Vec<Vec<f32>> = speech.chunks(len.max(1)).map(<[f32]>::to_vec).collect();
    if out.len() > 1 && out.last().is_some_and(|c| c.len() < len) {
        let tail = out.pop().unwrap_or_default();
        if let Some(last) = out.last_mut() {
            last.extend(tail);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clips;

    #[test]
    fn clips_cover_the_speech_and_none_is_short() {
        let speech = vec![0.0f32; 10_500];
        let c = clips(&speech, 3000);
        assert_eq!(c.iter().map(Vec::len).sum::<usize>(), 10_500);
        assert_eq!(c.len(), 3);
        assert!(c.iter().all(|c| c.len() >= 3000));
        assert_eq!(clips(&speech[..2000], 3000).len(), 1);
    }
}
