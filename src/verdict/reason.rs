//! Reason codes: a fixed, documented list so integrators can switch on them.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The face matched the claimed (or an enrolled) subject.
    Match,
    /// A face was seen but matched no one (or not the claimed subject).
    NoMatch,
    /// No face was found in any frame.
    NoFace,
    /// Two or more faces of similar size: the decision would be ambiguous.
    MultipleFaces,
    /// A face was found but too small, blurred, turned or badly lit.
    LowQuality,
    /// Liveness checks failed: a photo, screen or mask is suspected.
    PresentationAttack,
    /// The voice did not match.
    VoiceMismatch,
    /// The voice probe held less speech than a decision needs.
    TooLittleSpeech,
    /// Too many failed attempts for this subject recently.
    LockedOut,
    /// No decision could be made before the deadline.
    Timeout,
    /// The claimed subject is not enrolled.
    UnknownSubject,
    /// The subject's templates failed their integrity check.
    StoreTampered,
    /// The subject's templates were made by another embedder: re-enrol.
    ModelMismatch,
}

impl Reason {
    /// The reason of a scored face: `match` when it passed the threshold.
    pub fn of_score(accepted: bool) -> Self {
        if accepted { Self::Match } else { Self::NoMatch }
    }

    pub const ALL: [Reason; 13] = [
        Reason::Match,
        Reason::NoMatch,
        Reason::NoFace,
        Reason::MultipleFaces,
        Reason::LowQuality,
        Reason::PresentationAttack,
        Reason::VoiceMismatch,
        Reason::TooLittleSpeech,
        Reason::LockedOut,
        Reason::Timeout,
        Reason::UnknownSubject,
        Reason::StoreTampered,
        Reason::ModelMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Match => "match",
            Reason::NoMatch => "no_match",
            Reason::NoFace => "no_face",
            Reason::MultipleFaces => "multiple_faces",
            Reason::LowQuality => "low_quality",
            Reason::PresentationAttack => "presentation_attack",
            Reason::VoiceMismatch => "voice_mismatch",
            Reason::TooLittleSpeech => "too_little_speech",
            Reason::LockedOut => "locked_out",
            Reason::Timeout => "timeout",
            Reason::UnknownSubject => "unknown_subject",
            Reason::StoreTampered => "store_tampered",
            Reason::ModelMismatch => "model_mismatch",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_display_names() {
        for r in Reason::ALL {
            let json = serde_json::to_string(&r).expect("serialise");
            assert_eq!(json, format!("\"{r}\""));
        }
    }
}
