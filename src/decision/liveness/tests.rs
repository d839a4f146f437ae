//! The accumulator on synthetic landmark sequences (3-D heads and flat
//! pictures seen through a pinhole camera, `vision::liveness::synthetic`).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::*;
use crate::pipeline::FrameAnalysis;
use crate::pipeline::fixtures::face_frame;
use crate::vision::embed::Embedding;
use crate::vision::liveness::synthetic::{
    head, jitter, live_sequence, mesh_of, photo_sequence, view, view_posed,
};
use crate::vision::liveness::{LivenessFailure, LivenessSample, TurnSide};

/// A frame whose main face has `sample`'s landmarks and the embedding
/// `person` (a unit vector along one axis).
fn frame(sample: &LivenessSample, person: usize) -> FrameAnalysis {
    let mut e = vec![0.0; 8];
    e[person] = 1.0;
    face_frame(
        mesh_of(sample),
        sample.eye_distance(),
        Embedding(e),
        Vec::new(),
    )
}

/// Feeds `seq` at 15 fps; the first state that is not `Pending` and its
/// frame, or `Pending` at the end.
fn run(track: &mut Track, seq: &[LivenessSample], check: Check) -> (State, Figures, usize) {
    let t0 = Instant::now();
    let mut last = None;
    for (i, s) in seq.iter().enumerate() {
        track.push(
            frame(s, 0),
            true,
            &FRAME,
            t0 + Duration::from_millis(66 * i as u64),
        );
        let (state, figures) = track.evaluate(check);
        if state != State::Pending {
            return (state, figures, i);
        }
        last = Some(figures);
    }
    (State::Pending, last.expect("frames"), seq.len())
}

/// The synthetic camera's frame: no pixels to speak of, so these tracks
/// judge landmarks alone (`Track::landmarks_only`).
static FRAME: LazyLock<RgbImage> = LazyLock::new(|| RgbImage::new(640, 480));

fn track() -> Track {
    Track::landmarks_only(LivenessPolicy::default(), 0.5)
}

/// A head looking about naturally: a small turn and nod while swaying.
fn natural_motion(yaw_end: f32, pitch_end: f32) -> Vec<LivenessSample> {
    (0..12)
        .map(|i| {
            let t = i as f32 / 11.0;
            view_posed(&head(0.0), yaw_end * t, pitch_end * t, (8.0 * t, 3.0 * t))
        })
        .collect()
}

#[test]
fn a_head_looking_about_passes_the_motion_check() {
    let mut seq = natural_motion(15.0, 6.0);
    jitter(&mut seq, 0.5);
    let mut t = track();
    let (state, figures, _) = run(&mut t, &seq, Check::Motion);
    assert_eq!(state, State::Live, "{figures:?}");
    assert!(figures.shown && figures.parallax >= 0.02, "{figures:?}");
    assert!(
        t.take_best().is_some(),
        "a usable frame is kept for scoring"
    );
    // Once shown, it stays shown for the track.
    assert_eq!(t.evaluate(Check::Motion).0, State::Live);
}

#[test]
fn a_head_drawn_by_the_landmarks_alone_is_not_live_without_the_pixels() {
    // The same head-like landmarks on frames with no texture: the pixels
    // cannot confirm the nose moved, so the track waits.
    let mut seq = natural_motion(15.0, 6.0);
    jitter(&mut seq, 0.5);
    let mut t = Track::new(LivenessPolicy::default(), 0.5);
    let (state, figures, _) = run(&mut t, &seq, Check::Motion);
    assert_eq!(state, State::Pending, "{figures:?}");
    assert_eq!(figures.head_frames, 0, "{figures:?}");
    assert!(figures.unconfirmed_frames >= 3, "{figures:?}");
}

#[test]
fn a_still_face_is_never_judged_either_way() {
    let mut seq: Vec<_> = (0..30).map(|_| view(&head(0.0), 0.0)).collect();
    jitter(&mut seq, 0.5);
    let (state, figures, _) = run(&mut track(), &seq, Check::Motion);
    assert_eq!(state, State::Pending, "{figures:?}");
    assert!(!figures.shown && figures.motion < 0.04, "{figures:?}");
}

#[test]
fn a_picture_tilted_and_carried_is_a_presentation_attack() {
    let mut seq = photo_sequence(45.0);
    jitter(&mut seq, 0.5);
    let (state, figures, _) = run(&mut track(), &seq, Check::Motion);
    assert_eq!(state, State::Attack(LivenessFailure::Planar), "{figures:?}");
    assert_eq!(figures.failure, Some(LivenessFailure::Planar));
    assert!(figures.parallax < 0.01, "{figures:?}");
}

#[test]
fn steep_views_never_show_a_head() {
    // The natural motion that passes from the front (above), seen only
    // from far to the side: the mesh guesses such views from its
    // prior, so their parallax is no evidence (bent prints pass on it).
    let side = |from: f32| -> Vec<LivenessSample> {
        (0..12)
            .map(|i| {
                let t = i as f32 / 11.0;
                view_posed(&head(0.0), from + 15.0 * t, 6.0 * t, (8.0 * t, 3.0 * t))
            })
            .collect()
    };
    let steep = side(55.0);
    assert!(
        steep[0].aspect() < 0.8 * view(&head(0.0), 0.0).aspect(),
        "the views are steep"
    );
    let (state, figures, _) = run(&mut track(), &steep, Check::Motion);
    assert_eq!(state, State::Pending, "{figures:?}");
    assert_eq!(figures.head_frames, 0, "{figures:?}");
    let (state, figures, _) = run(&mut track(), &side(0.0), Check::Motion);
    assert_eq!(state, State::Live, "{figures:?}");
}

#[test]
fn a_glitched_reference_frame_does_not_make_a_picture_live() {
    let mut seq: Vec<_> = (0..20).map(|_| view(&head(0.0), 0.0)).collect();
    // The first frame's nose and chin landmarks are off (motion blur).
    seq[0].points[8].x += 6.0;
    seq[0].points[12].y += 8.0;
    let (state, figures, _) = run(&mut track(), &seq, Check::Motion);
    assert_eq!(state, State::Pending, "{figures:?}");
}

#[test]
fn the_challenge_needs_a_blink_and_the_asked_side() {
    // live_sequence turns the nose towards the image left.
    let seq = live_sequence(25.0);
    let (state, figures, _) = run(&mut track(), &seq, Check::Challenge(TurnSide::ImageLeft));
    assert_eq!(state, State::Live, "{figures:?}");
    assert!(figures.blinked && figures.turn >= 0.25, "{figures:?}");
    assert_eq!(figures.challenge, Some(TurnSide::ImageLeft));

    // The same head asked to turn the other way fails the challenge.
    let (state, figures, _) = run(&mut track(), &seq, Check::Challenge(TurnSide::ImageRight));
    assert_eq!(
        state,
        State::Attack(LivenessFailure::WrongSide),
        "{figures:?}"
    );

    // Turning as asked without the blink is not enough (but is no attack).
    let no_blink: Vec<_> = (0..12)
        .map(|i| view(&head(0.0), 25.0 * i as f32 / 11.0))
        .collect();
    let (state, figures, _) = run(
        &mut track(),
        &no_blink,
        Check::Challenge(TurnSide::ImageLeft),
    );
    assert_eq!(state, State::Pending, "{figures:?}");
    assert_eq!(figures.failure, Some(LivenessFailure::NoBlink));
    let lenient = LivenessPolicy {
        require_blink: false,
        ..LivenessPolicy::default()
    };
    let (state, _, _) = run(
        &mut Track::landmarks_only(lenient, 0.5),
        &no_blink,
        Check::Challenge(TurnSide::ImageLeft),
    );
    assert_eq!(state, State::Live);
}

#[test]
fn turning_the_wrong_way_first_fails_even_if_the_asked_side_follows() {
    let mut seq: Vec<_> = (0..8)
        .map(|i| view(&head(0.0), -20.0 * i as f32 / 7.0))
        .collect();
    seq.extend((0..12).map(|i| view(&head(0.0), -20.0 + 45.0 * i as f32 / 11.0)));
    let lenient = LivenessPolicy {
        require_blink: false,
        ..LivenessPolicy::default()
    };
    let (state, _, _) = run(
        &mut Track::landmarks_only(lenient, 0.5),
        &seq,
        Check::Challenge(TurnSide::ImageLeft),
    );
    assert_eq!(state, State::Attack(LivenessFailure::WrongSide));
}

#[test]
fn the_track_restarts_when_the_face_jumps_or_changes_person() {
    let mut t = track();
    let t0 = Instant::now();
    let seq = natural_motion(15.0, 6.0);
    for (i, s) in seq.iter().take(6).enumerate() {
        t.push(
            frame(s, 0),
            true,
            &FRAME,
            t0 + Duration::from_millis(66 * i as u64),
        );
    }
    assert_eq!(t.len(), 6);
    // Another person's usable face in the same place: a new track.
    t.push(
        frame(&seq[6], 1),
        true,
        &FRAME,
        t0 + Duration::from_millis(66 * 6),
    );
    assert_eq!(t.len(), 1);
    // The face leaps across the image: a new track.
    let mut far = seq[7].clone();
    far.points.iter_mut().for_each(|p| p.x += 200.0);
    t.push(
        frame(&far, 1),
        true,
        &FRAME,
        t0 + Duration::from_millis(66 * 7),
    );
    assert_eq!(t.len(), 1);
    // Gone for longer than MAX_GAP: a new track.
    t.push(frame(&far, 1), true, &FRAME, t0 + Duration::from_secs(5));
    assert_eq!(t.len(), 1);
    let (_, figures) = t.evaluate(Check::Motion);
    assert_eq!(figures.resets, 3);
}

#[test]
fn liveness_mode_names_and_policy_checks() {
    let p: LivenessPolicy =
        toml::from_str("mode = \"challenge\"\nrequire_blink = false\n").expect("parse");
    assert_eq!(p.mode, LivenessMode::Challenge);
    assert!(!p.require_blink);
    assert_eq!(LivenessPolicy::default().mode, LivenessMode::Motion);
    assert!(toml::from_str::<LivenessPolicy>("mode = \"none\"").is_err());
    assert!(toml::from_str::<LivenessPolicy>("min_paralax = 0.1").is_err());
    let bad = LivenessPolicy {
        min_motion: 0.01,
        ..LivenessPolicy::default()
    };
    assert!(bad.validate().is_err());
    assert!(LivenessPolicy::default().validate().is_ok());
}

#[test]
fn the_challenge_side_is_random_and_its_hint_names_the_persons_side() {
    let rng = ring::rand::SystemRandom::new();
    let sides: Vec<_> = (0..64).map(|_| random_side(&rng).expect("rng")).collect();
    assert!(sides.contains(&TurnSide::ImageLeft) && sides.contains(&TurnSide::ImageRight));
    assert_eq!(
        challenge_hint(TurnSide::ImageRight, true),
        "blink, then turn your head to your left"
    );
    assert_eq!(
        challenge_hint(TurnSide::ImageLeft, false),
        "turn your head to your right"
    );
}
