use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::decision::Origin;
use crate::infer::manifest::Threshold as ManifestThreshold;
use crate::verdict::Mode;

const REQ: Request<'static> = Request {
    mode: Mode::Verify,
    subject: Some("alice"),
    nonce: None,
    origin: Origin::Cli,
};

fn face(reason: Reason, score: Option<f32>) -> Judged {
    let mut outcome = Outcome::reject(Mode::Verify, reason, Some("alice"));
    outcome.decision = Decision::of(reason == Reason::Match);
    outcome.score = score;
    Judged {
        outcome,
        detail: json!({"model_id": "face-model"}),
        modalities: vec![FACE],
    }
}

fn voice(reason: Reason, score: Option<f32>) -> VoiceJudgement {
    VoiceJudgement {
        reason,
        score,
        threshold: 0.83,
        floor: 0.74,
        detail: json!({}),
    }
}

/// LLR = 20 * (face - 0.9) + 20 * (voice - 0.8); threshold 0; floors
/// face 0.85, voice 0.74.
fn fusion() -> FactorFusion {
    let mut thresholds = BTreeMap::new();
    thresholds.insert(
        DEFAULT_OPERATING_POINT.to_owned(),
        ManifestThreshold {
            value: 0.0,
            measured_on: "test".into(),
        },
    );
    let spec = FusionSpec {
        id: "face+voice".into(),
        models: vec!["face-model".into(), "voice-model".into()],
        sha256: vec!["a".into(), "b".into()],
        mean: vec![0.9, 0.8],
        std: vec![1.0, 1.0],
        weights: vec![20.0, 20.0],
        fitted_on: "test".into(),
        thresholds,
    };
    FactorFusion::new(&spec, [0.85, 0.74]).unwrap()
}

fn both_(f: Judged, v: VoiceJudgement) -> Judged {
    combine(
        Modalities::FaceAndVoice,
        &REQ,
        Some(f),
        Some(v),
        Some(&fusion()),
    )
}

#[test]
fn face_and_voice_accepts_when_the_sum_and_both_floors_are_met() {
    let j = both_(
        face(Reason::Match, Some(0.95)),
        voice(Reason::Match, Some(0.85)),
    );
    assert_eq!(j.outcome.decision, Decision::Accept);
    assert_eq!(j.modalities, vec![FACE, VOICE]);
    // A weaker voice that the face makes up for, above its floor.
    let j = both_(
        face(Reason::Match, Some(0.97)),
        voice(Reason::VoiceMismatch, Some(0.76)),
    );
    assert_eq!(j.outcome.decision, Decision::Accept, "{}", j.detail);
}

#[test]
fn a_perfect_face_does_not_carry_a_strangers_voice() {
    let j = both_(
        face(Reason::Match, Some(0.999)),
        voice(Reason::VoiceMismatch, Some(0.5)),
    );
    assert_eq!(j.outcome.decision, Decision::Reject);
    assert_eq!(j.outcome.reason, Reason::VoiceMismatch);
    let j = both_(
        face(Reason::NoMatch, Some(0.6)),
        voice(Reason::Match, Some(0.99)),
    );
    assert_eq!(j.outcome.reason, Reason::NoMatch);
}

#[test]
fn an_attack_or_missing_factor_decides_on_its_own() {
    let replay = voice(Reason::PresentationAttack, None);
    let j = both_(face(Reason::Match, Some(0.99)), replay.clone());
    assert_eq!(j.outcome.reason, Reason::PresentationAttack);
    let j = both_(face(Reason::NoFace, None), voice(Reason::Match, Some(0.9)));
    assert_eq!(j.outcome.reason, Reason::NoFace);
    let j = both_(
        face(Reason::Match, Some(0.99)),
        voice(Reason::TooLittleSpeech, None),
    );
    assert_eq!(j.outcome.reason, Reason::TooLittleSpeech);
    // Either factor: an attack on one is not excused by the other.
    let j = combine(
        Modalities::FaceOrVoice,
        &REQ,
        Some(face(Reason::Match, Some(0.99))),
        Some(replay),
        None,
    );
    assert_eq!(j.outcome.reason, Reason::PresentationAttack);
}

#[test]
fn face_and_voice_without_a_fitted_fusion_refuses() {
    let j = combine(
        Modalities::FaceAndVoice,
        &REQ,
        Some(face(Reason::Match, Some(0.99))),
        Some(voice(Reason::Match, Some(0.99))),
        None,
    );
    assert_eq!(j.outcome.decision, Decision::Reject);
}

#[test]
fn either_factor_uses_whichever_matched_and_says_so() {
    let j = combine(
        Modalities::FaceOrVoice,
        &REQ,
        Some(face(Reason::NoFace, None)),
        Some(voice(Reason::Match, Some(0.9))),
        None,
    );
    assert_eq!(j.outcome.decision, Decision::Accept);
    assert_eq!(j.modalities, vec![VOICE]);
    let j = combine(
        Modalities::FaceOrVoice,
        &REQ,
        Some(face(Reason::NoFace, None)),
        Some(voice(Reason::VoiceMismatch, Some(0.3))),
        None,
    );
    assert_eq!(j.outcome.reason, Reason::VoiceMismatch);
}

#[test]
fn voice_alone_carries_the_voice_reason() {
    let j = combine(
        Modalities::Voice,
        &REQ,
        None,
        Some(voice(Reason::VoiceMismatch, Some(0.5))),
        None,
    );
    assert_eq!(j.outcome.reason, Reason::VoiceMismatch);
    assert_eq!(j.modalities, vec![VOICE]);
    let j = combine(Modalities::Voice, &REQ, None, None, None);
    assert_eq!(j.outcome.decision, Decision::Reject);
}

#[test]
fn the_rule_needs_the_sum_and_each_floor() {
    let f = fusion();
    // 20 * 0.05 + 20 * 0.05 = 2 >= 0, both above their floors.
    let (fused, accepted) = f.judge(0.95, 0.85);
    assert!((fused - 2.0).abs() < 1e-4 && accepted, "{fused}");
    // A strong face carries the sum, but the voice is under its floor.
    let (fused, accepted) = f.judge(1.0, 0.73);
    assert!(fused > 0.0 && !accepted, "{fused}");
    // Both floors met, the sum short.
    assert!(!f.judge(0.86, 0.75).1);
}
