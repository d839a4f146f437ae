//! The fused matcher on a real store: subjects enrolled before the fusion
//! (dlib templates only) are still matched, by dlib alone at dlib's own
//! threshold, and flagged for re-enrolment; a single-embedder matcher of
//! another model refuses them with `model_mismatch`; never a comparison
//! across models.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::decision::enrolment::evidence_templates;
use crate::decision::evidence::{Evidence, Sample};
use crate::decision::lockout::LockoutConfig;
use crate::decision::{Authenticator, Origin, Policy};
use crate::infer::manifest::Threshold as ManifestThreshold;
use crate::infer::{Manifest, ModelRole};
use crate::pipeline::ModelEmbedding;
use crate::pipeline::fixtures::face_frame;
use crate::store::keys::{self, Kek, KekSource};
use crate::store::{Store, templates};
use crate::vision::embed::Embedding;
use crate::vision::landmarks::FaceMesh;

fn unit(dim: usize, axis: usize) -> Embedding {
    let mut v = vec![0.0; dim];
    v[axis] = 1.0;
    Embedding(v)
}

fn embedding(spec: &ModelSpec, axis: usize) -> ModelEmbedding {
    ModelEmbedding {
        model_id: spec.id.clone(),
        model_sha256: spec.sha256.clone(),
        embedding: unit(spec.outputs[0].shape[1], axis),
    }
}

/// A frame of the person along `axis`, described by each of `specs`.
fn frame(specs: &[&ModelSpec], axis: usize) -> FrameAnalysis {
    let mesh = FaceMesh {
        points: Vec::new(),
        presence: 1.0,
    };
    let mut f = face_frame(mesh, 60.0, unit(128, axis), vec![]);
    if let Some(face) = f.face.as_mut() {
        face.embeddings = specs.iter().map(|s| embedding(s, axis)).collect();
        face.embedding = face.embeddings[0].embedding.clone();
    }
    f
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    keys: crate::store::KeyRing,
    dlib: ModelSpec,
    mfn: ModelSpec,
    fusion: FusionSpec,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::create(dir.path()).expect("store");
    let kek = Kek::from_bytes(&[9; 32], KekSource::File("test".into()));
    let keys = keys::init(&mut store, &kek, "test-device", false).expect("keys");
    let manifest =
        Manifest::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).expect("manifest");
    let dlib = manifest
        .by_id("dlib-resnet-v1", ModelRole::FaceEmbedder)
        .expect("dlib")
        .clone();
    let mut mfn = manifest
        .by_id("mobilefacenet", ModelRole::FaceEmbedder)
        .expect("mobilefacenet")
        .clone();
    mfn.thresholds.insert(
        DEFAULT_OPERATING_POINT.into(),
        ManifestThreshold {
            value: 0.5,
            measured_on: "test".into(),
        },
    );
    let mut thresholds = BTreeMap::new();
    thresholds.insert(
        DEFAULT_OPERATING_POINT.to_owned(),
        ManifestThreshold {
            value: 4.0,
            measured_on: "test".into(),
        },
    );
    let fusion = FusionSpec {
        id: "dlib-resnet-v1+mobilefacenet".into(),
        models: vec![dlib.id.clone(), mfn.id.clone()],
        sha256: vec![dlib.sha256.clone(), mfn.sha256.clone()],
        mean: vec![0.0, 0.0],
        std: vec![0.1, 0.1],
        weights: vec![0.5, 0.5],
        fitted_on: "test".into(),
        thresholds,
    };
    Rig {
        _dir: dir,
        store,
        keys,
        dlib,
        mfn,
        fusion,
    }
}

impl Rig {
    fn enrol(&mut self, subject: &str, specs: &[&ModelSpec], axis: usize) {
        let quality = frame(specs, axis).face.expect("face").quality;
        let samples = vec![(specs.iter().map(|s| embedding(s, axis)).collect(), quality)];
        let rows = evidence_templates(&samples);
        templates::enroll(&mut self.store, &self.keys.dek, subject, &rows, false, None)
            .expect("enrol");
    }

    fn matcher(&self, fused: bool, primary: &ModelSpec) -> Matcher {
        let auth = authenticator();
        let m = auth.matcher(primary).expect("matcher");
        if fused {
            m.fused_with(&[&self.mfn], Some(&self.fusion))
                .expect("fused")
        } else {
            m
        }
    }

    /// The judgement of a 1:1 claim (or 1:N without one) on one frame.
    fn judge(&mut self, m: &Matcher, subject: Option<&str>, frame: FrameAnalysis) -> Judged {
        let enrolled = m
            .open_gallery(&mut self.store, &self.keys.dek, None, "test")
            .expect("gallery");
        let mode = if subject.is_some() {
            Mode::Verify
        } else {
            Mode::Identify
        };
        let req = Request::new(mode, subject, Some("n"), Origin::Cli);
        let uncomparable = m.precheck(&self.store, &enrolled, &req).expect("precheck");
        let evidence = Evidence::photos(vec![Sample::new(frame)]);
        m.judge(&enrolled, &req, &evidence, uncomparable.as_ref())
    }
}

#[test]
fn a_subject_enrolled_under_dlib_only_is_matched_by_dlib_and_offered_reenrolment() {
    let mut rig = rig();
    let (dlib, mfn) = (rig.dlib.clone(), rig.mfn.clone());
    rig.enrol("alice", &[&dlib], 0); // before the fusion: dlib only
    rig.enrol("bob", &[&dlib, &mfn], 1);
    let m = rig.matcher(true, &dlib);
    let both = [&dlib, &mfn];

    let j = rig.judge(&m, Some("alice"), frame(&both, 0));
    assert_eq!(j.outcome.reason, Reason::Match, "{}", j.detail);
    assert_eq!(
        j.outcome.threshold,
        Some(m.threshold().value),
        "dlib's own threshold"
    );
    assert_eq!(
        j.detail["scored_with"],
        serde_json::json!(["dlib-resnet-v1"])
    );
    assert_eq!(j.detail["needs_reenrolment"], serde_json::json!(["alice"]));
    let j = rig.judge(&m, Some("alice"), frame(&both, 1));
    assert_eq!(j.outcome.reason, Reason::NoMatch, "bob's face is not alice");

    let j = rig.judge(&m, Some("bob"), frame(&both, 1));
    assert_eq!(j.outcome.reason, Reason::Match);
    assert_eq!(j.outcome.threshold, Some(4.0), "the fusion's threshold");
    assert_eq!(j.detail["fusion"], "dlib-resnet-v1+mobilefacenet");
    assert!(j.detail.get("needs_reenrolment").is_none());
    // z = (1 − 0)/0.1 for both models, weighted mean 10.
    assert!((j.outcome.score.expect("score") - 10.0).abs() < 1e-4);

    // 1:N finds both, each by what it has.
    let j = rig.judge(&m, None, frame(&both, 0));
    assert_eq!(j.outcome.subject.as_deref(), Some("alice"));
    let j = rig.judge(&m, None, frame(&both, 1));
    assert_eq!(j.outcome.subject.as_deref(), Some("bob"));
}

#[test]
fn a_dlib_template_is_refused_with_model_mismatch_by_a_mobilefacenet_matcher() {
    let mut rig = rig();
    let (dlib, mfn) = (rig.dlib.clone(), rig.mfn.clone());
    rig.enrol("alice", &[&dlib], 0);
    let m = rig.matcher(false, &mfn);
    let j = rig.judge(&m, Some("alice"), frame(&[&mfn], 0));
    assert_eq!(j.outcome.reason, Reason::NoMatch);
    assert_eq!(j.detail["cause"], "model_mismatch");
    assert_eq!(
        j.detail["enrolled_with"],
        serde_json::json!(["dlib-resnet-v1"])
    );
    let load = m
        .open_gallery(&mut rig.store, &rig.keys.dek, None, "test")
        .expect("gallery");
    assert_eq!(load.needs_reenrolment(), vec!["alice".to_owned()]);
    assert!(matches!(j.detail["model_id"], Value::String(ref id) if id == "mobilefacenet"));
}

#[test]
fn a_fusion_fitted_with_other_model_files_is_refused() {
    let rig = rig();
    let mut other = rig.fusion.clone();
    other.sha256[1] = "0".repeat(64);
    let auth = authenticator();
    let err = auth
        .matcher(&rig.dlib)
        .expect("matcher")
        .fused_with(&[&rig.mfn], Some(&other))
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("fusion of dlib-resnet-v1+mobilefacenet"),
        "{err}"
    );
    assert!(
        auth.matcher(&rig.dlib)
            .expect("matcher")
            .fused_with(&[&rig.mfn], None)
            .is_err()
    );
}

fn authenticator() -> Authenticator {
    Authenticator::new(Policy {
        threshold: None,
        threshold_source: "test",
        lockout: LockoutConfig {
            max_failures: 5,
            window_secs: 60,
            ..LockoutConfig::default()
        },
        verdict_lifetime_secs: 30,
        identify_enabled: true,
    })
    .expect("authenticator")
}
