//! The passive presentation-attack check on photos: which `face_pad` model
//! a verb uses (`--pad-model`, else the manifest's shipped one) and at what
//! threshold (the rule itself is `decision::pad`). Shared by `edgeid
//! enroll`, `edgeid demo` and `edgeid eval pad`.

use anyhow::Context;
use edgeid::decision::pad::{PadCheck, PadCheckInfo};
use edgeid::decision::threshold::PAD_OPERATING_POINT;
use edgeid::decision::{OperatingPoint, Threshold};
use edgeid::infer::{InferError, Manifest, ModelRole, default_backend};
use edgeid::vision::pad::PadScorer;

use super::GlobalArgs;
use super::pipeline::open_manifest;

/// The `face_pad` model named `id`, or the shipped default when `id` is
/// `None`; `Ok(None)` only when no id was given and none ships.
pub fn load_scorer(manifest: &Manifest, id: Option<&str>) -> anyhow::Result<Option<PadScorer>> {
    let spec = match id {
        Some(id) => manifest.by_id(id, ModelRole::FacePad).with_context(|| {
            format!(
                "no face_pad model {id:?}; face_pad models: {}",
                pad_model_ids(manifest)
            )
        })?,
        None => match manifest.by_role(ModelRole::FacePad) {
            Ok(spec) => spec,
            Err(InferError::NoModelForRole(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        },
    };
    let backend = default_backend();
    let scorer = PadScorer::load(manifest, backend.as_ref(), spec)
        .with_context(|| format!("loading the PAD model {}", spec.id))?;
    Ok(Some(scorer))
}

/// The ids of every `face_pad` model in the manifest, for error messages.
pub fn pad_model_ids(manifest: &Manifest) -> String {
    let ids: Vec<&str> = manifest
        .models()
        .iter()
        .filter(|m| m.role == ModelRole::FacePad)
        .map(|m| m.id.as_str())
        .collect();
    if ids.is_empty() {
        "(none in the manifest)".into()
    } else {
        ids.join(", ")
    }
}

/// One line for people: the check applied, or why there was none.
pub fn describe(check: Option<&PadCheckInfo>) -> String {
    match check {
        Some(pad) => format!("{} (live score >= {})", pad.model_id, pad.threshold),
        None => "none (no passive PAD model ships; enrol from photos only under supervision, \
                 liveness is checked on the camera)"
            .into(),
    }
}

/// The check to apply: `--pad-model` / `--pad-threshold` when given,
/// else the shipped model at its measured threshold; `None` when no model
/// was named and none ships.
pub fn open_check(
    global: &GlobalArgs,
    model: Option<&str>,
    threshold: Option<f32>,
) -> anyhow::Result<Option<PadCheck>> {
    let manifest = open_manifest(global)?;
    let Some(scorer) = load_scorer(&manifest, model)? else {
        if threshold.is_some() {
            anyhow::bail!(
                "--pad-threshold needs a PAD model: no face_pad model ships; name one with --pad-model ({})",
                pad_model_ids(&manifest)
            );
        }
        return Ok(None);
    };
    let threshold = Threshold::resolve(threshold, scorer.spec(), OperatingPoint(PAD_OPERATING_POINT))
            .with_context(|| {
                format!(
                    "the manifest has no measured {PAD_OPERATING_POINT} threshold for {}: pass --pad-threshold (see `edgeid eval pad`)",
                    scorer.model_id()
                )
            })?;
    Ok(Some(PadCheck::new(scorer, threshold)))
}
