//! Loading the models and the face pipeline for a verb, with errors that
//! say what to do.

use anyhow::Context;

use edgeid::infer::{Manifest, default_backend};
use edgeid::pipeline::{FacePipeline, PipelineConfig};

use super::GlobalArgs;

/// Opens the models directory's manifest.
pub fn open_manifest(global: &GlobalArgs) -> anyhow::Result<Manifest> {
    let dir = global.models_dir();
    Manifest::open(&dir).with_context(|| format!("opening the models in {}", dir.display()))
}

/// The pipeline of the config's `[face]` section.
pub fn load_pipeline(global: &GlobalArgs) -> anyhow::Result<FacePipeline> {
    let face = super::state::load_config(global)?.face;
    load_pipeline_with(
        global,
        PipelineConfig {
            embedder: face.embedder,
            ..PipelineConfig::default()
        },
    )
}

pub fn load_pipeline_with(
    global: &GlobalArgs,
    mut config: PipelineConfig,
) -> anyhow::Result<FacePipeline> {
    config.detector.range = global.detector;
    let manifest = open_manifest(global)?;
    FacePipeline::load(&manifest, default_backend().as_ref(), config)
        .context("loading the face models (run `edgeid models check`)")
}
