//! Compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037).
//!
//! Verification checks, in order, each with its own error: the format, the
//! header (`alg`, `typ`), the key id, the signature, then expiry and nonce,
//! so a caller learns exactly what failed and never reads unsigned claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use super::claims::{ALG, Claims, Header, TYP};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerdictError {
    #[error("not a compact JWS (three base64url parts separated by dots): {0}")]
    Malformed(String),
    #[error("unsupported header: alg {alg:?}, typ {typ:?} (expected EdDSA, edgeid-verdict+jwt)")]
    UnsupportedHeader { alg: String, typ: String },
    #[error(
        "signed by key {got:?}, not the expected device key {expected:?}: check --key / the device"
    )]
    WrongKid { expected: String, got: String },
    #[error("the signature is invalid: the verdict was altered or not signed by this device")]
    BadSignature,
    #[error("the verdict expired at {exp} (now {now}): ask for a fresh one")]
    Expired { exp: i64, now: i64 },
    #[error("the verdict was issued in the future (iat {iat}, now {now}): check the clocks")]
    IssuedInFuture { iat: i64, now: i64 },
    #[error("the verdict carries nonce {got:?}, not the expected {expected:?}: it may be a replay")]
    NonceMismatch {
        expected: String,
        got: Option<String>,
    },
}

/// Signing can fail only if the claims cannot be serialised.
#[derive(Debug, thiserror::Error)]
#[error("cannot serialise the verdict")]
pub struct SignError(#[from] serde_json::Error);

impl VerdictError {
    /// Which check failed, as a stable word for scripts.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "format",
            Self::UnsupportedHeader { .. } => "header",
            Self::WrongKid { .. } => "kid",
            Self::BadSignature => "signature",
            Self::Expired { .. } => "exp",
            Self::IssuedInFuture { .. } => "iat",
            Self::NonceMismatch { .. } => "nonce",
        }
    }
}

/// A verified verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub header: Header,
    pub claims: Claims,
}

/// Clock skew tolerated for `iat` only; `exp` is strict.
pub const IAT_LEEWAY_SECS: i64 = 60;

/// Signs `claims` into a compact JWS.
pub fn sign(claims: &Claims, key: &Ed25519KeyPair, kid: &str) -> Result<String, SignError> {
    let header = serde_json::to_vec(&Header::new(kid))?;
    let payload = serde_json::to_vec(claims)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

/// Decodes header and claims without checking anything (for display only).
pub fn decode_unverified(token: &str) -> Result<(Header, Claims), VerdictError> {
    let (h, p, _) = split(token)?;
    Ok((parse(h, "header")?, parse(p, "claims")?))
}

fn split(token: &str) -> Result<(&str, &str, &str), VerdictError> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => {
            Ok((h, p, s))
        }
        _ => Err(VerdictError::Malformed(
            "expected header.payload.signature".into(),
        )),
    }
}

fn parse<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, VerdictError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerdictError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|e| VerdictError::Malformed(format!("the {what}: {e}")))
}

/// Verifies `token` against `public_key` whose key id is `kid`, at `now`
/// (Unix seconds); with `nonce`, the verdict must carry exactly that nonce.
pub fn verify(
    token: &str,
    public_key: &[u8; 32],
    kid: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<Verified, VerdictError> {
    let token = token.trim();
    let (h, p, s) = split(token)?;
    let header: Header = parse(h, "header")?;
    if header.alg != ALG || header.typ != TYP {
        return Err(VerdictError::UnsupportedHeader {
            alg: header.alg,
            typ: header.typ,
        });
    }
    if header.kid != kid {
        return Err(VerdictError::WrongKid {
            expected: kid.into(),
            got: header.kid,
        });
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| VerdictError::Malformed("the signature is not base64url".into()))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| VerdictError::BadSignature)?;
    let claims: Claims = parse(p, "claims")?;
    if now >= claims.exp {
        return Err(VerdictError::Expired {
            exp: claims.exp,
            now,
        });
    }
    if claims.iat > now + IAT_LEEWAY_SECS {
        return Err(VerdictError::IssuedInFuture {
            iat: claims.iat,
            now,
        });
    }
    if let Some(expected) = nonce
        && claims.nonce.as_deref() != Some(expected)
    {
        return Err(VerdictError::NonceMismatch {
            expected: expected.into(),
            got: claims.nonce,
        });
    }
    Ok(Verified { header, claims })
}
