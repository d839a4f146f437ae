//! What an entry point hands the decision path: the analysed frames, how
//! the attempt ended, and the liveness and presentation-attack findings.
//! Gathering is the entry point's business (photo files in the CLI, camera
//! frames in the daemon); judging it is [`super::Authenticator`]'s.

use serde::Serialize;

use super::liveness::{Figures, LivenessMode};
use super::verify::select_face;
use crate::pipeline::FrameAnalysis;
use crate::sources::SourceKind;
use crate::verdict::Reason;
pub use crate::verdict::claims::{Capture, LivenessCheck};

/// One analysed frame and, when a passive PAD model judged its face, that
/// judgement.
#[derive(Debug, Clone)]
pub struct Sample {
    pub analysis: FrameAnalysis,
    pub pad: Option<PadResult>,
}

impl Sample {
    pub fn new(analysis: FrameAnalysis) -> Self {
        Self {
            analysis,
            pad: None,
        }
    }

    /// Whether this sample may be enrolled or scored on its own: a usable
    /// face (one, good enough) that no PAD check refused. The reason is
    /// the one the verdict would carry.
    pub fn judge(&self) -> Result<(), Reason> {
        select_face(&[&self.analysis])?;
        match self.pad {
            Some(pad) if !pad.live => Err(Reason::PresentationAttack),
            _ => Ok(()),
        }
    }
}

/// A passive PAD model's score for one face against its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PadResult {
    pub score: f32,
    pub live: bool,
}

/// How the evidence gathering ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Everything needed was gathered (photo files read, or a usable face
    /// held after liveness).
    Complete,
    /// The request's deadline passed first.
    Deadline,
    /// The daemon is stopping.
    Shutdown,
}

impl From<LivenessMode> for LivenessCheck {
    fn from(mode: LivenessMode) -> Self {
        match mode {
            LivenessMode::Off => Self::Off,
            LivenessMode::Motion => Self::Motion,
            LivenessMode::Challenge => Self::Challenge,
        }
    }
}

/// The liveness check in force and what it concluded.
#[derive(Debug, Clone)]
pub struct Liveness {
    pub check: LivenessCheck,
    pub verdict: LivenessVerdict,
    /// The figures behind the verdict (never landmarks or images).
    pub figures: Option<Figures>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessVerdict {
    /// No check ran, or it had not concluded.
    NotShown,
    Live,
    /// A picture, a screen or a failed challenge.
    Attack,
}

impl Liveness {
    /// No check in force (`check` is `None` or `Off`).
    pub fn unchecked(check: LivenessCheck) -> Self {
        Self {
            check,
            verdict: LivenessVerdict::NotShown,
            figures: None,
        }
    }

    /// The audit record: the mode in force and the figures that explain
    /// the judgement.
    pub fn record(&self) -> serde_json::Value {
        let mut record = self
            .figures
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(map) = record.as_object_mut() {
            map.insert("mode".into(), serde_json::json!(self.check));
        }
        record
    }
}

/// Counts of what the analysed frames showed, so an attempt that ran out
/// of time can say why no face was decided on.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub frames: u32,
    /// Frames with a usable face.
    pub usable: u32,
    /// Frames with a face that was not usable (quality).
    pub faces: u32,
    pub multiple: u32,
    /// The last frame's hint for the person (enrollment progress).
    pub hint: Option<&'static str>,
}

impl Seen {
    pub fn note(&mut self, analysis: &FrameAnalysis) {
        self.frames += 1;
        self.hint = None;
        if usable(analysis) {
            self.usable += 1;
        } else if analysis.ambiguous {
            self.multiple += 1;
            self.hint = Some("one person at a time");
        } else if let Some(face) = &analysis.face {
            self.faces += 1;
            self.hint = face.quality_failures.first().map(|f| f.hint());
        } else {
            self.hint = Some("no face in view: look at the camera");
        }
    }

    /// The reason for an attempt that found no usable face, in the order
    /// `select_face` ranks them.
    pub fn reason(&self) -> Reason {
        if self.multiple > 0 {
            Reason::MultipleFaces
        } else if self.faces > 0 {
            Reason::LowQuality
        } else if self.frames > 0 {
            Reason::NoFace
        } else {
            Reason::Timeout
        }
    }
}

/// True when the frame has a face good enough to decide on.
pub fn usable(analysis: &FrameAnalysis) -> bool {
    select_face(&[analysis]).is_ok()
}

/// Everything gathered for one attempt.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The frames to choose the face from: every photo of a CLI request;
    /// in the daemon, the frame liveness was shown on (or the first usable
    /// one with liveness off). Empty when the attempt ended early.
    pub samples: Vec<Sample>,
    /// Every frame analysed, including those not kept.
    pub seen: Seen,
    pub liveness: Liveness,
    pub ended: Ended,
    /// Where the frames came from (the verdict's `src` claim).
    pub capture: Capture,
}

/// How the evidence behind a verdict was obtained: its `src` and
/// `liveness` claims, so a controller can refuse a verdict made from a
/// photo file or with liveness off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    pub capture: Capture,
    pub liveness: LivenessCheck,
}

impl Provenance {
    /// Decided before any frame was looked at (a locked-out claim).
    pub const NONE: Self = Self {
        capture: Capture::None,
        liveness: LivenessCheck::None,
    };

    /// Photo files: no liveness can be shown on them.
    pub const PHOTOS: Self = Self {
        capture: Capture::File,
        liveness: LivenessCheck::None,
    };
}

/// The capture a configured frame source stands for.
impl From<SourceKind> for Capture {
    fn from(kind: SourceKind) -> Self {
        match kind {
            SourceKind::V4l2 => Self::Camera,
            SourceKind::Y4m | SourceKind::Raw => Self::Stream,
            SourceKind::Folder => Self::File,
        }
    }
}

impl Evidence {
    pub fn provenance(&self) -> Provenance {
        Provenance {
            capture: self.capture,
            liveness: self.liveness.check,
        }
    }

    /// Photo files: every photo is a sample, nothing can show liveness.
    pub fn photos(samples: Vec<Sample>) -> Self {
        let mut seen = Seen::default();
        for s in &samples {
            seen.note(&s.analysis);
        }
        Self {
            samples,
            seen,
            liveness: Liveness::unchecked(Provenance::PHOTOS.liveness),
            ended: Ended::Complete,
            capture: Provenance::PHOTOS.capture,
        }
    }
}
