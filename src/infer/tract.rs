//! The default backend: tract-onnx, pure Rust, identical on x86-64 and aarch64.

// tract's prelude brings the extension traits (fact builders, runnables)
// its API is spread over; naming them one by one breaks between releases.
use tract_onnx::prelude::*;

use super::{
    Backend, BackendError, BackendInfo, InferError, ModelFault, ModelSpec, Session,
    Tensor as PlainTensor,
};

pub struct TractBackend;

/// The tract version compiled in (tract-linalg is pinned to tract-onnx's).
const TRACT_VERSION: &str = "0.23.9";

struct TractSession {
    spec: ModelSpec,
    plan: Arc<TypedRunnableModel>,
}

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            backend: "tract",
            provider: Some("cpu"),
            requested: Vec::new(),
            library: None,
            version: Some(TRACT_VERSION.to_owned()),
        }
    }

    fn load(&self, spec: &ModelSpec, bytes: &[u8]) -> Result<Box<dyn Session>, InferError> {
        let invalid = |fault: ModelFault| InferError::ModelInvalid {
            path: spec.file.clone().into(),
            fault,
        };
        let refused = |e: TractError| invalid(BackendError::new(e).into());
        let mismatch = |what: String| invalid(ModelFault::Mismatch(what));
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(refused)?;
        let inputs = model.input_outlets().map_err(refused)?;
        if inputs.len() != 1 {
            return Err(mismatch(format!("has {} inputs, expected 1", inputs.len())));
        }
        let input_name = model.node(inputs[0].node).name.clone();
        if input_name != spec.input.name {
            return Err(InferError::InputMismatch {
                model: spec.id.clone(),
                what: format!(
                    "is named {input_name:?} in the file but {:?} in the manifest",
                    spec.input.name
                ),
            });
        }
        let outputs = model.output_outlets().map_err(refused)?;
        if outputs.len() != spec.outputs.len() {
            return Err(mismatch(format!(
                "has {} outputs, the manifest lists {}",
                outputs.len(),
                spec.outputs.len()
            )));
        }
        // The files keep a symbolic batch dimension; pin it (and the rest of
        // the shape) so tract can optimise for one concrete input.
        model = model
            .with_input_fact(0, f32::fact(spec.input.shape.clone()).into())
            .map_err(refused)?;
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(refused)?;
        crate::build_info::record_inference(self.info());
        Ok(Box::new(TractSession {
            spec: spec.clone(),
            plan,
        }))
    }
}

impl Session for TractSession {
    fn spec(&self) -> &ModelSpec {
        &self.spec
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
        let run_err = |e: TractError| InferError::RunFailed {
            model: self.spec.id.clone(),
            error: BackendError::new(e),
        };
        let tensor = Tensor::from_shape(&input.shape, &input.data).map_err(run_err)?;
        let outputs = self
            .plan
            .run(tvec!(TValue::from(tensor)))
            .map_err(run_err)?;
        outputs
            .iter()
            .map(|t| {
                let view = t.to_plain_array_view::<f32>().map_err(run_err)?;
                Ok(PlainTensor {
                    shape: view.shape().to_vec(),
                    data: view.iter().copied().collect(),
                })
            })
            .collect()
    }
}

/// Sets how many threads tract uses inside one model run (matrix products
/// and convolutions), process-wide. 1 keeps every run on the caller's thread.
pub fn set_inference_threads(threads: usize) {
    use tract_linalg::multithread::{Executor, set_default_executor};
    let executor = if threads > 1 {
        Executor::multithread(threads)
    } else {
        Executor::SingleThread
    };
    set_default_executor(executor);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reported_version_is_the_pinned_one() {
        let cargo = include_str!("../../Cargo.toml");
        let pin = format!("tract-linalg = {{ version = \"={}\"", super::TRACT_VERSION);
        assert!(cargo.contains(&pin), "{pin}");
    }
}
