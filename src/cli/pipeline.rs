//! Loading the models and the face pipeline for a verb, with errors that
//! say what to do.

use anyhow::Context;

use edgeid::config::Config;
use edgeid::infer::{Backend, InferenceConfig, Manifest, backend_for};
use edgeid::pipeline::{FacePipeline, PipelineConfig};
use edgeid::voice::{VoiceEmbedder, VoicePipeline};

use super::GlobalArgs;

/// Opens the models directory's manifest.
pub fn open_manifest(global: &GlobalArgs) -> anyhow::Result<Manifest> {
    let dir = global.models_dir();
    Manifest::open(&dir).with_context(|| format!("opening the models in {}", dir.display()))
}

/// The pipeline of the config's `[face]` section.
pub fn load_pipeline(global: &GlobalArgs) -> anyhow::Result<FacePipeline> {
    let face = super::state::load_config(global)?.face;
    load_pipeline_with(global, face.pipeline())
}

pub fn load_pipeline_with(
    global: &GlobalArgs,
    mut config: PipelineConfig,
) -> anyhow::Result<FacePipeline> {
    config.detector.range = global.detector;
    let backend = config_backend(global)?;
    load_with_backend(global, backend.as_ref(), config)
}

/// The face pipeline of a `[face]` section on a given backend (`bench`).
#[cfg(feature = "eval")]
pub fn load_pipeline_on(
    global: &GlobalArgs,
    backend: &dyn Backend,
    face: &edgeid::config::FaceConfig,
) -> anyhow::Result<FacePipeline> {
    let mut config = face.pipeline();
    config.detector.range = global.detector;
    load_with_backend(global, backend, config)
}

fn load_with_backend(
    global: &GlobalArgs,
    backend: &dyn Backend,
    config: PipelineConfig,
) -> anyhow::Result<FacePipeline> {
    let manifest = open_manifest(global)?;
    FacePipeline::load(&manifest, backend, config)
        .context("loading the face models (run `edgeid models check`)")
}

/// The voice stages and embedder, on the config's backend, with its
/// `voice_partial_threads`.
pub fn load_voice(global: &GlobalArgs) -> anyhow::Result<VoicePipeline> {
    let manifest = open_manifest(global)?;
    let inference = Config::load(global.config.as_deref())?.inference;
    let backend = inference_backend(global, &inference, 1)?;
    let embedder = VoiceEmbedder::load(&manifest, backend.as_ref())
        .context("loading the voice embedder (run `edgeid models check`)")?
        .with_threads(inference.voice_partial_threads);
    Ok(VoicePipeline::new(embedder))
}

/// The inference backend the config's `[inference]` asks for (one thread
/// per model run, as the daemon).
pub fn config_backend(global: &GlobalArgs) -> anyhow::Result<Box<dyn Backend>> {
    let config = Config::load(global.config.as_deref())?;
    inference_backend(global, &config.inference, 1)
}

pub fn inference_backend(
    global: &GlobalArgs,
    inference: &InferenceConfig,
    threads: usize,
) -> anyhow::Result<Box<dyn Backend>> {
    backend_for(inference, Some(&global.state_dir), threads)
        .context("starting the inference backend ([inference] in the config)")
}
