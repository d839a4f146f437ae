//! The ONNX Runtime backend (cargo feature `onnxruntime`): libonnxruntime is
//! loaded at run time (`dlopen`), so the binary neither links nor ships it
//! and runs on tract where it is absent.
//!
//! Execution providers are tried in the configured order (TensorRT → CUDA →
//! CPU by default). One this library was not built with, or that fails to
//! register (no GPU, no libnvinfer), is skipped with one warning per
//! process, and the provider actually obtained is reported.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider, ExecutionProviderDispatch};
use ort::session::builder::SessionBuilder;

use super::config::{InferenceConfig, Provider};
use super::{
    Backend, BackendError, BackendInfo, InferError, ModelFault, ModelSpec, Session,
    Tensor as PlainTensor,
};

/// What the ONNX Runtime backend is asked for.
#[derive(Debug, Clone)]
pub struct OrtOptions {
    pub config: InferenceConfig,
    /// Where TensorRT keeps built engines and its timing cache
    /// (`<state_dir>/trt-cache`); `None` disables the cache.
    pub trt_cache_dir: Option<PathBuf>,
    /// Intra-op threads per model run.
    pub threads: usize,
}

/// The loaded library: loaded once per process (ONNX Runtime's API table is
/// a process-wide singleton), shared by every backend built after it.
struct Runtime {
    env: Environment,
    library: PathBuf,
    version: String,
}

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

/// The library names tried when neither `[inference] library` nor
/// `ORT_DYLIB_PATH` names one: the dynamic loader's search path.
const DEFAULT_NAMES: [&str; 2] = ["libonnxruntime.so", "libonnxruntime.so.1"];

/// The candidates for the library, most specific first.
pub fn library_candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = configured {
        return vec![path.to_owned()];
    }
    match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(path) => vec![PathBuf::from(path)],
        None => DEFAULT_NAMES.iter().map(PathBuf::from).collect(),
    }
}

fn runtime(configured: Option<&Path>) -> Result<Arc<Runtime>, InferError> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(rt) = slot.as_ref() {
        return Ok(rt.clone());
    }
    let candidates = library_candidates(configured);
    let mut last = None;
    for path in &candidates {
        match ort::init_from(path) {
            Ok(builder) => {
                let env =
                    builder
                        .with_name("edgeid")
                        .build()
                        .map_err(|e| InferError::OrtLibrary {
                            tried: path.display().to_string(),
                            error: BackendError::new(e),
                        })?;
                let rt = Arc::new(Runtime {
                    env,
                    library: path.clone(),
                    version: version_of(path, ort::info()),
                });
                tracing::info!(library = %path.display(), version = %rt.version, "ONNX Runtime loaded");
                *slot = Some(rt.clone());
                return Ok(rt);
            }
            Err(e) => last = Some(e),
        }
    }
    let tried = candidates
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(InferError::OrtLibrary {
        tried,
        error: match last {
            Some(e) => BackendError::new(e),
            None => BackendError::new("no library to try"),
        },
    })
}

/// The library's version: from its real file name (`libonnxruntime.so.1.31.1`,
/// through symlinks) or from its build string when a release branch names
/// it (`git-branch=rel-1.20.0`); the C API does not expose it once loaded.
fn version_of(library: &Path, build_info: &str) -> String {
    let real = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_owned());
    let from_name = real
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .filter(|v| v.split('.').count() == 3)
        .map(str::to_owned);
    from_name
        .or_else(|| {
            build_info
                .split([',', ' '])
                .find_map(|part| part.strip_prefix("git-branch=rel-"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether libonnxruntime can be loaded (`auto` picks ONNX Runtime then).
pub fn library_present(configured: Option<&Path>) -> bool {
    runtime(configured).is_ok()
}

pub struct OrtBackend {
    runtime: Arc<Runtime>,
    options: OrtOptions,
    /// The requested providers this library was built with, in order.
    usable: Vec<Provider>,
    /// The providers that failed, each warned about once.
    warned: Mutex<BTreeSet<&'static str>>,
    /// The least preferred provider a model got (what `models check`,
    /// `bench` and the audit report), once a model is loaded.
    obtained: Mutex<Option<usize>>,
}

impl OrtBackend {
    pub fn new(options: OrtOptions) -> Result<Self, InferError> {
        let runtime = runtime(options.config.library.as_deref())?;
        let mut usable = Vec::new();
        let mut missing = Vec::new();
        for &p in &options.config.providers {
            let built = match p {
                Provider::Cpu => Ok(true),
                Provider::Cuda => ep::CUDA::is_available(),
                Provider::Tensorrt => ep::TensorRT::is_available(),
            };
            match built {
                Ok(true) => usable.push(p),
                Ok(false) | Err(_) => missing.push(p.as_str()),
            }
        }
        if usable.is_empty() {
            return Err(InferError::NoProvider {
                requested: join(&options.config.providers),
                library: runtime.library.clone(),
            });
        }
        // Once per process: `bench` builds a backend per thread count.
        static WARNED: std::sync::Once = std::sync::Once::new();
        if !missing.is_empty() {
            WARNED.call_once(|| {
                tracing::warn!(
                library = %runtime.library.display(),
                "ONNX Runtime: {} requested but this library was not built with it; using {}",
                    missing.join(", "),
                    usable[0]
                );
            });
        }
        Ok(Self {
            runtime,
            options,
            usable,
            warned: Mutex::new(BTreeSet::new()),
            obtained: Mutex::new(None),
        })
    }

    fn dispatch(&self, p: Provider) -> Option<ExecutionProviderDispatch> {
        let c = &self.options.config;
        let device = i32::try_from(c.device_id).unwrap_or(i32::MAX);
        match p {
            Provider::Cpu => None,
            Provider::Cuda => Some(ep::CUDA::default().with_device_id(device).build()),
            Provider::Tensorrt => {
                let workspace =
                    usize::try_from(c.tensorrt.workspace_mb << 20).unwrap_or(usize::MAX);
                let mut trt = ep::TensorRT::default()
                    .with_device_id(device)
                    .with_fp16(c.tensorrt.fp16)
                    .with_max_workspace_size(workspace);
                if let Some(dir) = &self.options.trt_cache_dir
                    && c.tensorrt.engine_cache
                {
                    let dir = dir.display().to_string();
                    trt = trt
                        .with_engine_cache(true)
                        .with_engine_cache_path(&dir)
                        .with_timing_cache(true)
                        .with_timing_cache_path(&dir);
                }
                Some(trt.build().error_on_failure())
            }
        }
    }

    fn warn_once(&self, p: Provider, model: &str, error: &dyn std::fmt::Display) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.insert(p.as_str()) {
            tracing::warn!(%model, "ONNX Runtime: {p} requested but unavailable ({error}); falling back");
        }
    }

    fn builder(&self) -> Result<SessionBuilder, ort::Error> {
        // No spinning: ORT's idle workers otherwise keep cores busy after
        // every run, which on a 2-core board starves the stages between
        // model runs (the voice mel front end ran 13x slower beside them).
        Ok(ort::session::Session::builder(&self.runtime.env)?
            .with_intra_threads(self.options.threads.max(1))?
            .with_intra_op_spinning(false)?
            .with_inter_op_spinning(false)?)
    }

    /// A session on the first provider of the chain that works for this
    /// model, and that provider's index in `usable`.
    fn commit(
        &self,
        spec: &ModelSpec,
        bytes: &[u8],
    ) -> Result<(ort::session::Session, usize), ort::Error> {
        let mut last = None;
        for (i, &p) in self.usable.iter().enumerate() {
            let mut builder = self.builder()?;
            if let Some(ep) = self.dispatch(p) {
                if let Err(e) = ep.register(&mut builder) {
                    self.warn_once(p, &spec.id, &e);
                    last = Some(e);
                    continue;
                }
                // Nodes the preferred provider cannot take go to the next
                // ones registered after it (TensorRT → CUDA), then CPU.
                for &q in &self.usable[i + 1..] {
                    if let Some(next) = self.dispatch(q) {
                        let _ = next.register(&mut builder);
                    }
                }
            }
            match builder.commit_from_memory(bytes) {
                Ok(session) => return Ok((session, i)),
                Err(e) if p != Provider::Cpu => {
                    self.warn_once(p, &spec.id, &e);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ort::Error::new("no execution provider left to try")))
    }

    /// The provider the models got so far (the least preferred one).
    pub fn provider(&self) -> Option<Provider> {
        let obtained = *self.obtained.lock().unwrap_or_else(PoisonError::into_inner);
        obtained.map(|i| self.usable[i])
    }
}

fn join(providers: &[Provider]) -> String {
    providers
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

struct OrtSession {
    spec: ModelSpec,
    provider: Provider,
    /// `Session::run` takes `&mut self`; the trait's sessions are shared.
    session: Mutex<ort::session::Session>,
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        "onnxruntime"
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            backend: "onnxruntime",
            provider: self.provider().map(Provider::as_str),
            requested: self
                .options
                .config
                .providers
                .iter()
                .map(|p| p.as_str())
                .collect(),
            library: Some(self.runtime.library.display().to_string()),
            version: Some(self.runtime.version.clone()),
        }
    }

    fn load(&self, spec: &ModelSpec, bytes: &[u8]) -> Result<Box<dyn Session>, InferError> {
        let invalid = |fault: ModelFault| InferError::ModelInvalid {
            path: spec.file.clone().into(),
            fault,
        };
        let (session, index) = self
            .commit(spec, bytes)
            .map_err(|e| invalid(BackendError::new(e).into()))?;
        let inputs = session.inputs();
        if inputs.len() != 1 {
            return Err(invalid(ModelFault::Mismatch(format!(
                "has {} inputs, expected 1",
                inputs.len()
            ))));
        }
        let input_name = inputs[0].name().to_owned();
        if input_name != spec.input.name {
            return Err(InferError::InputMismatch {
                model: spec.id.clone(),
                what: format!(
                    "is named {input_name:?} in the file but {:?} in the manifest",
                    spec.input.name
                ),
            });
        }
        if session.outputs().len() != spec.outputs.len() {
            return Err(invalid(ModelFault::Mismatch(format!(
                "has {} outputs, the manifest lists {}",
                session.outputs().len(),
                spec.outputs.len()
            ))));
        }
        {
            let mut obtained = self.obtained.lock().unwrap_or_else(PoisonError::into_inner);
            *obtained = Some(obtained.map_or(index, |o| o.max(index)));
        }
        let provider = self.usable[index];
        crate::build_info::record_inference(self.info());
        tracing::debug!(model = %spec.id, %provider, "model loaded on ONNX Runtime");
        Ok(Box::new(OrtSession {
            spec: spec.clone(),
            provider,
            session: Mutex::new(session),
        }))
    }
}

impl Session for OrtSession {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn provider(&self) -> &'static str {
        self.provider.as_str()
    }

    /// Runs take turns on the session's lock.
    fn concurrent_runs(&self) -> bool {
        false
    }

    fn run(&self, input: PlainTensor) -> Result<Vec<PlainTensor>, InferError> {
        if input.shape != self.spec.input.shape {
            return Err(InferError::InputMismatch {
                model: self.spec.id.clone(),
                what: format!(
                    "shape {:?} given, the model takes {:?}",
                    input.shape, self.spec.input.shape
                ),
            });
        }
        let run_err = |e: ort::Error| InferError::RunFailed {
            model: self.spec.id.clone(),
            error: BackendError::new(e),
        };
        let tensor = ort::value::Tensor::from_array((input.shape, input.data)).map_err(run_err)?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(ort::inputs![tensor]).map_err(run_err)?;
        outputs
            .values()
            .map(|value| {
                let (shape, data) = value.try_extract_tensor::<f32>().map_err(run_err)?;
                Ok(PlainTensor {
                    shape: shape
                        .iter()
                        .map(|&d| usize::try_from(d).unwrap_or(0))
                        .collect(),
                    data: data.to_vec(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_build_string() {
        let none = Path::new("/nonexistent/libonnxruntime.so");
        assert_eq!(
            version_of(
                none,
                "ORT Build Info: git-branch=rel-1.20.0, git-commit-id=abc"
            ),
            "1.20.0"
        );
        assert_eq!(version_of(none, "git-branch=HEAD"), "unknown");
        let named = Path::new("/nonexistent/libonnxruntime.so.1.31.1");
        assert_eq!(version_of(named, "git-branch=HEAD"), "1.31.1");
    }

    #[test]
    fn a_configured_library_is_the_only_candidate() {
        let lib = Path::new("/opt/ort/libonnxruntime.so");
        assert_eq!(library_candidates(Some(lib)), vec![lib.to_owned()]);
    }
}
