//! The committed face models (models/ is part of the repository, so a
//! missing model is a failure, never a skip) and one loaded pipeline.

use std::path::PathBuf;
use std::sync::OnceLock;

use edgeid::infer::{Manifest, default_backend};
use edgeid::pipeline::{FacePipeline, PipelineConfig};

use super::repo;

pub fn models_dir() -> PathBuf {
    repo().join("models")
}

pub fn manifest() -> Manifest {
    Manifest::open(&models_dir()).expect("models/manifest.toml")
}

/// One pipeline for the whole test binary: loading the models takes a while.
pub fn pipeline() -> &'static FacePipeline {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        FacePipeline::load(
            &manifest(),
            default_backend().as_ref(),
            PipelineConfig::default(),
        )
        .expect("load face models")
    })
}
