use super::fit::{Homography, fit_homography};
use super::synthetic::{head, jitter, live_sequence, photo_sequence, view, view_posed};
use super::*;
use crate::vision::geometry::Point;

#[test]
fn a_turning_blinking_head_is_live() {
    let report = judge(
        &live_sequence(25.0),
        TurnSide::ImageLeft,
        &LivenessConfig::default(),
    );
    assert!(report.live, "{report:?}");
    assert!(report.blinked);
    assert!(report.parallax > 0.02, "{report:?}");
}

#[test]
fn turning_to_the_wrong_side_fails() {
    let report = judge(
        &live_sequence(25.0),
        TurnSide::ImageRight,
        &LivenessConfig::default(),
    );
    assert_eq!(
        report.failure,
        Some(LivenessFailure::WrongSide),
        "{report:?}"
    );
}

#[test]
fn a_tilted_photo_is_planar() {
    let seq = photo_sequence(40.0);
    let a = &seq[0];
    let b = &seq[9];
    assert!(planar_residual(a, b) < 1e-3, "{}", planar_residual(a, b));
    // Even with blink and turn requirements waived, planarity rejects it.
    let lenient = LivenessConfig {
        require_blink: false,
        min_turn: -1.0,
        ..LivenessConfig::default()
    };
    let report = judge(&seq, TurnSide::ImageRight, &lenient);
    assert_eq!(report.failure, Some(LivenessFailure::Planar), "{report:?}");
}

#[test]
fn a_photo_cannot_blink() {
    let report = judge(
        &photo_sequence(30.0),
        TurnSide::ImageRight,
        &LivenessConfig::default(),
    );
    assert_eq!(report.failure, Some(LivenessFailure::NoBlink));
}

#[test]
fn noisy_landmarks_on_a_photo_stay_below_the_parallax_threshold() {
    // ±0.5 px jitter, deterministic.
    let mut seq = photo_sequence(35.0);
    jitter(&mut seq, 0.5);
    let r = planar_residual(&seq[0], &seq[9]);
    assert!(r < LivenessConfig::default().min_parallax, "{r}");
}

#[test]
fn homography_fit_recovers_a_projective_map() {
    let h = Homography([[1.1, 0.05, 3.0], [-0.02, 0.95, -4.0], [1e-4, -2e-4, 1.0]]);
    let src: Vec<Point> = (0..8)
        .map(|i| Point::new((i * 37 % 100) as f32, (i * 53 % 90) as f32))
        .collect();
    let dst: Vec<Point> = src.iter().map(|&p| h.apply(p)).collect();
    let fit = fit_homography(&src, &dst).expect("fit");
    for (p, q) in src.iter().zip(&dst) {
        assert!(fit.apply(*p).distance(*q) < 1e-2);
    }
    assert!(fit_homography(&src[..3], &dst[..3]).is_none());
}

#[test]
fn too_few_frames_cannot_be_judged() {
    let report = judge(
        &live_sequence(25.0)[..2],
        TurnSide::ImageRight,
        &LivenessConfig::default(),
    );
    assert_eq!(report.failure, Some(LivenessFailure::TooFewFrames));
}

#[test]
fn shape_change_ignores_shift_scale_and_roll_but_sees_a_turn_and_a_tilt() {
    let front = view(&head(0.0), 0.0);
    // Shifted, scaled and rolled by 10°: the same shape.
    let (s, c) = 10f32.to_radians().sin_cos();
    let moved = LivenessSample {
        points: front.points.map(|p| {
            let (x, y) = (p.x - 320.0, p.y - 240.0);
            Point::new(400.0 + 1.3 * (c * x - s * y), 200.0 + 1.3 * (s * x + c * y))
        }),
    };
    assert!(shape_change(&front, &moved) < 1e-4);
    let turned = view(&head(0.0), 20.0);
    assert!(shape_change(&front, &turned) > 0.05);
    let tilted = photo_sequence(40.0);
    assert!(shape_change(&tilted[0], &tilted[9]) > 0.02);
}

#[test]
#[ignore = "prints the figures the liveness defaults were chosen from"]
fn print_liveness_figures() {
    let front = view(&head(0.0), 0.0);
    for yaw in [2.0, 5.0, 10.0, 15.0, 20.0, 25.0] {
        let t = view(&head(0.0), yaw);
        let p = view_posed(&head(0.0), 0.0, yaw, (0.0, 0.0));
        eprintln!(
            "yaw {yaw:>4}: shape {:.4} parallax {:.4} turn {:.3} | pitch: shape {:.4} parallax {:.4}",
            shape_change(&front, &t),
            planar_residual(&front, &t),
            t.turn(),
            shape_change(&front, &p),
            planar_residual(&front, &p)
        );
    }
    for tilt in [10.0, 20.0, 30.0, 40.0] {
        let seq = photo_sequence(tilt);
        eprintln!(
            "photo tilt {tilt}: shape {:.4} parallax {:.4} turn {:.3}",
            shape_change(&seq[0], &seq[9]),
            planar_residual(&seq[0], &seq[9]),
            seq[9].turn() - seq[0].turn()
        );
    }
}
