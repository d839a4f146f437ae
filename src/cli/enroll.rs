//! `edgeid enroll --subject ID FILE...`: only photos that pass the face and
//! quality checks become templates; each rejected one is named with why.

use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use super::flow;
use super::output::emit;
use super::state::{PipelineCell, load_config, open_unlocked};

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Pseudonymous subject id (letters, digits, '.', '_', '-', '@').
    #[arg(long)]
    pub subject: String,
    /// Replace the subject's existing templates (e.g. after a model change).
    #[arg(long)]
    pub replace: bool,
    /// Photos of the subject (JPEG or PNG).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(global: &GlobalArgs, args: EnrollArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let (mut store, keys) = open_unlocked(global, &config)?;
    let mut cell = PipelineCell::new(global);
    let pipeline = cell.get()?;
    let report = flow::enroll(
        &mut store,
        &keys,
        pipeline,
        &args.subject,
        &args.files,
        args.replace,
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
    })
}
