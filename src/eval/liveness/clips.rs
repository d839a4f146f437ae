//! Clips of a live head and of the attacks on it, rendered with real 3-D
//! geometry: the head is the photo's own face mesh, turning about the neck
//! the way people look about (yaw, pitch, roll paths at natural speeds,
//! blinks); a print is the whole photo on a sheet, moved in its plane,
//! tilted out of it, or bent; a replay is a live clip on a screen held in
//! front of the camera; a still is a print that does not move.

use image::{Rgb, RgbImage};
use serde::Serialize;

use super::mesh::{Head, Mesh, sheet};
use super::optics::{Exposure, expose, moire, on_screen, wall};
use super::render::{Canvas, Pose};
use crate::eval::rng::Rng;
use crate::vision::landmarks::FaceMesh;
use crate::vision::liveness::TurnSide;

/// What a clip shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipKind {
    /// A live head looking about (bona fide).
    Live,
    /// A print moved in its own plane (shifted, rolled, nearer, further).
    PrintMoved,
    /// A print tilted out of its plane: every view is a homography.
    PrintTilted,
    /// A print bent round a cylinder and turned.
    PrintCurved,
    /// A live clip played on a screen held in front of the camera.
    ScreenReplay,
    /// A print held still.
    Still,
}

impl ClipKind {
    pub const ATTACKS: [ClipKind; 5] = [
        Self::PrintMoved,
        Self::PrintTilted,
        Self::PrintCurved,
        Self::ScreenReplay,
        Self::Still,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::PrintMoved => "print_moved",
            Self::PrintTilted => "print_tilted",
            Self::PrintCurved => "print_curved",
            Self::ScreenReplay => "screen_replay",
            Self::Still => "still",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        std::iter::once(Self::Live)
            .chain(Self::ATTACKS)
            .find(|k| k.name() == name)
    }
}

/// Frame size, rate and length of the clips.
#[derive(Debug, Clone, Copy)]
pub struct ClipSpec {
    pub size: (u32, u32),
    pub fps: f32,
    pub seconds: f32,
}

impl ClipSpec {
    fn frames(&self) -> usize {
        (self.seconds * self.fps).round().max(1.0) as usize
    }

    /// Focal length in pixels: a webcam's field of view, about 60° across.
    fn focal(&self) -> f32 {
        0.87 * self.size.0 as f32
    }
}

/// A photo and its face mesh: the person every clip shows.
pub struct Subject {
    pub photo: RgbImage,
    pub face: FaceMesh,
}

/// A rendered clip, and the side a live head first turns to.
pub struct Clip {
    pub kind: ClipKind,
    pub frames: Vec<RgbImage>,
    pub side: Option<TurnSide>,
}

/// Distance between the outer eye corners of an adult, mm.
const EYE_MM: f32 = 90.0;

/// Why a clip could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the photo's face mesh is too small or incomplete to build a head from")]
    NoHead,
}

/// One smooth oscillation: amplitude, frequency (Hz) and phase.
#[derive(Debug, Clone, Copy)]
struct Wave(f32, f32, f32);

impl Wave {
    fn random(rng: &mut Rng, amplitude: (f32, f32), hz: (f32, f32)) -> Self {
        Self(
            rng.range(amplitude.0, amplitude.1) * rng.sign(),
            rng.range(hz.0, hz.1),
            rng.range(0.0, std::f32::consts::TAU),
        )
    }

    fn at(&self, t: f32) -> f32 {
        self.0 * (std::f32::consts::TAU * self.1 * t + self.2).sin()
    }
}

/// A path of poses: yaw, pitch, roll (degrees) and x, y, z (mm) waves
/// about a resting pose.
struct Path {
    rest: Pose,
    waves: [Wave; 6],
}

impl Path {
    fn at(&self, t: f32) -> Pose {
        let w = self.waves.map(|w| w.at(t));
        Pose {
            yaw: self.rest.yaw + w[0].to_radians(),
            pitch: self.rest.pitch + w[1].to_radians(),
            roll: self.rest.roll + w[2].to_radians(),
            position: std::array::from_fn(|k| self.rest.position[k] + w[3 + k]),
        }
    }
}

/// Renders a clip of `kind` showing `subject`, from `seed`.
pub fn render_clip(
    subject: &Subject,
    kind: ClipKind,
    spec: ClipSpec,
    seed: u64,
) -> Result<Clip, ClipError> {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(kind as u64));
    let side = if rng.sign() > 0.0 {
        TurnSide::ImageRight
    } else {
        TurnSide::ImageLeft
    };
    let background = wall(spec.size, &mut rng);
    let camera = CameraDrift::random(&mut rng);
    let frames = match kind {
        ClipKind::Live => live_frames(subject, spec, side, &background, &mut rng)?,
        ClipKind::ScreenReplay => {
            let shown = live_frames(subject, spec, side, &wall(spec.size, &mut rng), &mut rng)?;
            replay_frames(&shown, spec, &background, &mut rng)
        }
        print => print_frames(subject, print, spec, &background, &mut rng),
    };
    let frames = frames
        .into_iter()
        .enumerate()
        .map(|(k, mut f)| {
            expose(&mut f, camera.at(k as f32 / spec.fps), &mut rng);
            f
        })
        .collect();
    let side = matches!(kind, ClipKind::Live | ClipKind::ScreenReplay).then_some(side);
    Ok(Clip { kind, frames, side })
}

/// Auto-exposure hunting, sensor noise and the odd soft frame.
struct CameraDrift {
    gain: Wave,
    noise: f32,
    blur_every: usize,
}

impl CameraDrift {
    fn random(rng: &mut Rng) -> Self {
        Self {
            gain: Wave::random(rng, (0.03, 0.12), (0.1, 0.4)),
            noise: rng.range(1.0, 4.0),
            blur_every: 3 + (rng.next_u64() % 6) as usize,
        }
    }

    fn at(&self, t: f32) -> Exposure {
        let k = (t * 1000.0) as usize / 67;
        Exposure {
            gain: 1.0 + self.gain.at(t),
            noise: self.noise,
            blur: u32::from(k.is_multiple_of(self.blur_every)),
        }
    }
}

/// A head that starts facing the camera, looks first towards `side`, then
/// about; blinks soon after the start and every few seconds.
fn live_frames(
    subject: &Subject,
    spec: ClipSpec,
    side: TurnSide,
    background: &RgbImage,
    rng: &mut Rng,
) -> Result<Vec<RgbImage>, ClipError> {
    let mut head = Head::from_face(&subject.face, subject.photo.dimensions(), EYE_MM)
        .ok_or(ClipError::NoHead)?;
    // Turning to the image right moves the nose right: a negative yaw.
    let towards = if side == TurnSide::ImageRight {
        -1.0
    } else {
        1.0
    };
    let yaw = Wave(towards * rng.range(12.0, 30.0), rng.range(0.25, 0.55), 0.0);
    let path = Path {
        rest: Pose {
            position: [
                rng.range(-30.0, 30.0),
                rng.range(-20.0, 20.0),
                rng.range(450.0, 600.0),
            ],
            ..Pose::default()
        },
        waves: [
            yaw,
            Wave::random(rng, (2.0, 8.0), (0.2, 0.5)),
            Wave::random(rng, (1.0, 5.0), (0.1, 0.4)),
            Wave::random(rng, (5.0, 20.0), (0.1, 0.3)),
            Wave::random(rng, (3.0, 10.0), (0.1, 0.3)),
            Wave::random(rng, (5.0, 25.0), (0.1, 0.3)),
        ],
    };
    let first_blink = rng.range(0.15, 0.6);
    let blink_every = rng.range(2.0, 4.0);
    let blink_len = rng.range(0.3, 0.45);
    Ok((0..spec.frames())
        .map(|k| {
            let t = k as f32 / spec.fps;
            let since = (t - first_blink).rem_euclid(blink_every);
            let closure = if t >= first_blink && since < blink_len {
                // Down fast, shut a moment, up a little slower.
                let x = since / blink_len;
                (x / 0.25).min(1.0).min((1.0 - x) / 0.4)
            } else {
                0.0
            };
            head.set_blink(closure);
            let mut canvas = Canvas::new(background.clone(), spec.focal());
            canvas.draw(&head.mesh, &path.at(t), &subject.photo, 1);
            canvas.image
        })
        .collect())
}

/// The photo printed and held: moved in its plane, tilted, bent or still.
fn print_frames(
    subject: &Subject,
    kind: ClipKind,
    spec: ClipSpec,
    background: &RgbImage,
    rng: &mut Rng,
) -> Vec<RgbImage> {
    let photo = &subject.photo;
    // The printed face about life size (a little smaller, as prints are).
    let eye_px = subject
        .face
        .point(33)
        .distance(subject.face.point(263))
        .max(4.0);
    let eye_mm = EYE_MM * rng.range(0.6, 1.0);
    let height_mm = eye_mm * photo.height() as f32 / eye_px;
    let distance = rng.range(450.0, 600.0) * eye_mm / EYE_MM;
    // The face, not the sheet's centre, faces the camera.
    let s = eye_mm / eye_px;
    let face = subject.face.point(1);
    let offset = [
        -(face.x - photo.width() as f32 / 2.0) * s,
        -(face.y - photo.height() as f32 / 2.0) * s,
        distance,
    ];
    let bend = (kind == ClipKind::PrintCurved).then(|| rng.range(70.0, 160.0));
    let mesh: Mesh = sheet(photo.dimensions(), height_mm, bend);
    let still = Wave(0.0, 0.0, 0.0);
    let (tilt, roll, shift) = match kind {
        ClipKind::PrintMoved => ((0.0, 2.0), (5.0, 15.0), (20.0, 50.0)),
        ClipKind::PrintTilted => ((15.0, 35.0), (0.0, 5.0), (5.0, 20.0)),
        ClipKind::PrintCurved => ((10.0, 30.0), (0.0, 5.0), (5.0, 20.0)),
        _ => ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0)),
    };
    let mut wave = |a: (f32, f32), hz: (f32, f32)| {
        if a.1 > 0.0 {
            Wave::random(rng, a, hz)
        } else {
            still
        }
    };
    let path = Path {
        rest: Pose {
            position: offset,
            ..Pose::default()
        },
        waves: [
            wave(tilt, (0.2, 0.5)),
            wave((tilt.0 * 0.6, tilt.1 * 0.6), (0.2, 0.5)),
            wave(roll, (0.2, 0.5)),
            wave(shift, (0.1, 0.4)),
            wave((shift.0 * 0.6, shift.1 * 0.6), (0.1, 0.4)),
            wave((shift.0 * 1.5, shift.1 * 1.5), (0.1, 0.3)),
        ],
    };
    (0..spec.frames())
        .map(|k| {
            let mut canvas = Canvas::new(background.clone(), spec.focal());
            canvas.draw(&mesh, &path.at(k as f32 / spec.fps), photo, 1);
            canvas.image
        })
        .collect()
}

/// `shown` played on a tablet held in front of the camera: a bezel, the
/// screen's gamma and cast, moiré, and a hand that is not quite still.
fn replay_frames(
    shown: &[RgbImage],
    spec: ClipSpec,
    background: &RgbImage,
    rng: &mut Rng,
) -> Vec<RgbImage> {
    let Some(first) = shown.first() else {
        return Vec::new();
    };
    let screen_h = rng.range(110.0, 150.0);
    let bezel = sheet((4, 3), screen_h * 1.15, None);
    let black = RgbImage::from_pixel(4, 3, Rgb([12, 12, 14]));
    let gamma = rng.range(0.8, 1.25);
    let tint = [
        rng.range(0.9, 1.0),
        rng.range(0.92, 1.0),
        rng.range(0.95, 1.05),
    ];
    let (period, angle, depth) = (
        rng.range(3.0, 9.0),
        rng.range(0.0, 3.1),
        rng.range(0.04, 0.1),
    );
    let rest = Pose {
        position: [0.0, 0.0, screen_h * rng.range(2.6, 3.4)],
        ..Pose::default()
    };
    let hand =
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0].map(|_: f32| Wave::random(rng, (0.5, 2.0), (0.1, 0.5)));
    let path = Path { rest, waves: hand };
    let screen = sheet(first.dimensions(), screen_h, None);
    shown
        .iter()
        .enumerate()
        .map(|(k, frame)| {
            let pose = path.at(k as f32 / spec.fps);
            let mut behind = pose;
            behind.position[2] += 2.0;
            let mut canvas = Canvas::new(background.clone(), spec.focal());
            canvas.draw(&bezel, &behind, &black, 2);
            canvas.draw(&screen, &pose, &on_screen(frame, gamma, tint), 1);
            let covered: Vec<bool> = canvas.owner.iter().map(|&o| o == 1).collect();
            moire(&mut canvas.image, &covered, period, angle, depth);
            canvas.image
        })
        .collect()
}
