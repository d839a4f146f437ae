//! Model files are verified against the manifest: an altered, truncated or
//! missing file, or a manifest that lies about the input, is refused with an
//! error naming the file and what differs.

mod support;

use std::path::Path;

use edgeid::infer::{InferError, Manifest, ModelRole, Tensor, default_backend};
use support::models::{manifest, models_dir};

/// A copy of the models directory the test may damage.
fn copy_models() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(models_dir()).expect("models dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

fn load(dir: &Path, role: ModelRole) -> Result<(), InferError> {
    let manifest = Manifest::open(dir)?;
    manifest
        .load_session(role, default_backend().as_ref())
        .map(|_| ())
}

#[test]
fn shipped_models_verify_and_load() {
    for role in [
        ModelRole::FaceDetector,
        ModelRole::FaceLandmarks,
        ModelRole::FaceEmbedder,
    ] {
        load(&models_dir(), role).unwrap_or_else(|e| panic!("{role}: {e}"));
    }
}

#[test]
fn every_listed_model_loads_and_the_short_range_detector_is_the_default() {
    let manifest = manifest();
    for spec in manifest.models() {
        manifest
            .load_spec(spec, default_backend().as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", spec.id));
    }
    let detector = manifest.by_role(ModelRole::FaceDetector).expect("detector");
    assert_eq!(detector.id, "blazeface-front");
    let err = manifest
        .by_id("blazeface-front", ModelRole::FaceEmbedder)
        .expect_err("wrong role");
    assert!(err.to_string().contains("blazeface-front"), "{err}");
}

#[test]
fn a_flipped_byte_is_a_checksum_error_naming_the_file() {
    let dir = copy_models();
    let path = dir.path().join("facemesh.onnx");
    let mut bytes = std::fs::read(&path).expect("read");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    let err = load(dir.path(), ModelRole::FaceLandmarks).expect_err("must refuse");
    assert!(matches!(err, InferError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("facemesh.onnx"), "{err}");
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = copy_models();
    std::fs::remove_file(dir.path().join("blazeface_front.onnx")).expect("rm");
    let err = load(dir.path(), ModelRole::FaceDetector).expect_err("must refuse");
    assert!(matches!(err, InferError::ModelRead { .. }), "{err}");
    assert!(err.to_string().contains("blazeface_front.onnx"), "{err}");
}

#[test]
fn a_corrupt_model_with_a_matching_manifest_is_not_usable() {
    // Someone regenerated the manifest for a garbage file: the checksum
    // passes, the parser must still refuse it cleanly.
    let dir = copy_models();
    let garbage = b"this is not an onnx protobuf at all".repeat(100);
    std::fs::write(dir.path().join("facemesh.onnx"), &garbage).expect("write");
    let manifest_path = dir.path().join("manifest.toml");
    let text = std::fs::read_to_string(&manifest_path).expect("manifest");
    let old = Manifest::open(dir.path()).expect("parse");
    let old_sha = &old.by_role(ModelRole::FaceLandmarks).expect("mesh").sha256;
    let new_sha = edgeid::infer::manifest::sha256_hex(&garbage);
    std::fs::write(&manifest_path, text.replace(old_sha.as_str(), &new_sha)).expect("write");
    let err = load(dir.path(), ModelRole::FaceLandmarks).expect_err("must refuse");
    assert!(matches!(err, InferError::ModelInvalid { .. }), "{err}");
}

#[test]
fn a_manifest_with_the_wrong_input_name_is_refused() {
    let dir = copy_models();
    let manifest_path = dir.path().join("manifest.toml");
    let text = std::fs::read_to_string(&manifest_path).expect("manifest");
    // The embedder's input is named "input"; claim it is "pixels".
    let marker = "file = \"dlib_face_recognition_resnet_v1.onnx\"";
    let at = text.find(marker).expect("embedder entry");
    let (head, tail) = text.split_at(at);
    std::fs::write(
        &manifest_path,
        format!(
            "{head}{}",
            tail.replacen("name = \"input\"", "name = \"pixels\"", 1)
        ),
    )
    .expect("write");
    let err = load(dir.path(), ModelRole::FaceEmbedder).expect_err("must refuse");
    assert!(matches!(err, InferError::InputMismatch { .. }), "{err}");
}

#[test]
fn a_wrong_sized_input_is_an_error_not_a_panic() {
    let session = manifest()
        .load_session(ModelRole::FaceEmbedder, default_backend().as_ref())
        .expect("load");
    let input = Tensor::new(vec![1, 3, 100, 100], vec![0.0; 30_000]).expect("tensor");
    let err = session.run(input).expect_err("must refuse");
    assert!(matches!(err, InferError::InputMismatch { .. }), "{err}");
}

#[test]
fn a_newer_manifest_schema_is_refused() {
    let dir = copy_models();
    let path = dir.path().join("manifest.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    std::fs::write(&path, text.replace("schema = 1", "schema = 99")).expect("write");
    let err = Manifest::open(dir.path()).expect_err("must refuse");
    assert!(err.to_string().contains("schema 99"), "{err}");
}

#[test]
fn the_embedder_declares_cosine_and_another_metric_is_refused_at_load() {
    use edgeid::infer::manifest::Metric;
    use edgeid::pipeline::{FacePipeline, PipelineConfig};
    let embedder = manifest()
        .by_role(ModelRole::FaceEmbedder)
        .expect("embedder")
        .clone();
    assert_eq!(embedder.metric, Metric::Cosine);
    // Declaring Euclidean (as dlib was trained) is refused, not silently
    // scored by cosine: edgeid compares unit vectors only.
    let dir = copy_models();
    let path = dir.path().join("manifest.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    assert_eq!(
        text.matches("metric = \"cosine\"").count(),
        3,
        "one declaration per embedder (dlib, MobileFaceNet, then the voice embedder)"
    );
    std::fs::write(
        &path,
        text.replacen("metric = \"cosine\"", "metric = \"euclidean\"", 1),
    )
    .expect("write");
    let manifest = Manifest::open(dir.path()).expect("still parses");
    let err = FacePipeline::load(
        &manifest,
        default_backend().as_ref(),
        PipelineConfig::default(),
    )
    .err()
    .expect("must refuse");
    assert!(err.to_string().contains("cosine only"), "{err}");
    // An unknown metric is a parse error naming the file.
    std::fs::write(
        &path,
        text.replacen("metric = \"cosine\"", "metric = \"manhattan\"", 1),
    )
    .expect("write");
    let err = Manifest::open(dir.path()).expect_err("must refuse");
    assert!(err.to_string().contains("manifest.toml"), "{err}");
}

#[test]
fn mobilefacenet_runs_on_the_default_backend_with_its_own_chip() {
    use edgeid::pipeline::{EmbedderChoice, FacePipeline, PipelineConfig};
    use edgeid::vision::align::FaceChip;
    use edgeid::vision::geometry::Similarity;
    let manifest = manifest();
    let config = PipelineConfig {
        embedder: EmbedderChoice::Fused,
        ..PipelineConfig::default()
    };
    let pipeline = FacePipeline::load(&manifest, default_backend().as_ref(), config).expect("load");
    let ids: Vec<&str> = pipeline
        .embedders()
        .iter()
        .map(|e| e.embedder.model_id())
        .collect();
    assert_eq!(ids, ["dlib-resnet-v1", "mobilefacenet"]);
    let mfn = &pipeline.embedders()[1];
    assert_eq!((mfn.template.size, mfn.embedder.chip_size()), (112, 112));
    assert!(
        pipeline.fusion().is_some(),
        "the manifest's [[fusion]] fits these files"
    );
    // Two different chips: 192-d, finite, and not the same descriptor.
    let chip = |v: f32| FaceChip {
        size: 112,
        rgb: (0..112 * 112 * 3).map(|i| v + (i % 97) as f32).collect(),
        to_image: Similarity::IDENTITY,
    };
    let (a, b) = (
        mfn.embedder.embed(&chip(20.0)).expect("embeds"),
        mfn.embedder.embed(&chip(120.0)).expect("embeds"),
    );
    assert_eq!(a.dim(), 192);
    assert!(a.as_slice().iter().all(|x| x.is_finite()));
    assert!(a.cosine(&b) < 0.999, "{}", a.cosine(&b));
}
