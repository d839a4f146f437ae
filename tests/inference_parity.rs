//! The ONNX Runtime backend against tract: every model of models/ run
//! through both on the same real input (a sample photo resized to the
//! model's input), the provider chain's fallback, and the daemon's and CLI's
//! behaviour with and without the library.
//!
//! Needs libonnxruntime (`scripts/fetch-onnxruntime`, from the PyPI wheel):
//! under `CI=1` its absence fails these tests.

mod support;

use std::path::{Path, PathBuf};

use edgeid::infer::ort::{OrtBackend, OrtOptions};
use edgeid::infer::{
    Backend, BackendChoice, InferError, InferenceConfig, Provider, Tensor, default_backend,
};
use edgeid::vision::warp::to_input_tensor;
use support::models::{manifest, onnxruntime};
use support::{edgeid, samples};

fn ort_backend(library: &Path, providers: &[Provider]) -> Result<OrtBackend, InferError> {
    OrtBackend::new(OrtOptions {
        config: InferenceConfig {
            backend: BackendChoice::Onnxruntime,
            providers: providers.to_vec(),
            library: Some(library.to_owned()),
            ..InferenceConfig::default()
        },
        trt_cache_dir: None,
        threads: 1,
    })
}

/// The providers the parity test asks of ONNX Runtime: the CPU here;
/// `scripts/gpu-check` sets `EDGEID_PARITY_PROVIDERS=tensorrt,cuda` on an
/// NVIDIA machine, and the first one must then be the one obtained.
fn parity_providers() -> Vec<Provider> {
    let Ok(list) = std::env::var("EDGEID_PARITY_PROVIDERS") else {
        return vec![Provider::Cpu];
    };
    list.split(',')
        .map(|name| {
            serde_json::from_value(serde_json::Value::String(name.trim().to_owned()))
                .unwrap_or_else(|e| panic!("EDGEID_PARITY_PROVIDERS: {name:?}: {e}"))
        })
        .collect()
}

/// The sample photo at the model's input size, normalised as the manifest says.
fn photo_input(photo: &image::RgbImage, spec: &edgeid::infer::ModelSpec) -> Tensor {
    if spec.input.layout == edgeid::infer::manifest::Layout::Ntf {
        // A feature sequence (the voice embedder's mel frames): the photo's
        // grey levels, as non-negative powers, the same on both backends.
        let n: usize = spec.input.shape.iter().product();
        let grey = image::imageops::grayscale(photo);
        let data = grey
            .pixels()
            .cycle()
            .take(n)
            .map(|p| f32::from(p.0[0]) / 255.0)
            .collect();
        return Tensor::new(spec.input.shape.clone(), data).expect("feature tensor");
    }
    let (h, w) = spec.input.image_size();
    let resized = image::imageops::resize(
        photo,
        u32::try_from(w).expect("width"),
        u32::try_from(h).expect("height"),
        image::imageops::FilterType::Triangle,
    );
    let rgb: Vec<f32> = resized.into_raw().into_iter().map(f32::from).collect();
    to_input_tensor(&rgb, &spec.input)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn every_model_gives_the_same_outputs_on_both_backends() {
    let library = require!(onnxruntime());
    let photos = require!(samples());
    let photo = image::open(photos.join("obama.jpg"))
        .expect("photo")
        .to_rgb8();
    let providers = parity_providers();
    let ort = ort_backend(&library, &providers).expect("ONNX Runtime backend");
    let tract = default_backend();
    let manifest = manifest();
    assert!(
        manifest.models().len() >= 4,
        "the manifest lists the models"
    );
    for spec in manifest.models() {
        let bytes = manifest.read_verified(spec).expect("verified model");
        let input = photo_input(&photo, spec);
        let on_tract = tract.load(spec, &bytes).expect("tract").run(input.clone());
        let on_ort = ort.load(spec, &bytes).expect("ort").run(input);
        let (on_tract, on_ort) = (on_tract.expect("tract run"), on_ort.expect("ort run"));
        assert_eq!(on_tract.len(), spec.outputs.len(), "{}", spec.id);
        assert_eq!(on_ort.len(), on_tract.len(), "{}", spec.id);
        for ((t, o), out) in on_tract.iter().zip(&on_ort).zip(&spec.outputs) {
            assert_eq!(t.shape, o.shape, "{} {}", spec.id, out.name);
            let scale = t.data.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = t
                .data
                .iter()
                .zip(&o.data)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            let cos = cosine(&t.data, &o.data);
            println!(
                "{:<16} {:<12} max |ort - tract| {diff:.2e} (values up to {scale:.1}), cosine {cos:.7}",
                spec.id, out.name
            );
            assert!(
                diff <= 1e-3 * scale,
                "{} {}: max abs diff {diff}",
                spec.id,
                out.name
            );
            // A constant-zero output has no direction to compare.
            if t.data.iter().any(|v| *v != 0.0) {
                assert!(cos >= 0.9999, "{} {}: cosine {cos}", spec.id, out.name);
            }
        }
    }
    let info = ort.info();
    assert_eq!(
        (info.backend, info.provider),
        ("onnxruntime", Some(providers[0].as_str()))
    );
    assert!(
        info.version.is_some_and(|v| v.starts_with("1.")),
        "{:?}",
        ort.info()
    );
}

#[test]
fn tensorrt_asked_of_the_cpu_library_falls_back_to_cpu_and_says_so() {
    let library = require!(onnxruntime());
    let manifest = manifest();
    let ort = ort_backend(
        &library,
        &[Provider::Tensorrt, Provider::Cuda, Provider::Cpu],
    )
    .expect("falls back rather than failing");
    let spec = &manifest.models()[0];
    let bytes = manifest.read_verified(spec).expect("verified");
    let session = ort.load(spec, &bytes).expect("loads on CPU");
    assert_eq!(session.provider(), "cpu");
    let info = ort.info();
    assert_eq!(info.provider, Some("cpu"));
    assert_eq!(info.requested, ["tensorrt", "cuda", "cpu"]);
    // What the audit records is what was obtained.
    let build = serde_json::to_value(edgeid::build_info::BUILD).expect("json");
    assert_eq!(build["inference"]["provider"], "cpu", "{build}");

    // Without "cpu" in the chain, no GPU provider is an error naming them.
    let e = ort_backend(&library, &[Provider::Tensorrt, Provider::Cuda])
        .err()
        .expect("no provider left");
    assert!(matches!(e, InferError::NoProvider { .. }), "{e}");
    assert!(e.to_string().contains("tensorrt, cuda"), "{e}");
}

fn write_config(dir: &Path, inference: &str) -> PathBuf {
    let path = dir.join("edgeid.toml");
    std::fs::write(&path, format!("[inference]\n{inference}\n")).expect("config");
    path
}

fn models_check(config: &Path, ort_dylib: Option<&Path>) -> std::process::Output {
    let mut cmd = edgeid();
    cmd.args(["--json", "models", "check", "--config"])
        .arg(config);
    match ort_dylib {
        Some(lib) => cmd.env("ORT_DYLIB_PATH", lib),
        None => cmd.env_remove("ORT_DYLIB_PATH"),
    };
    cmd.output().expect("edgeid runs")
}

#[test]
fn models_check_reports_the_backend_and_provider_obtained() {
    let library = require!(onnxruntime());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "providers = [\"tensorrt\", \"cpu\"]");
    let out = models_check(&config, Some(&library));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["inference"]["backend"], "onnxruntime", "{report}");
    assert_eq!(report["inference"]["provider"], "cpu", "{report}");
    for model in report["models"].as_array().expect("models") {
        assert_eq!(model["provider"], "cpu", "{model}");
    }
    // One warning for the provider the library lacks, not one per model.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("tensorrt requested").count(), 1, "{stderr}");
}

#[test]
fn without_the_library_auto_runs_on_tract_and_onnxruntime_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-libonnxruntime.so");
    let auto = write_config(
        dir.path(),
        &format!("library = {:?}", missing.to_string_lossy()),
    );
    let out = models_check(&auto, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["inference"]["backend"], "tract", "{report}");

    let forced = write_config(
        dir.path(),
        &format!(
            "backend = \"onnxruntime\"\nlibrary = {:?}",
            missing.to_string_lossy()
        ),
    );
    let out = models_check(&forced, None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot load the ONNX Runtime library"),
        "{stderr}"
    );
    assert!(stderr.contains("no-libonnxruntime.so"), "{stderr}");
}
