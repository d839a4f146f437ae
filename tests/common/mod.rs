//! Shared by the integration tests: the models and the sample photos that
//! `scripts/fetch-test-data` puts in the cache (the README's test command
//! runs it first).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use edgeid::infer::{Manifest, default_backend};
use edgeid::pipeline::{FacePipeline, PipelineConfig};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models_dir() -> PathBuf {
    repo().join("models")
}

pub fn samples_dir() -> PathBuf {
    let dir = std::env::var_os("EDGEID_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            repo().join(".cache/test-data/face_recognition-1.3.0/tests/test_images")
        });
    assert!(
        dir.join("obama.jpg").is_file(),
        "sample photos missing in {}: run scripts/fetch-test-data (scripts/test does)",
        dir.display()
    );
    dir
}

pub fn sample(name: &str) -> PathBuf {
    samples_dir().join(name)
}

/// One pipeline for the whole test binary: loading the models takes a while.
pub fn pipeline() -> &'static FacePipeline {
    static PIPELINE: OnceLock<FacePipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let manifest = Manifest::open(&models_dir()).expect("models/manifest.toml");
        FacePipeline::load(
            &manifest,
            default_backend().as_ref(),
            PipelineConfig::default(),
        )
        .expect("load face models")
    })
}
