//! The decision path's rules on a real store, the real embedder's manifest
//! entry and hand-made frames (the pipeline itself is tested elsewhere).

use std::path::Path;

use super::*;
use crate::decision::enrolment::face_templates;
use crate::decision::evidence::{
    Ended, Liveness, LivenessCheck, LivenessVerdict, PadResult, Provenance, Sample,
};
use crate::decision::liveness::Figures;
use crate::decision::{Evidence, Origin};
use crate::infer::{Manifest, ModelRole};
use crate::pipeline::FrameAnalysis;
use crate::pipeline::fixtures::{empty_frame, face_frame};
use crate::store::keys::{self, Kek, KekSource};
use crate::store::{audit, templates};
use crate::verdict::Decision;
use crate::vision::embed::Embedding;
use crate::vision::landmarks::FaceMesh;
use crate::vision::quality::QualityFailure;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    keys: KeyRing,
    spec: ModelSpec,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::create(dir.path()).expect("store");
    let kek = Kek::from_bytes(&[7; 32], KekSource::File("test".into()));
    let keys = keys::init(&mut store, &kek, "test-device", false).expect("keys");
    let manifest =
        Manifest::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).expect("manifest");
    let spec = manifest
        .by_role(ModelRole::FaceEmbedder)
        .expect("embedder")
        .clone();
    let mut rig = Rig {
        _dir: dir,
        store,
        keys,
        spec,
    };
    rig.enrol("alice", 0);
    rig.enrol("bob", 1);
    rig
}

/// A unit vector along `axis`, in the embedder's dimension.
fn person(axis: usize) -> Embedding {
    let mut e = vec![0.0; 128];
    e[axis] = 1.0;
    Embedding(e)
}

fn frame(axis: usize, quality_failures: Vec<QualityFailure>) -> FrameAnalysis {
    let mesh = FaceMesh {
        points: Vec::new(),
        presence: 1.0,
    };
    face_frame(mesh, 60.0, person(axis), quality_failures)
}

fn no_face() -> FrameAnalysis {
    empty_frame()
}

impl Rig {
    fn enrol(&mut self, subject: &str, axis: usize) {
        let spec = self.spec.clone();
        self.enrol_with(&spec, subject, axis);
    }

    /// Enrols `subject` with templates made by the embedder `spec`.
    fn enrol_with(&mut self, spec: &ModelSpec, subject: &str, axis: usize) {
        let samples = [(
            person(axis),
            frame(axis, vec![]).face.expect("face").quality,
        )];
        let rows = face_templates(spec, &samples);
        templates::enroll(&mut self.store, &self.keys.dek, subject, &rows, false, None)
            .expect("enrol");
    }

    fn auth(&self) -> Authenticator {
        Authenticator::new(Policy {
            threshold: None,
            threshold_source: "test",
            lockout: LockoutConfig {
                max_failures: 2,
                window_secs: 60,
                backoff_initial_secs: 60,
                backoff_max_secs: 60,
            },
            verdict_lifetime_secs: 30,
            identify_enabled: true,
        })
        .expect("authenticator")
    }

    /// The whole path for one request: precheck, judge, finish.
    fn attempt(&mut self, req: &Request<'_>, evidence: &Evidence) -> (Issued, audit::Record) {
        let auth = self.auth();
        let matcher = auth.matcher(&self.spec).expect("matcher");
        let enrolled = matcher
            .open_gallery(&mut self.store, &self.keys.dek, None, "test")
            .expect("gallery");
        let (judged, provenance) = match auth.locked_out(&self.store, req).expect("lockout") {
            Some(early) => (early, Provenance::NONE),
            None => {
                let uncomparable = matcher
                    .precheck(&self.store, &enrolled, req)
                    .expect("precheck");
                let judged = matcher.judge(&enrolled, req, evidence, uncomparable.as_ref());
                (judged, evidence.provenance())
            }
        };
        let issued = auth
            .finish(&mut self.store, &self.keys, req, judged, provenance)
            .expect("finish");
        let record = audit::export(&self.store)
            .expect("export")
            .into_iter()
            .find(|r| r.id == issued.audit_record)
            .expect("the verdict's audit record");
        (issued, record)
    }
}

fn verify(subject: &str) -> Request<'_> {
    Request::new(Mode::Verify, Some(subject), Some("n-1"), Origin::Cli)
}

fn live(samples: Vec<Sample>, verdict: LivenessVerdict) -> Evidence {
    let mut e = Evidence::photos(samples);
    e.liveness = Liveness {
        check: LivenessCheck::Motion,
        verdict,
        figures: None,
    };
    e
}

#[test]
fn a_matching_face_is_accepted_and_the_audit_record_explains_it() {
    let mut rig = rig();
    let evidence = Evidence::photos(vec![Sample::new(frame(0, vec![]))]);
    let (issued, record) = rig.attempt(&verify("alice"), &evidence);
    assert_eq!(issued.claims.decision, Decision::Accept);
    assert_eq!(issued.claims.reason, Reason::Match);
    assert_eq!(issued.claims.nonce.as_deref(), Some("n-1"));
    assert_eq!(record.event, "verify");
    assert_eq!(record.decision.as_deref(), Some("accept"));
    assert_eq!(record.detail["origin"], "cli");
    assert_eq!(record.detail["liveness"]["mode"], "none");
    assert_eq!(record.detail["model_id"], rig.spec.id.as_str());
    assert!(record.detail["score"].as_f64().expect("score") > 0.99);
}

#[test]
fn another_persons_face_is_no_match_and_counts_toward_lockout() {
    let mut rig = rig();
    let bob = || Evidence::photos(vec![Sample::new(frame(1, vec![]))]);
    let (first, _) = rig.attempt(&verify("alice"), &bob());
    assert_eq!(first.claims.reason, Reason::NoMatch);
    assert_eq!(first.claims.sub.as_deref(), Some("alice"));
    rig.attempt(&verify("alice"), &bob());
    // Two failures with max_failures = 2: alice's own face is now refused
    // without being looked at.
    let alice = Evidence::photos(vec![Sample::new(frame(0, vec![]))]);
    let (third, record) = rig.attempt(&verify("alice"), &alice);
    assert_eq!(third.claims.reason, Reason::LockedOut);
    assert!(
        record.detail["locked_until_ms"].as_i64().is_some(),
        "{record:?}"
    );
    let lockouts = audit::export(&rig.store)
        .expect("export")
        .into_iter()
        .filter(|r| r.event == "lockout")
        .count();
    assert_eq!(lockouts, 1);
}

#[test]
fn subjects_that_cannot_be_compared_are_a_no_match_with_the_cause_in_the_audit() {
    let mut rig = rig();
    // A face that would match alice: a claim of carol (not enrolled) is a
    // plain no_match to the requester, never compared with anyone.
    let evidence = Evidence::photos(vec![Sample::new(frame(0, vec![]))]);
    let (issued, record) = rig.attempt(&verify("carol"), &evidence);
    assert_eq!(
        (issued.claims.decision, issued.claims.reason),
        (Decision::Reject, Reason::NoMatch)
    );
    assert_eq!(record.detail["cause"], "unknown_subject");
    assert!(record.detail["score"].is_null());
    // Enrolled with another embedder only: the same answer, model_mismatch
    // in the audit.
    let other = ModelSpec {
        id: "another-embedder".into(),
        ..rig.spec.clone()
    };
    rig.enrol_with(&other, "dave", 0);
    let (issued, record) = rig.attempt(&verify("dave"), &evidence);
    assert_eq!(issued.claims.reason, Reason::NoMatch);
    assert_eq!(record.detail["cause"], "model_mismatch");
    assert_eq!(record.detail["enrolled_with"][0], "another-embedder");
    // The same evidence rules apply as for anyone: no face is no_face.
    let empty = Evidence::photos(vec![Sample::new(no_face())]);
    let (issued, _) = rig.attempt(&verify("carol"), &empty);
    assert_eq!(issued.claims.reason, Reason::NoFace);
}

#[test]
fn unknown_subjects_lock_out_like_enrolled_ones() {
    let mut rig = rig();
    let face = || Evidence::photos(vec![Sample::new(frame(3, vec![]))]);
    let reasons: Vec<_> = ["alice", "carol"]
        .into_iter()
        .map(|subject| {
            (0..3)
                .map(|_| rig.attempt(&verify(subject), &face()).0.claims.reason)
                .collect::<Vec<_>>()
        })
        .collect();
    // max_failures = 2: the third attempt is locked out for both.
    assert_eq!(reasons[0], reasons[1]);
    assert_eq!(reasons[0][2], Reason::LockedOut);
}

#[test]
fn a_liveness_or_pad_failure_is_a_presentation_attack_whatever_the_score() {
    let mut rig = rig();
    let attack = live(vec![Sample::new(frame(0, vec![]))], LivenessVerdict::Attack);
    let (issued, record) = rig.attempt(&verify("alice"), &attack);
    assert_eq!(issued.claims.reason, Reason::PresentationAttack);
    assert_eq!(record.detail["cause"], "liveness_failed");
    let mut print = Sample::new(frame(0, vec![]));
    print.pad = Some(PadResult {
        score: 0.1,
        live: false,
    });
    let (issued, record) = rig.attempt(&verify("alice"), &Evidence::photos(vec![print]));
    assert_eq!(issued.claims.reason, Reason::PresentationAttack);
    assert_eq!(record.detail["cause"], "pad_failed");
    assert_eq!(record.detail["pad_scores"][0].as_f64(), Some(0.1f32 as f64));
}

#[test]
fn running_out_of_time_says_what_was_missing() {
    let mut rig = rig();
    let mut not_shown = live(vec![], LivenessVerdict::NotShown);
    not_shown.seen.note(&frame(0, vec![]));
    not_shown.ended = Ended::Deadline;
    let (issued, record) = rig.attempt(&verify("alice"), &not_shown);
    assert_eq!(issued.claims.reason, Reason::Timeout);
    assert_eq!(record.detail["cause"], "liveness_not_shown");

    let mut blurred = live(vec![], LivenessVerdict::NotShown);
    blurred.seen.note(&frame(0, vec![QualityFailure::Blurry]));
    blurred.ended = Ended::Deadline;
    let (issued, _) = rig.attempt(&verify("alice"), &blurred);
    assert_eq!(issued.claims.reason, Reason::LowQuality);

    let mut empty = Evidence::photos(vec![Sample::new(no_face())]);
    empty.ended = Ended::Shutdown;
    let (issued, record) = rig.attempt(&verify("alice"), &empty);
    assert_eq!(issued.claims.reason, Reason::Timeout);
    assert_eq!(record.detail["cause"], "shutdown");
}

#[test]
fn identify_names_the_best_match_and_no_one_on_reject() {
    let mut rig = rig();
    let req = Request::new(Mode::Identify, Some("ignored"), None, Origin::Mqtt);
    let (issued, record) =
        rig.attempt(&req, &Evidence::photos(vec![Sample::new(frame(1, vec![]))]));
    assert_eq!(issued.claims.sub.as_deref(), Some("bob"));
    assert_eq!(record.detail["identify_enabled"], true);
    let (issued, _) = rig.attempt(&req, &Evidence::photos(vec![Sample::new(frame(5, vec![]))]));
    assert_eq!(
        (issued.claims.decision, issued.claims.sub),
        (Decision::Reject, None)
    );
    let (issued, _) = rig.attempt(&req, &Evidence::photos(vec![Sample::new(no_face())]));
    assert_eq!(issued.claims.reason, Reason::NoFace);
}

#[test]
fn thresholds_outside_the_similarity_range_are_refused() {
    for bad in [-1.5, 2.0, f32::NAN] {
        let policy = Policy {
            threshold: Some(bad),
            threshold_source: "test",
            lockout: LockoutConfig::default(),
            verdict_lifetime_secs: 30,
            identify_enabled: false,
        };
        assert!(
            matches!(
                Authenticator::new(policy),
                Err(AttemptError::BadThreshold(_))
            ),
            "{bad}"
        );
    }
}

// Figures are part of the liveness record; a made-up one is enough to
// check that the record carries them with the mode.
#[test]
fn the_liveness_record_carries_the_mode_and_the_figures() {
    let figures = Figures {
        check: "motion",
        shown: true,
        frames: 9,
        resets: 0,
        motion: 0.2,
        parallax: 0.1,
        ratio: Some(0.5),
        head_frames: 3,
        unconfirmed_frames: 0,
        flat_frames: 0,
        turn: 0.0,
        blinked: false,
        challenge: None,
        failure: None,
    };
    let l = Liveness {
        check: LivenessCheck::Motion,
        verdict: LivenessVerdict::Live,
        figures: Some(figures),
    };
    let r = l.record();
    assert_eq!(
        (r["mode"].as_str(), r["frames"].as_u64()),
        (Some("motion"), Some(9))
    );
}
