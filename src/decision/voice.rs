//! The voice factor: what a voice probe is, how it is compared with a
//! subject's voice templates, and the replay rule.
//!
//! A subject's voiceprint is the L2-normalised mean of its enrolment
//! clips' embeddings (as `edgeid eval voice` measured the threshold); the
//! clips are kept as separate templates so that a probe that *is* one of
//! them, played back, can be recognised. A probe near-identical to an
//! enrolment clip or to a recent probe is a recording, not a person
//! speaking: `presentation_attack`, cause `voice_replay`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::attempt::AttemptError;
use super::gallery::{Gallery, GalleryLoad};
use super::threshold::{DEFAULT_OPERATING_POINT, OperatingPoint, Threshold};
use crate::infer::ModelSpec;
use crate::store::audit::Event;
use crate::store::templates::{self, ModelLabel, NewTemplate};
use crate::store::{DataKey, Store, StoreError};
use crate::verdict::Reason;
use crate::voice::embed::cosine;

/// The modality name stored with voice templates.
pub const VOICE: &str = "voice";

/// Seconds of speech (after the silence trim) a probe needs.
pub const MIN_PROBE_SPEECH_S: f64 = 2.0;
/// Speech a probe aims for, and exactly what the daemon embeds: more than
/// the minimum for a steadier embedding, and no more than two partial
/// utterances (160 frames every 77, the last kept when 75 % covered: up to
/// 2.73 s), each one LSTM run of ~10 ms in the 30 ms budget (`edgeid bench
/// --voice`). `edgeid eval voice` and `eval fused` cut their probes to it.
pub const PROBE_TARGET_SPEECH_S: f64 = 2.7;
/// Seconds of speech an enrolment clip needs to be used.
pub const MIN_CLIP_SPEECH_S: f64 = 1.0;
/// Seconds of speech an enrolment needs over all its clips.
pub const MIN_ENROL_SPEECH_S: f64 = 10.0;
/// Cosine at or above which two embeddings are the same recording. Genuine
/// repeats of a sentence by the same speaker stay below it (`edgeid eval
/// voice` reports how often they reach it: the README has the figure).
pub const REPLAY_COSINE: f32 = 0.985;
/// How long recent probes are remembered for the replay rule, and how many.
pub const RECENT_PROBES_FOR: Duration = Duration::from_secs(600);
pub const RECENT_PROBES_MAX: usize = 64;

/// The operating point whose threshold is each factor's floor when fused.
pub const FLOOR_OPERATING_POINT: &str = "far_1e-2";

/// What the microphone (or an audio file) gave for one attempt.
#[derive(Debug, Clone)]
pub enum VoiceEvidence {
    /// Enough speech, embedded.
    Heard { embedding: Vec<f32>, speech_s: f64 },
    /// Some or no speech, less than [`MIN_PROBE_SPEECH_S`].
    TooLittle { speech_s: f64 },
    /// Nothing could be listened to (no microphone, it failed, shutdown).
    Unavailable { why: String },
}

/// One voice probe judged against one claimed subject.
#[derive(Debug, Clone, Serialize)]
pub struct VoiceJudgement {
    /// `match`, `voice_mismatch`, `presentation_attack` (replay),
    /// `too_little_speech`, or `timeout` (nothing heard).
    pub reason: Reason,
    pub score: Option<f32>,
    pub threshold: f32,
    /// The factor's floor when fused with the face.
    pub floor: f32,
    /// Audit detail: speech seconds, replay figures, causes.
    pub detail: Value,
}

impl VoiceJudgement {
    /// Nothing could be listened to (`timeout`, cause `voice_unavailable`);
    /// `record` is the audit detail so far.
    pub fn unavailable(why: &str, mut record: Value) -> Self {
        record["cause"] = json!("voice_unavailable");
        record["why"] = json!(why);
        Self {
            reason: Reason::Timeout,
            score: None,
            threshold: f32::INFINITY,
            floor: f32::INFINITY,
            detail: record,
        }
    }

    pub fn matched(&self) -> bool {
        self.reason == Reason::Match
    }
}

/// The voice embedder's templates and thresholds.
#[derive(Debug, Clone)]
pub struct VoiceMatcher {
    model_id: String,
    model_sha256: String,
    threshold: Threshold,
    floor: f32,
}

impl VoiceMatcher {
    /// The manifest's thresholds of `spec` at the default operating point
    /// and at the floor's.
    pub fn new(spec: &ModelSpec) -> Result<Self, AttemptError> {
        let missing = || AttemptError::NoThreshold {
            model: spec.id.clone(),
        };
        let threshold = Threshold::resolve(None, spec, OperatingPoint(DEFAULT_OPERATING_POINT))
            .ok_or_else(missing)?;
        let floor = Threshold::resolve(None, spec, OperatingPoint(FLOOR_OPERATING_POINT))
            .ok_or_else(missing)?
            .value;
        Ok(Self {
            model_id: spec.id.clone(),
            model_sha256: spec.sha256.clone(),
            threshold,
            floor,
        })
    }

    pub fn model(&self) -> ModelLabel<'_> {
        ModelLabel {
            id: &self.model_id,
            sha256: &self.model_sha256,
        }
    }

    pub fn threshold(&self) -> &Threshold {
        &self.threshold
    }

    /// Opens the voice templates (of `subject` when given) and audits every
    /// template that failed its integrity check.
    pub fn open_gallery(
        &self,
        store: &mut Store,
        dek: &DataKey,
        subject: Option<&str>,
        found_by: &str,
    ) -> Result<GalleryLoad, AttemptError> {
        let load = Gallery::open(store, dek, VOICE, self.model(), subject)?;
        load.audit_tampered(store, found_by)?;
        Ok(load)
    }

    /// The judgement of an attempt nothing could be listened to for.
    pub fn not_heard(&self, why: &str) -> VoiceJudgement {
        VoiceJudgement {
            threshold: self.threshold.value,
            floor: self.floor,
            ..VoiceJudgement::unavailable(why, self.record())
        }
    }

    /// Which embedder and threshold judged (every judgement's audit detail).
    fn record(&self) -> Value {
        json!({
            "voice_model_id": self.model_id,
            "voice_model_sha256": self.model_sha256,
            "voice_threshold_source": self.threshold.source,
        })
    }

    /// Judges a probe against `subject`'s voiceprint. A subject without
    /// usable voice templates is answered `voice_mismatch` like any other
    /// failed match (the audit keeps the cause), so the answer tells a
    /// requester nothing about who enrolled a voice.
    pub fn judge(
        &self,
        enrolled: &GalleryLoad,
        subject: &str,
        evidence: &VoiceEvidence,
        recent: &RecentProbes,
    ) -> VoiceJudgement {
        let mut detail = self.record();
        let verdict = |reason, score, detail| VoiceJudgement {
            reason,
            score,
            threshold: self.threshold.value,
            floor: self.floor,
            detail,
        };
        let (embedding, speech_s) = match evidence {
            VoiceEvidence::Heard {
                embedding,
                speech_s,
            } => (embedding, *speech_s),
            VoiceEvidence::TooLittle { speech_s } => {
                detail["speech_s"] = json!(speech_s);
                detail["min_speech_s"] = json!(MIN_PROBE_SPEECH_S);
                return verdict(Reason::TooLittleSpeech, None, detail);
            }
            VoiceEvidence::Unavailable { why } => return self.not_heard(why),
        };
        detail["speech_s"] = json!(speech_s);
        if let Some(replayed) = recent.replay_of(embedding) {
            detail["cause"] = json!("voice_replay");
            detail["replay_of"] = json!("recent_probe");
            detail["replay_cosine"] = json!(replayed);
            return verdict(Reason::PresentationAttack, None, detail);
        }
        let clips: Vec<(i64, &[f32])> = enrolled.gallery.subject_templates(subject).collect();
        if let Some((row, c)) = clips
            .iter()
            .map(|(row, clip)| (*row, cosine(clip, embedding)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, c)| *c >= REPLAY_COSINE)
        {
            detail["cause"] = json!("voice_replay");
            detail["replay_of"] = json!({"enrolment_template_row": row});
            detail["replay_cosine"] = json!(c);
            return verdict(Reason::PresentationAttack, None, detail);
        }
        let Some(print) = voiceprint(clips.iter().map(|(_, v)| *v)) else {
            let tampered = enrolled.tampered.iter().any(|t| t.subject == subject);
            detail["cause"] = json!(if tampered {
                "store_tampered"
            } else {
                "no_voice_templates"
            });
            return verdict(Reason::VoiceMismatch, None, detail);
        };
        let score = cosine(&print, embedding);
        let reason = if self.threshold.accepts(score) {
            Reason::Match
        } else {
            Reason::VoiceMismatch
        };
        verdict(reason, Some(score), detail)
    }
}

/// The L2-normalised mean of a subject's clip embeddings; `None` without clips.
pub fn voiceprint<'a>(clips: impl Iterator<Item = &'a [f32]>) -> Option<Vec<f32>> {
    let mut sum: Option<Vec<f32>> = None;
    for clip in clips {
        match &mut sum {
            Some(s) if s.len() == clip.len() => s.iter_mut().zip(clip).for_each(|(a, b)| *a += b),
            Some(_) => return None,
            None => sum = Some(clip.to_vec()),
        }
    }
    let mut print = sum?;
    let norm = print.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm <= f32::EPSILON {
        return None;
    }
    print.iter_mut().for_each(|x| *x /= norm);
    Some(print)
}

/// Probes heard recently (the daemon's memory for the replay rule; the
/// CLI's is empty, each run being on its own).
#[derive(Debug, Default)]
pub struct RecentProbes {
    probes: VecDeque<(Instant, Vec<f32>)>,
}

impl RecentProbes {
    /// The cosine of the recent probe `embedding` repeats, if one does.
    pub fn replay_of(&self, embedding: &[f32]) -> Option<f32> {
        self.probes
            .iter()
            .map(|(_, p)| cosine(p, embedding))
            .filter(|c| *c >= REPLAY_COSINE)
            .max_by(f32::total_cmp)
    }

    /// Remembers a probe (every heard one, accepted or not: a recording
    /// replayed after a failed try is as much a replay).
    pub fn remember(&mut self, embedding: &[f32], now: Instant) {
        while let Some((at, _)) = self.probes.front() {
            if now.duration_since(*at) > RECENT_PROBES_FOR || self.probes.len() >= RECENT_PROBES_MAX
            {
                self.probes.pop_front();
            } else {
                break;
            }
        }
        self.probes.push_back((now, embedding.to_vec()));
    }
}

/// One voice template per enrolment clip, labelled with the embedder.
pub fn voice_templates<'a>(
    spec: &'a ModelSpec,
    clips: &'a [(Vec<f32>, Value)],
) -> Vec<NewTemplate<'a>> {
    clips
        .iter()
        .map(|(embedding, quality)| NewTemplate {
            modality: VOICE,
            model_id: &spec.id,
            model_sha256: &spec.sha256,
            vector: embedding,
            quality: quality.clone(),
        })
        .collect()
}

/// Seals one template per clip of `subject`'s voice (its face templates
/// kept; `replace` for a voice enrolled already), with the enrolment's
/// audit record: what every voice enrolment records, plus `extra` (the
/// entry point's: clips, origin, who asked). Shared by `edgeid enroll
/// --voice` and the daemon's `EnrollStart`, as `enrolment` is for faces.
pub fn enrol(
    store: &mut Store,
    dek: &DataKey,
    spec: &ModelSpec,
    subject: &str,
    clips: &[(Vec<f32>, Value)],
    replace: bool,
    extra: Value,
) -> Result<Vec<i64>, StoreError> {
    let speech_s: f64 = clips
        .iter()
        .filter_map(|(_, q)| q["speech_s"].as_f64())
        .sum();
    let mut detail = json!({
        "modality": VOICE, "model_id": spec.id, "model_sha256": spec.sha256,
        "accepted": clips.len(), "speech_s": speech_s, "replace": replace,
    });
    if let (Value::Object(map), Value::Object(extra)) = (&mut detail, extra) {
        map.extend(extra);
    }
    let event = Event::Enroll { subject, detail };
    templates::enroll_modality(
        store,
        dek,
        subject,
        VOICE,
        &voice_templates(spec, clips),
        replace,
        Some(&event),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn the_voiceprint_is_the_normalised_mean() {
        let a = unit(&[1.0, 0.0]);
        let b = unit(&[0.0, 1.0]);
        let p = voiceprint([a.as_slice(), b.as_slice()].into_iter()).unwrap();
        assert!((p[0] - p[1]).abs() < 1e-6 && (p[0] - 0.70710677).abs() < 1e-6);
        assert!(voiceprint(std::iter::empty()).is_none());
    }

    #[test]
    fn a_repeated_probe_is_a_replay_a_different_one_is_not() {
        let mut recent = RecentProbes::default();
        let t0 = Instant::now();
        let probe = unit(&[0.3, 0.4, 0.5]);
        recent.remember(&probe, t0);
        assert!(recent.replay_of(&probe).is_some());
        assert!(recent.replay_of(&unit(&[0.5, 0.4, 0.3])).is_none());
    }

    #[test]
    fn recent_probes_are_forgotten_after_their_time_and_bounded() {
        let mut recent = RecentProbes::default();
        let t0 = Instant::now();
        let old = unit(&[1.0, 0.0, 0.0]);
        recent.remember(&old, t0);
        recent.remember(&unit(&[0.0, 1.0, 0.0]), t0 + RECENT_PROBES_FOR * 2);
        assert!(recent.replay_of(&old).is_none());
        for i in 0..(RECENT_PROBES_MAX * 2) {
            recent.remember(&unit(&[1.0, i as f32, 2.0]), t0 + RECENT_PROBES_FOR * 2);
        }
        assert!(recent.probes.len() <= RECENT_PROBES_MAX);
    }
}
