//! What this binary is: version, git revision and features, recorded in
//! every audit record and shown by `--version`; and what it runs the models
//! on (backend, execution provider, library), recorded once known.

use std::sync::{PoisonError, RwLock};

use serde::Serialize;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_REVISION: &str = env!("EDGEID_GIT_REVISION");
pub const FEATURES: &str = env!("EDGEID_FEATURES");

#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    pub version: &'static str,
    pub git_revision: &'static str,
    pub features: &'static str,
    /// The inference backend the models were last loaded with (`null`
    /// before any model is loaded).
    pub inference: RuntimeInference,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: VERSION,
    git_revision: GIT_REVISION,
    features: FEATURES,
    inference: RuntimeInference,
};

/// "0.1.0 (rev abc123, features: none)", for `--version`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (rev ",
    env!("EDGEID_GIT_REVISION"),
    ", features: ",
    env!("EDGEID_FEATURES"),
    ")"
);

/// What runs the models: the backend, and for ONNX Runtime the execution
/// provider obtained, those asked for, and the library loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InferenceInfo {
    /// "tract" or "onnxruntime".
    pub backend: &'static str,
    /// The execution provider the models got ("cpu", "cuda", "tensorrt";
    /// the least preferred when models differ). `None` before a model loads.
    pub provider: Option<&'static str>,
    /// The providers asked for, in order of preference.
    pub requested: Vec<&'static str>,
    pub library: Option<String>,
    pub version: Option<String>,
}

impl std::fmt::Display for InferenceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend)?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        if let Some(p) = self.provider {
            write!(f, ", provider {p}")?;
        }
        if !self.requested.is_empty() {
            write!(f, " (asked: {})", self.requested.join(", "))?;
        }
        if let Some(l) = &self.library {
            write!(f, ", library {l}")?;
        }
        Ok(())
    }
}

static INFERENCE: RwLock<Option<InferenceInfo>> = RwLock::new(None);

/// Records what the models were loaded with (the infer backends call it).
pub fn record_inference(info: InferenceInfo) {
    *INFERENCE.write().unwrap_or_else(PoisonError::into_inner) = Some(info);
}

/// What the models were last loaded with, if any were.
pub fn inference() -> Option<InferenceInfo> {
    INFERENCE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Serialises as [`inference()`] at the time of serialisation, so the
/// constant [`BUILD`] carries the run-time choice into each audit record.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeInference;

impl Serialize for RuntimeInference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        inference().serialize(serializer)
    }
}
