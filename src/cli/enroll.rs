//! `edgeid enroll --subject ID [--voice AUDIO...] [FILE...]`: only photos that pass the face,
//! quality and (when a PAD model is available) presentation-attack checks
//! become templates; each rejected one is named with why.

use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use super::flow;
use super::output::emit;
use super::pad;
use super::pipeline::load_voice;
use super::state::{PipelineCell, load_config, open_unlocked};
use super::voice_flow;

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Pseudonymous subject id (letters, digits, '.', '_', '-', '@').
    #[arg(long)]
    pub subject: String,
    /// Replace the subject's existing templates (e.g. after a model change).
    #[arg(long)]
    pub replace: bool,
    /// Passive presentation-attack model every photo must pass (a `face_pad`
    /// id from `edgeid models list`; default: the shipped one, if any).
    #[arg(long)]
    pub pad_model: Option<String>,
    /// Live score a photo must reach (default: the model's measured `eer`
    /// threshold from the manifest).
    #[arg(long)]
    pub pad_threshold: Option<f32>,
    /// Recordings of the subject's voice (WAV or FLAC): at least 10 s of
    /// speech in all; each file's speech seconds are reported. A face
    /// enrolment of the subject is kept. Every file after `--voice` is a
    /// recording: put photos before it.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub voice: Vec<PathBuf>,
    /// Photos of the subject (JPEG or PNG).
    #[arg(required_unless_present = "voice")]
    pub files: Vec<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: EnrollArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let (mut store, keys) = open_unlocked(global, &config)?;
    // The voice clips are read first: a voice that falls short stores nothing.
    let voice = if args.voice.is_empty() {
        None
    } else {
        let pipeline = load_voice(global)?;
        let clips = voice_flow::read_clips(&pipeline, &args.subject, &args.voice, global.json)?;
        Some((pipeline, clips))
    };
    let face = if args.files.is_empty() {
        None
    } else {
        let pad = pad::open_check(global, args.pad_model.as_deref(), args.pad_threshold)?;
        let mut cell = PipelineCell::new(global);
        let pipeline = cell.get()?;
        Some(flow::enroll(
            &mut store,
            &keys,
            pipeline,
            &flow::EnrollRequest {
                subject: &args.subject,
                files: &args.files,
                replace: args.replace,
                pad: pad.as_ref(),
            },
            global.json,
        )?)
    };
    let voice = match voice {
        Some((pipeline, clips)) => Some(voice_flow::enroll_voice(
            &mut store,
            &keys,
            &pipeline,
            &args.subject,
            clips,
            args.replace,
        )?),
        None => None,
    };
    // One JSON document: the face's or the voice's report as it is, both
    // side by side when both were enrolled.
    #[derive(serde::Serialize)]
    struct Both {
        face: Option<flow::EnrollReport>,
        voice: Option<voice_flow::VoiceEnrollReport>,
    }
    let report = Both { face, voice };
    let json = match (&report.face, &report.voice) {
        (Some(f), None) => serde_json::to_value(f)?,
        (None, Some(v)) => serde_json::to_value(v)?,
        _ => serde_json::to_value(&report)?,
    };
    emit(global.json, &json, |_| {
        let r = &report;
        if let Some(r) = &r.face {
            println!(
                "enrolled {} with {} of {} photo(s) (model {}, template rows {:?})",
                r.subject,
                r.accepted,
                r.photos.len(),
                r.model_id,
                r.template_rows
            );
            println!(
                "presentation-attack check: {}",
                pad::describe(r.presentation_attack_check.as_ref())
            );
        }
        if let Some(r) = &r.voice {
            for c in &r.clips {
                println!(
                    "{}: {:.1} s of speech in {:.1} s{}",
                    c.file.display(),
                    c.speech_s,
                    c.seconds,
                    c.rejected
                        .as_deref()
                        .map(|why| format!(" (not used: {why})"))
                        .unwrap_or_default()
                );
            }
            println!(
                "enrolled the voice of {} from {:.1} s of speech (model {}, template rows {:?})",
                r.subject, r.speech_s, r.model_id, r.template_rows
            );
        }
    })
}
