//! Which modalities a decision needs: the site's `[decision] modalities`
//! and, per request, a stronger policy the requester may ask for.
//!
//! Strength is a partial order: `face|voice` (either suffices) is the
//! weakest, `face` and `voice` each need one given factor and are not
//! comparable with each other, `face+voice` (both) is the strongest. A
//! request may raise the site's policy, never lower it or swap one factor
//! for the other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::enrolment::FACE;
use super::voice::VOICE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Modalities {
    #[default]
    Face,
    Voice,
    /// Both factors, fused: what a photo cannot fake on its own.
    FaceAndVoice,
    /// Either factor (a mask or poor light may rule the face out).
    FaceOrVoice,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModalitiesError {
    #[error("unknown modalities {0:?}: use \"face\", \"voice\", \"face+voice\" or \"face|voice\"")]
    Unknown(String),
    #[error("the request asks for {asked}, which is weaker than this site's policy {site}")]
    Weaker { asked: Modalities, site: Modalities },
    #[error("1:N identification is by face only; {0} was asked")]
    IdentifyByVoice(Modalities),
}

impl Modalities {
    pub const ALL: [Self; 4] = [
        Self::Face,
        Self::Voice,
        Self::FaceAndVoice,
        Self::FaceOrVoice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Face => "face",
            Self::Voice => "voice",
            Self::FaceAndVoice => "face+voice",
            Self::FaceOrVoice => "face|voice",
        }
    }

    /// Whether the camera is looked at.
    pub fn uses_face(self) -> bool {
        self != Self::Voice
    }

    /// Whether the microphone is listened to.
    pub fn uses_voice(self) -> bool {
        self != Self::Face
    }

    /// The factors that must each be shown (`face|voice`: none on its own).
    fn required(self) -> &'static [&'static str] {
        match self {
            Self::Face => &[FACE],
            Self::Voice => &[VOICE],
            Self::FaceAndVoice => &[FACE, VOICE],
            Self::FaceOrVoice => &[],
        }
    }

    /// Whether `self` demands at least what `site` does: every factor the
    /// site requires is required here too.
    pub fn at_least(self, site: Self) -> bool {
        site.required().iter().all(|f| self.required().contains(f))
    }

    /// The policy a request runs under: the site's, or the stronger one
    /// it asked for.
    pub fn for_request(site: Self, asked: Option<Self>) -> Result<Self, ModalitiesError> {
        match asked {
            None => Ok(site),
            Some(asked) if asked.at_least(site) => Ok(asked),
            Some(asked) => Err(ModalitiesError::Weaker { asked, site }),
        }
    }

    /// 1:N searches faces only: a voice-only or fused policy cannot be met.
    pub fn check_identify(self) -> Result<(), ModalitiesError> {
        match self {
            Self::Face | Self::FaceOrVoice => Ok(()),
            other => Err(ModalitiesError::IdentifyByVoice(other)),
        }
    }
}

/// `[decision]`: what this site's doors need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionConfig {
    /// `face`, `voice`, `face+voice` or `face|voice` (docs/config.md).
    pub modalities: Modalities,
}

impl FromStr for Modalities {
    type Err = ModalitiesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ModalitiesError::Unknown(crate::untrusted::echo(s, 32)))
    }
}

impl TryFrom<String> for Modalities {
    type Error = ModalitiesError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Modalities> for String {
    fn from(m: Modalities) -> Self {
        m.as_str().to_owned()
    }
}

impl fmt::Display for Modalities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Modalities::{self, *};

    #[test]
    fn a_request_may_raise_the_site_policy_never_lower_or_swap_it() {
        let ok = |site, asked| Modalities::for_request(site, Some(asked)).is_ok();
        assert!(ok(Face, FaceAndVoice));
        assert!(ok(Voice, FaceAndVoice));
        assert!(ok(FaceOrVoice, Face));
        assert!(ok(FaceOrVoice, Voice));
        assert!(ok(Face, Face));
        assert!(!ok(Face, Voice), "swapping the factor is not stronger");
        assert!(!ok(Voice, Face));
        assert!(!ok(Face, FaceOrVoice));
        assert!(!ok(FaceAndVoice, Face));
        assert!(!ok(FaceAndVoice, FaceOrVoice));
        assert_eq!(Modalities::for_request(Voice, None), Ok(Voice));
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for m in Modalities::ALL {
            assert_eq!(m.as_str().parse::<Modalities>(), Ok(m));
        }
        assert!("face+face".parse::<Modalities>().is_err());
        assert!("".parse::<Modalities>().is_err());
    }

    #[test]
    fn identify_is_by_face() {
        assert!(Face.check_identify().is_ok());
        assert!(FaceOrVoice.check_identify().is_ok());
        assert!(Voice.check_identify().is_err());
        assert!(FaceAndVoice.check_identify().is_err());
    }
}
