//! The `[inference]` section of `edgeid.toml`: which backend runs the
//! models and, for ONNX Runtime, where its library is and which execution
//! providers to try. Unknown keys are refused; every value has a documented
//! default (`edgeid.toml.example`, docs/config.md).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// ONNX Runtime when its library is found (it measured faster, see the
    /// README), tract otherwise.
    #[default]
    Auto,
    /// tract: pure Rust, always there.
    Tract,
    /// ONNX Runtime; refusing to start without its library.
    Onnxruntime,
}

/// An ONNX Runtime execution provider, in the config's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Tensorrt,
    Cuda,
    Cpu,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tensorrt => "tensorrt",
            Self::Cuda => "cuda",
            Self::Cpu => "cpu",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    pub backend: BackendChoice,
    /// ONNX Runtime execution providers in order of preference; one that
    /// this machine or library cannot give is skipped with a warning.
    pub providers: Vec<Provider>,
    /// libonnxruntime.so to load (default: `$ORT_DYLIB_PATH`, else the
    /// dynamic loader's search path).
    pub library: Option<PathBuf>,
    /// GPU used by the CUDA and TensorRT providers.
    pub device_id: u32,
    /// Partial utterances of one voice clip embedded side by side, one
    /// thread each (tract; ONNX Runtime runs them in turn).
    pub voice_partial_threads: usize,
    pub tensorrt: TensorRtConfig,
}

/// `voice_partial_threads` by default: the daemon's 2.7 s voice probe is
/// two partial utterances.
pub const DEFAULT_VOICE_PARTIAL_THREADS: usize = 2;
/// The most `voice_partial_threads` accepted.
pub const MAX_VOICE_PARTIAL_THREADS: usize = 16;

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            providers: vec![Provider::Tensorrt, Provider::Cuda, Provider::Cpu],
            library: None,
            device_id: 0,
            voice_partial_threads: DEFAULT_VOICE_PARTIAL_THREADS,
            tensorrt: TensorRtConfig::default(),
        }
    }
}

/// `[inference.tensorrt]`: the TensorRT execution provider's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TensorRtConfig {
    /// Build FP16 engines (Jetson GPUs run them about twice as fast).
    pub fp16: bool,
    /// Keep built engines and the timing cache in `<state_dir>/trt-cache`:
    /// building them takes minutes on a Jetson, loading them seconds.
    pub engine_cache: bool,
    /// TensorRT builder workspace limit, MiB.
    pub workspace_mb: u64,
}

impl Default for TensorRtConfig {
    fn default() -> Self {
        Self {
            fp16: true,
            engine_cache: true,
            workspace_mb: 1024,
        }
    }
}

/// The largest workspace accepted (64 GiB, more than any Jetson has).
pub const MAX_WORKSPACE_MB: u64 = 64 * 1024;

/// A value in `[inference]` that cannot work; each names its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceConfigError {
    #[error("inference.providers must list at least one provider")]
    NoProviders,
    #[error("inference.providers lists {0} twice")]
    DuplicateProvider(Provider),
    #[error("inference.tensorrt.workspace_mb must be 1..={MAX_WORKSPACE_MB} (it is {0})")]
    Workspace(u64),
    #[error(
        "inference.backend = \"onnxruntime\" but this edgeid was built without the `onnxruntime` feature"
    )]
    NotBuilt,
    #[error("inference.library is empty")]
    EmptyLibrary,
    #[error("inference.voice_partial_threads must be 1..={MAX_VOICE_PARTIAL_THREADS} (it is {0})")]
    VoicePartialThreads(usize),
}

impl InferenceConfig {
    pub fn validate(&self) -> Result<(), InferenceConfigError> {
        if self.providers.is_empty() {
            return Err(InferenceConfigError::NoProviders);
        }
        for (i, p) in self.providers.iter().enumerate() {
            if self.providers[..i].contains(p) {
                return Err(InferenceConfigError::DuplicateProvider(*p));
            }
        }
        let workspace = self.tensorrt.workspace_mb;
        if workspace == 0 || workspace > MAX_WORKSPACE_MB {
            return Err(InferenceConfigError::Workspace(workspace));
        }
        if self.backend == BackendChoice::Onnxruntime && !cfg!(feature = "onnxruntime") {
            return Err(InferenceConfigError::NotBuilt);
        }
        if self
            .library
            .as_ref()
            .is_some_and(|l| l.as_os_str().is_empty())
        {
            return Err(InferenceConfigError::EmptyLibrary);
        }
        if !(1..=MAX_VOICE_PARTIAL_THREADS).contains(&self.voice_partial_threads) {
            return Err(InferenceConfigError::VoicePartialThreads(
                self.voice_partial_threads,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let c: InferenceConfig = toml::from_str("").expect("parse");
        assert_eq!(c, InferenceConfig::default());
        assert_eq!(c.validate(), Ok(()));
        assert!(toml::from_str::<InferenceConfig>("provider = [\"cpu\"]").is_err());
        assert!(toml::from_str::<InferenceConfig>("providers = [\"opencl\"]").is_err());
        assert!(toml::from_str::<InferenceConfig>("backend = \"tensorflow\"").is_err());
    }

    #[test]
    fn each_broken_rule_names_its_key() {
        for (text, key) in [
            ("providers = []", "inference.providers"),
            ("providers = [\"cpu\", \"cpu\"]", "inference.providers"),
            (
                "[tensorrt]\nworkspace_mb = 0",
                "inference.tensorrt.workspace_mb",
            ),
            (
                "[tensorrt]\nworkspace_mb = 100000000",
                "inference.tensorrt.workspace_mb",
            ),
            ("library = \"\"", "inference.library"),
            (
                "voice_partial_threads = 0",
                "inference.voice_partial_threads",
            ),
            (
                "voice_partial_threads = 17",
                "inference.voice_partial_threads",
            ),
        ] {
            let c: InferenceConfig = toml::from_str(text).expect(text);
            let e = c.validate().expect_err(text);
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
    }
}
