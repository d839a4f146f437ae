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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accept,
    Reject,
}

impl Decision {
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
