//! Exactly the verdict header and claims of docs/verdict.md. The types have no
//! field for a score, an embedding or an image, so none can be signed.

use serde::{Deserialize, Serialize};

pub use super::reason::Reason;

pub const ALG: &str = "EdDSA";
pub const TYP: &str = "edgeid-verdict+jwt";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub alg: String,
    pub kid: String,
    pub typ: String,
}

impl Header {
    pub fn new(kid: &str) -> Self {
        Self {
            alg: ALG.into(),
            kid: kid.into(),
            typ: TYP.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Device id.
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique id of this verdict.
    pub jti: String,
    /// Monotonic per device; persisted before the verdict is released.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub decision: Decision,
    /// Pseudonymous subject id: only on accept, or the claim of a 1:1 request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub mode: Mode,
    pub reason: Reason,
    pub modalities: Vec<String>,
    /// How the evidence was captured: a controller that needs a person at
    /// the device requires `camera` (docs/verdict.md, "Evidence claims").
    pub src: Capture,
    /// The liveness check in force for the attempt.
    pub liveness: LivenessCheck,
    /// RFC 8176 authentication method references of the modalities used
    /// (`face`; `vbm` for voice).
    pub amr: Vec<String>,
}

/// Where the frames of an attempt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    /// A camera device on this machine (V4L2).
    Camera,
    /// A microphone device on this machine (a voice-only decision).
    Microphone,
    /// Frames or audio piped in by another program (Y4M or raw from a
    /// file, FIFO or stdin): a live sensor only if the site's pipeline says so.
    Stream,
    /// Photo files (`edgeid verify`, an image folder source).
    File,
    /// Decided before any frame was looked at (e.g. `locked_out`).
    None,
}

impl Capture {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Microphone => "microphone",
            Self::Stream => "stream",
            Self::File => "file",
            Self::None => "none",
        }
    }
}

/// Which liveness check was in force for the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivenessCheck {
    /// None could be: photo files show no motion, or nothing was looked at.
    None,
    /// Turned off by `[liveness] mode = "off"`.
    Off,
    Motion,
    Challenge,
}

impl LivenessCheck {
    pub fn in_force(self) -> bool {
        matches!(self, Self::Motion | Self::Challenge)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Off => "off",
            Self::Motion => "motion",
            Self::Challenge => "challenge",
        }
    }
}

/// The RFC 8176 `amr` value of a modality name (`face` → `face`, `voice`
/// → `vbm`, voice biometric); `None` for a name RFC 8176 does not register.
pub fn amr_of(modality: &str) -> Option<&'static str> {
    match modality {
        "face" => Some("face"),
        "voice" => Some("vbm"),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accept,
    Reject,
}

impl Decision {
    /// Accept when a score passed its threshold.
    pub fn of(accepted: bool) -> Self {
        if accepted { Self::Accept } else { Self::Reject }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 1:1 against a claimed subject.
    Verify,
    /// 1:N over the gallery.
    Identify,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Identify => "identify",
        }
    }
}
