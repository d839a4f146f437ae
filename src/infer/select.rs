//! The backend `[inference]` asks for. `auto` takes ONNX Runtime when its
//! library loads (it measured 1.7-2.3x faster per model on CPU, README
//! "Inference backends") and tract otherwise, so a machine without the
//! library runs exactly as before.

use std::path::Path;

use super::config::{BackendChoice, InferenceConfig};
use super::{Backend, InferError, tract::TractBackend};

/// The sub-directory of the state directory where TensorRT keeps engines.
pub const TRT_CACHE_DIR: &str = "trt-cache";

/// tract, whatever the config says (tests, and tools comparing backends).
pub fn default_backend() -> Box<dyn Backend> {
    Box::new(TractBackend)
}

/// The backend for this config. `state_dir` holds the TensorRT engine
/// cache; `threads` is ONNX Runtime's intra-op thread count per model run
/// (tract's is process-wide: `tract::set_inference_threads`).
pub fn backend_for(
    config: &InferenceConfig,
    state_dir: Option<&Path>,
    threads: usize,
) -> Result<Box<dyn Backend>, InferError> {
    match config.backend {
        BackendChoice::Tract => Ok(default_backend()),
        BackendChoice::Onnxruntime => onnxruntime(config, state_dir, threads),
        BackendChoice::Auto => match onnxruntime(config, state_dir, threads) {
            Ok(backend) => Ok(backend),
            Err(e) => {
                // Expected on a machine without the library: not a warning.
                tracing::info!("inference on tract: ONNX Runtime not used ({e})");
                Ok(default_backend())
            }
        },
    }
}

#[cfg(feature = "onnxruntime")]
fn onnxruntime(
    config: &InferenceConfig,
    state_dir: Option<&Path>,
    threads: usize,
) -> Result<Box<dyn Backend>, InferError> {
    use super::ort::{OrtBackend, OrtOptions};
    let options = OrtOptions {
        config: config.clone(),
        trt_cache_dir: state_dir.map(|d| d.join(TRT_CACHE_DIR)),
        threads,
    };
    Ok(Box::new(OrtBackend::new(options)?))
}

#[cfg(not(feature = "onnxruntime"))]
fn onnxruntime(
    _config: &InferenceConfig,
    _state_dir: Option<&Path>,
    _threads: usize,
) -> Result<Box<dyn Backend>, InferError> {
    Err(InferError::OrtNotBuilt)
}
