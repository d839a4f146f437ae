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

/// libonnxruntime for the ONNX Runtime backend's tests: `$ORT_DYLIB_PATH`,
/// else where `scripts/fetch-onnxruntime` puts it.
pub fn onnxruntime() -> Result<PathBuf, super::Missing> {
    let fetched = || {
        let dir = repo().join(".cache/onnxruntime");
        let arch = std::env::consts::ARCH;
        std::fs::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(arch))
            })
            .find_map(|p| {
                let capi = p.join("onnxruntime/capi");
                std::fs::read_dir(&capi)
                    .ok()?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|f| {
                        f.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so."))
                    })
            })
    };
    std::env::var_os("ORT_DYLIB_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(fetched)
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            super::Missing::setup(
                "libonnxruntime (ORT_DYLIB_PATH or .cache/onnxruntime)",
                "run scripts/fetch-onnxruntime",
            )
        })
}
