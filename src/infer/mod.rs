//! Inference: one small trait, the models it runs, and the manifest that
//! says what each model file is and how to feed it.
//!
//! - `manifest`: `models/manifest.toml`, checksums and input specs.
//! - `tensor`: the plain tensor type that crosses the trait (no backend types leak out).
//! - `tract`: the pure-Rust CPU backend, always there.
//! - `ort`: ONNX Runtime (feature `onnxruntime`), TensorRT → CUDA → CPU, library loaded at run time.
//! - `config`: the `[inference]` section; `select`: the backend it asks for.

pub mod config;
pub mod manifest;
#[cfg(feature = "onnxruntime")]
pub mod ort;
pub mod select;
pub mod tensor;
pub mod tract;

use std::path::PathBuf;

pub use crate::build_info::InferenceInfo as BackendInfo;
pub use config::{BackendChoice, InferenceConfig, InferenceConfigError, Provider};
pub use manifest::{Manifest, ModelRole, ModelSpec};
pub use select::{backend_for, default_backend};
pub use tensor::Tensor;

/// Why a model could not be loaded or run. These errors end up in logs
/// and remote answers as text, so the cause is part of the message. The
/// parse and inference-library errors (`ManifestParse`, `ModelInvalid`,
/// `RunFailed`) are kept typed in their fields but not also returned as
/// `source()`, so that a printed chain (`edgeid: {error:#}`) does not
/// repeat them.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("cannot read model manifest {path}: {source}")]
    ManifestRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model manifest {path} is invalid: {error}")]
    ManifestParse {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("model manifest {path} is invalid: {message}")]
    ManifestInvalid { path: PathBuf, message: String },
    #[error("the model manifest has no model with role {0}")]
    NoModelForRole(ModelRole),
    #[error("the model manifest has no {role} model with id {id:?}")]
    NoSuchModel { id: String, role: ModelRole },
    #[error("cannot read model file {path}: {source}")]
    ModelRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "model file {path} does not match the manifest: sha256 is {actual}, the manifest expects {expected}; reinstall the models or run scripts/convert-models"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model file {path} is not a usable ONNX model: {fault}")]
    ModelInvalid { path: PathBuf, fault: ModelFault },
    #[error("model {model}: input {what}")]
    InputMismatch { model: String, what: String },
    /// The model ran but its output is unusable.
    #[error("model {model} failed to run: {message}")]
    Run { model: String, message: String },
    /// The inference library failed while running the model.
    #[error("model {model} failed to run: {error}")]
    RunFailed { model: String, error: BackendError },
    /// `[inference] backend = "onnxruntime"` and the library cannot be loaded.
    #[error(
        "cannot load the ONNX Runtime library (tried {tried}): {error}; set [inference] library or ORT_DYLIB_PATH, or use backend = \"tract\""
    )]
    OrtLibrary { tried: String, error: BackendError },
    /// None of the requested execution providers is in the library.
    #[error(
        "none of the execution providers in [inference] providers ({requested}) is available in {}; add \"cpu\" to the list", library.display()
    )]
    NoProvider { requested: String, library: PathBuf },
    #[error("this edgeid was built without the `onnxruntime` feature")]
    OrtNotBuilt,
}

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelFault {
    /// It does not have the inputs or outputs the manifest describes.
    #[error("{0}")]
    Mismatch(String),
    /// The inference library refused it.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// An error from the inference library, kept whole. Libraries such as
/// tract report a chain of contexts; it is printed as one line
/// (`outer: cause: cause`), as the library's own alternate format does, so
/// the causes are part of the message rather than further sources.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }

    /// The library's error as it reported it.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl std::error::Error for BackendError {}

/// A loaded model, ready to run one input tensor.
///
/// Implementations are cheap to share between threads; a run does not
/// mutate the model.
pub trait Session: Send + Sync {
    /// The manifest entry this session was loaded from.
    fn spec(&self) -> &ModelSpec;
    /// Runs the model on one input tensor whose shape is the manifest's
    /// input shape; returns the outputs in manifest order.
    fn run(&self, input: Tensor) -> Result<Vec<Tensor>, InferError>;
    /// The execution provider this model runs on.
    fn provider(&self) -> &'static str {
        "cpu"
    }
    /// Whether runs from several threads at once proceed side by side
    /// (tract: each run has its own state), rather than taking turns.
    fn concurrent_runs(&self) -> bool {
        true
    }
}

/// Something that turns a verified model file into a [`Session`].
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    fn load(&self, spec: &ModelSpec, bytes: &[u8]) -> Result<Box<dyn Session>, InferError>;
    /// The backend, and the provider its models got so far.
    fn info(&self) -> BackendInfo;
}
