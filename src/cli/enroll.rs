//! `edgeid enroll --subject ID FILE...`: only photos that pass the face,
//! quality and (when a PAD model is available) presentation-attack checks
//! become templates; each rejected one is named with why.

use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use super::flow;
use super::output::emit;
use super::pad;
use super::state::{PipelineCell, load_config, open_unlocked};

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
    /// Photos of the subject (JPEG or PNG).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: EnrollArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let (mut store, keys) = open_unlocked(global, &config)?;
    let pad = pad::open_check(global, args.pad_model.as_deref(), args.pad_threshold)?;
    let mut cell = PipelineCell::new(global);
    let pipeline = cell.get()?;
    let report = flow::enroll(
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
    )?;
    emit(global.json, &report, |r| {
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
    })
}
