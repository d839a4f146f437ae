//! `models/manifest.toml`: what each model file is, where it came from, how
//! to feed it, and (for embedders) the thresholds measured for it.
//!
//! Loading a model always goes through [`Manifest::load_session`], which
//! refuses a file whose sha256 differs from the manifest's.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Backend, InferError, Session};

/// The file name of the manifest inside a models directory.
pub const MANIFEST_FILE: &str = "manifest.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRole {
    FaceDetector,
    FaceLandmarks,
    FaceEmbedder,
    FacePad,
    VoiceVad,
    VoiceEmbedder,
}

impl fmt::Display for ModelRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::FaceDetector => "face_detector",
            Self::FaceLandmarks => "face_landmarks",
            Self::FaceEmbedder => "face_embedder",
            Self::FacePad => "face_pad",
            Self::VoiceVad => "voice_vad",
            Self::VoiceEmbedder => "voice_embedder",
        };
        f.write_str(name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    #[serde(rename = "NCHW")]
    Nchw,
    #[serde(rename = "NHWC")]
    Nhwc,
    /// A sequence: batch, time steps, features per step (voice mel frames).
    #[serde(rename = "NTF")]
    Ntf,
}

/// How an image (or, for layout NTF, a feature sequence) becomes the
/// model's input tensor. Colour and normalisation apply to images only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// Concrete shape including the batch dimension (pinned to 1).
    pub shape: Vec<usize>,
    pub layout: Layout,
    #[serde(default)]
    pub colour: String,
    /// value = (pixel − mean[c]) / std[c], with pixel in 0..=255.
    #[serde(default)]
    pub mean: [f32; 3],
    #[serde(default = "unit_std")]
    pub std: [f32; 3],
}

fn unit_std() -> [f32; 3] {
    [1.0; 3]
}

impl InputSpec {
    /// (height, width) of the image input.
    pub fn image_size(&self) -> (usize, usize) {
        match (self.layout, self.shape.as_slice()) {
            (Layout::Nchw, [_, _, h, w]) | (Layout::Nhwc, [_, h, w, _]) => (*h, *w),
            _ => (0, 0),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub meaning: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub package: String,
    pub version: String,
    pub source_file: String,
    pub source_sha256: String,
    pub converter: String,
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
    pub max_abs_diff: f64,
    pub verified_on: String,
}

/// One model file and everything needed to use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub id: String,
    pub file: String,
    pub sha256: String,
    pub role: ModelRole,
    pub licence: String,
    pub description: String,
    pub input: InputSpec,
    pub outputs: Vec<OutputSpec>,
    pub provenance: Provenance,
    /// Decision thresholds measured for this model, keyed by what they target
    /// (for example `far_1e-3`), with the measurement that produced them.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
    /// `false`: committed for evaluation only (`edgeid eval pad --model ID`),
    /// never the default for its role.
    #[serde(default = "shipped_by_default")]
    pub shipped: bool,
    /// Embedders: the distance the model was trained to be compared with.
    /// Scores are similarities either way (higher = more alike).
    #[serde(default)]
    pub metric: Metric,
    /// Embedders: the embedding is the mean of the chip's and its mirror
    /// image's (test-time flip augmentation, one more model run). The
    /// thresholds were measured with this setting.
    #[serde(default)]
    pub flip_tta: bool,
    /// Embedders: the face chip the model was trained on.
    #[serde(default)]
    pub alignment: ChipAlignment,
    /// Licence chain and caveats beyond `licence` (for models/NOTICE.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// The face chip an embedder expects (declared in the manifest; the
/// templates themselves live in `vision::align`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChipAlignment {
    /// dlib's 5-point chip (`get_face_chip`, padding 0.25).
    #[default]
    #[serde(rename = "dlib_5_point")]
    Dlib5Point,
    /// The ArcFace / InsightFace 5-point 112×112 template (eye centres,
    /// nose tip, mouth corners).
    #[serde(rename = "arcface_5_point")]
    Arcface5Point,
}

fn shipped_by_default() -> bool {
    true
}

/// How two embeddings of a model are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine of the L2-normalised vectors (the default when not declared).
    #[default]
    Cosine,
    /// Euclidean distance of the raw vectors.
    Euclidean,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cosine => "cosine",
            Self::Euclidean => "euclidean",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub value: f32,
    pub measured_on: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    schema: u32,
    #[serde(rename = "model")]
    models: Vec<ModelSpec>,
    #[serde(default, rename = "fusion")]
    fusions: Vec<FusionSpec>,
}

/// Score fusion of several embedders (`[[fusion]]`): each model's cosine
/// score is z-normalised by its impostor distribution, and the fused score
/// is the weighted sum. Fitted by `edgeid eval faces --compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionSpec {
    pub id: String,
    /// The embedders fused (manifest ids) and the sha256 of each file the
    /// normalisation was fitted with, in the same order.
    pub models: Vec<String>,
    pub sha256: Vec<String>,
    /// Per model: mean and standard deviation of cross-identity scores.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub weights: Vec<f32>,
    /// How the normalisation and weights were fitted (data, method).
    pub fitted_on: String,
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
}

impl FusionSpec {
    /// The fused score of one score per model (same order as `models`);
    /// `None` if the count differs.
    pub fn fuse(&self, scores: &[f32]) -> Option<f32> {
        if scores.len() != self.models.len() {
            return None;
        }
        Some(
            scores
                .iter()
                .zip(&self.mean)
                .zip(&self.std)
                .zip(&self.weights)
                .map(|(((s, m), sd), w)| w * (s - m) / sd.max(f32::EPSILON))
                .sum(),
        )
    }

    /// Whether each fused model is the loaded one (same id and file).
    pub fn fits(&self, models: &[(&str, &str)]) -> bool {
        self.models.len() == models.len()
            && self
                .models
                .iter()
                .zip(&self.sha256)
                .zip(models)
                .all(|((id, sha), (mid, msha))| id == mid && sha.eq_ignore_ascii_case(msha))
    }
}

/// The parsed manifest together with the directory its files live in.
#[derive(Debug, Clone)]
pub struct Manifest {
    dir: PathBuf,
    models: Vec<ModelSpec>,
    fusions: Vec<FusionSpec>,
}

/// The manifest schema this binary understands.
pub const MANIFEST_SCHEMA: u32 = 1;

impl Manifest {
    /// Reads `<dir>/manifest.toml`.
    pub fn open(dir: &Path) -> Result<Self, InferError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| InferError::ManifestRead {
            path: path.clone(),
            source,
        })?;
        let file: ManifestFile =
            toml::from_str(&text).map_err(|error| InferError::ManifestParse {
                path: path.clone(),
                error,
            })?;
        if file.schema != MANIFEST_SCHEMA {
            return Err(InferError::ManifestInvalid {
                path,
                message: format!(
                    "schema {} is not supported (this build reads schema {MANIFEST_SCHEMA})",
                    file.schema
                ),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            models: file.models,
            fusions: file.fusions,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// The score fusion of exactly these embedders (ids, in order).
    pub fn fusion(&self, models: &[&str]) -> Option<&FusionSpec> {
        self.fusions.iter().find(|f| {
            f.models
                .iter()
                .map(String::as_str)
                .eq(models.iter().copied())
        })
    }

    /// The first shipped model with this role (the manifest lists the
    /// default first).
    pub fn by_role(&self, role: ModelRole) -> Result<&ModelSpec, InferError> {
        self.models
            .iter()
            .find(|m| m.role == role && m.shipped)
            .ok_or(InferError::NoModelForRole(role))
    }

    /// The model with this id, which must have this role.
    pub fn by_id(&self, id: &str, role: ModelRole) -> Result<&ModelSpec, InferError> {
        self.models
            .iter()
            .find(|m| m.id == id && m.role == role)
            .ok_or_else(|| InferError::NoSuchModel {
                id: id.to_owned(),
                role,
            })
    }

    pub fn path_of(&self, spec: &ModelSpec) -> PathBuf {
        self.dir.join(&spec.file)
    }

    /// Reads a model file and checks it against the manifest's sha256.
    pub fn read_verified(&self, spec: &ModelSpec) -> Result<Vec<u8>, InferError> {
        let path = self.path_of(spec);
        let bytes = std::fs::read(&path).map_err(|source| InferError::ModelRead {
            path: path.clone(),
            source,
        })?;
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(&spec.sha256) {
            return Err(InferError::ChecksumMismatch {
                path,
                expected: spec.sha256.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Verifies and loads the default model for `role`.
    pub fn load_session(
        &self,
        role: ModelRole,
        backend: &dyn Backend,
    ) -> Result<Box<dyn Session>, InferError> {
        self.load_spec(self.by_role(role)?, backend)
    }

    /// Verifies and loads one model of the manifest.
    pub fn load_spec(
        &self,
        spec: &ModelSpec,
        backend: &dyn Backend,
    ) -> Result<Box<dyn Session>, InferError> {
        let bytes = self.read_verified(spec)?;
        backend.load(spec, &bytes)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The models directory: `$EDGEID_MODELS_DIR`, else `../share/edgeid/models`
/// beside the binary (the .deb puts /usr/bin/edgeid and
/// /usr/share/edgeid/models together), else `models/` of the source tree
/// the binary was built from (development), else the packaged location.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGEID_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/edgeid/models")));
    if let Some(dir) = installed.filter(|d| d.join(MANIFEST_FILE).is_file()) {
        return dir;
    }
    let dev = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    if dev.join(MANIFEST_FILE).is_file() {
        return dev;
    }
    PathBuf::from("/usr/share/edgeid/models")
}

/// A model entry parsed from TOML: `extra` lines go before the tables
/// (for example `flip_tta = true`). For the stages' unit tests.
#[cfg(test)]
pub(crate) fn test_spec(
    role: &str,
    input_shape: &str,
    output_shape: &str,
    extra: &str,
) -> ModelSpec {
    let text = format!(
        r#"
id = "test-model"
file = "test.onnx"
sha256 = ""
role = "{role}"
licence = ""
description = ""
{extra}
[input]
name = "input"
shape = {input_shape}
layout = "NCHW"
colour = "RGB"
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]
[[outputs]]
name = "output"
shape = {output_shape}
meaning = ""
[provenance]
package = ""
version = ""
source_file = ""
source_sha256 = ""
converter = ""
max_abs_diff = 0.0
verified_on = ""
"#
    );
    toml::from_str(&text).expect("a valid test model entry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_and_flip_default_to_cosine_without_flip() {
        let spec = test_spec("face_embedder", "[1, 3, 4, 4]", "[1, 8]", "");
        assert_eq!(spec.metric, Metric::Cosine);
        assert!(!spec.flip_tta);
        assert!(spec.shipped);
    }

    #[test]
    fn metric_and_flip_are_read_from_the_entry() {
        let spec = test_spec(
            "face_embedder",
            "[1, 3, 4, 4]",
            "[1, 8]",
            "metric = \"euclidean\"\nflip_tta = true",
        );
        assert_eq!(spec.metric, Metric::Euclidean);
        assert!(spec.flip_tta);
        assert_eq!(spec.metric.to_string(), "euclidean");
        let bad = toml::from_str::<ModelSpec>("metric = \"manhattan\"");
        assert!(bad.is_err());
    }

    #[test]
    fn the_shipped_embedder_declares_its_metric_and_flip() {
        let manifest = Manifest::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
            .expect("models/manifest.toml");
        let embedder = manifest
            .by_role(ModelRole::FaceEmbedder)
            .expect("an embedder");
        let text = std::fs::read_to_string(manifest.dir().join(MANIFEST_FILE)).expect("read");
        // Declared explicitly, not left to the default.
        assert!(text.contains(&format!("metric = \"{}\"", embedder.metric)));
        assert!(text.contains(&format!("flip_tta = {}", embedder.flip_tta)));
    }
}
