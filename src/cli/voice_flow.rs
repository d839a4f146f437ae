//! The voice factor on audio files: enrolment (`edgeid enroll --voice`)
//! and the probe of `edgeid verify --voice`. The rules are the decision
//! path's (`edgeid::decision::voice`); this only reads the files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use edgeid::api::Admin;
use edgeid::decision::factors::FactorFusion;
use edgeid::decision::voice::{
    self as voice_factor, MIN_CLIP_SPEECH_S, MIN_ENROL_SPEECH_S, MIN_PROBE_SPEECH_S, RecentProbes,
    VoiceEvidence, VoiceJudgement, VoiceMatcher,
};
use edgeid::infer::ModelRole;
use edgeid::sources::audio::load_file;
use edgeid::store::{KeyRing, Store};
use edgeid::voice::{VoiceError, VoicePipeline};

use super::GlobalArgs;
use super::flow::Request;
use super::pipeline::{load_voice, open_manifest};
use super::progress::counter;
use super::state::PipelineCell;

/// What noticed tampered voice templates, in their audit records.
const FOUND_BY: &str = "edgeid verify --voice";

/// Longest audio file read (seconds): longer ones are refused from their
/// header, not decoded.
pub const MAX_CLIP_S: f64 = 120.0;

/// One enrolment clip.
#[derive(Debug, Clone, Serialize)]
pub struct ClipReport {
    pub file: PathBuf,
    pub seconds: f64,
    /// Seconds of speech after the silence trim.
    pub speech_s: f64,
    pub used: bool,
    /// Why the clip was not used, if it was not.
    pub rejected: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VoiceEnrollReport {
    pub subject: String,
    pub model_id: String,
    pub speech_s: f64,
    pub template_rows: Vec<i64>,
    pub clips: Vec<ClipReport>,
}

/// Enrolment clips read and embedded, not yet stored.
pub struct VoiceClips {
    clips: Vec<ClipReport>,
    prints: Vec<(Vec<f32>, serde_json::Value)>,
    speech_s: f64,
}

/// Reads and embeds the enrolment clips: each with at least
/// [`MIN_CLIP_SPEECH_S`] of speech becomes a template; together they need
/// [`MIN_ENROL_SPEECH_S`]. Nothing is stored yet, so a face enrolled in
/// the same run is not stored either when the voice falls short.
pub fn read_clips(
    voice: &VoicePipeline,
    subject: &str,
    files: &[PathBuf],
    quiet: bool,
) -> anyhow::Result<VoiceClips> {
    edgeid::store::validate_subject(subject)?;
    let bar = counter(files.len() as u64, "clips", quiet);
    let mut clips = Vec::new();
    let mut prints = Vec::new();
    for file in files {
        let clip =
            load_file(file, MAX_CLIP_S).with_context(|| format!("reading {}", file.display()))?;
        let mut report = ClipReport {
            file: file.clone(),
            seconds: clip.seconds(),
            speech_s: 0.0,
            used: false,
            rejected: None,
        };
        match voice.embed(&clip.samples, MIN_CLIP_SPEECH_S) {
            Ok(print) => {
                report.speech_s = print.speech_s;
                report.used = true;
                let quality = serde_json::json!({
                    "speech_s": print.speech_s, "seconds": report.seconds,
                    "partials": print.partials, "source": clip.source,
                });
                prints.push((print.embedding, quality));
            }
            Err(VoiceError::TooShort { speech_s, .. }) => {
                report.speech_s = speech_s;
                report.rejected = Some(format!(
                    "{speech_s:.1} s of speech, a clip needs {MIN_CLIP_SPEECH_S:.0} s"
                ));
            }
            Err(VoiceError::NoSpeech { .. }) => {
                report.rejected = Some("no speech (silence or noise)".into());
            }
            Err(e @ VoiceError::Infer(_)) => {
                return Err(e).with_context(|| format!("embedding {}", file.display()));
            }
        }
        if let (Some(why), false) = (&report.rejected, quiet) {
            bar.suspend(|| eprintln!("{}: not used ({why})", file.display()));
        }
        clips.push(report);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let speech_s: f64 = clips.iter().filter(|c| c.used).map(|c| c.speech_s).sum();
    anyhow::ensure!(
        speech_s >= MIN_ENROL_SPEECH_S,
        "{speech_s:.1} s of speech in the usable clips of {subject}, {MIN_ENROL_SPEECH_S:.0} s needed: \
         nothing was enrolled; record more speech in a quiet place"
    );
    Ok(VoiceClips {
        clips,
        prints,
        speech_s,
    })
}

/// Seals the clips as `subject`'s voice templates (a face enrolment of the
/// subject is kept), with the audit record.
pub fn enroll_voice(
    store: &mut Store,
    keys: &KeyRing,
    voice: &VoicePipeline,
    subject: &str,
    read: VoiceClips,
    replace: bool,
) -> anyhow::Result<VoiceEnrollReport> {
    let spec = voice.embedder().spec();
    let VoiceClips {
        clips,
        prints,
        speech_s,
    } = read;
    let extra = serde_json::json!({
        "samples": clips.len(),
        "clips": clips.iter().map(|c| serde_json::json!({
            "speech_s": c.speech_s, "seconds": c.seconds, "rejected": c.rejected,
        })).collect::<Vec<_>>(),
        "by": Admin::this_process(),
    });
    let rows = voice_factor::enrol(store, &keys.dek, spec, subject, &prints, replace, extra)?;
    Ok(VoiceEnrollReport {
        subject: subject.to_owned(),
        model_id: spec.id.clone(),
        speech_s,
        template_rows: rows,
        clips,
    })
}

/// A voice probe from an audio file; an unreadable file is an error, too
/// little speech is evidence (answered `too_little_speech`).
pub fn hear(voice: &VoicePipeline, file: &Path) -> anyhow::Result<VoiceEvidence> {
    let clip =
        load_file(file, MAX_CLIP_S).with_context(|| format!("reading {}", file.display()))?;
    match voice.embed(&clip.samples, MIN_PROBE_SPEECH_S) {
        Ok(print) => Ok(VoiceEvidence::Heard {
            embedding: print.embedding,
            speech_s: print.speech_s,
        }),
        Err(VoiceError::TooShort { speech_s, .. }) => Ok(VoiceEvidence::TooLittle { speech_s }),
        Err(VoiceError::NoSpeech { .. }) => Ok(VoiceEvidence::TooLittle { speech_s: 0.0 }),
        Err(e @ VoiceError::Infer(_)) => {
            Err(e).with_context(|| format!("embedding {}", file.display()))
        }
    }
}

/// The voice factor of a CLI attempt: the file heard, judged against the
/// claimed subject's voiceprint (a CLI run remembers no earlier probes:
/// only the enrolment clips count as replays here).
pub fn judge(
    store: &mut Store,
    keys: &KeyRing,
    cell: &PipelineCell<'_>,
    req: &Request<'_>,
    file: &Path,
) -> anyhow::Result<VoiceJudgement> {
    let subject = req.subject.context(
        "a voice is verified against a claimed subject (--subject); 1:N is by face only",
    )?;
    let voice = load_voice(cell.global())?;
    let evidence = hear(&voice, file)?;
    let matcher = VoiceMatcher::new(voice.embedder().spec())?;
    let enrolled = matcher.open_gallery(store, &keys.dek, Some(subject), FOUND_BY)?;
    Ok(matcher.judge(&enrolled, subject, &evidence, &RecentProbes::default()))
}

/// The voice factor of a `face|voice` attempt given photos only.
pub fn not_heard(global: &GlobalArgs) -> anyhow::Result<VoiceJudgement> {
    let manifest = open_manifest(global)?;
    let spec = manifest.by_role(ModelRole::VoiceEmbedder)?;
    Ok(VoiceMatcher::new(spec)?.not_heard("no --voice file was given"))
}

/// The manifest's face+voice fusion for the loaded face embedder.
pub fn factor_fusion(cell: &mut PipelineCell<'_>) -> anyhow::Result<Option<FactorFusion>> {
    let manifest = open_manifest(cell.global())?;
    let voice = manifest.by_role(ModelRole::VoiceEmbedder)?.clone();
    let pipeline = cell.get()?;
    anyhow::ensure!(
        pipeline.extra_specs().is_empty(),
        "face+voice is fitted for one face embedder: set [face] embedder = \"dlib\""
    );
    let face = pipeline.embedder_spec();
    let fusion = FactorFusion::find(&manifest, face, &voice).with_context(|| {
        format!(
            "no face+voice fusion of {} and {} is fitted in the manifest (edgeid eval fused)",
            face.id, voice.id
        )
    })?;
    Ok(Some(fusion))
}
