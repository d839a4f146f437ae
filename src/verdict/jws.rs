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
    #[error("unsupported header: alg {alg:?}, typ {typ:?} (expected EdDSA, {expected})")]
    UnsupportedHeader {
        alg: String,
        typ: String,
        expected: String,
    },
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
    sign_as(TYP, claims, key, kid)
}

/// Signs any JSON `payload` into a compact JWS of type `typ` (a verdict, an
/// audit export).
pub fn sign_as<P: serde::Serialize>(
    typ: &str,
    payload: &P,
    key: &Ed25519KeyPair,
    kid: &str,
) -> Result<String, SignError> {
    let header = serde_json::to_vec(&Header {
        alg: ALG.into(),
        kid: kid.into(),
        typ: typ.into(),
    })?;
    let payload = serde_json::to_vec(payload)?;
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

fn decode(part: &str, what: &str) -> Result<Vec<u8>, VerdictError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerdictError::Malformed(format!("the {what} is not base64url")))
}

fn parse_bytes<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, VerdictError> {
    serde_json::from_slice(bytes).map_err(|e| VerdictError::Malformed(format!("the {what}: {e}")))
}

fn parse<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, VerdictError> {
    parse_bytes(&decode(part, what)?, what)
}

/// The payload of `token` without checking anything (to say what in it
/// was altered once its signature has failed).
pub fn payload_unverified(token: &str) -> Result<Vec<u8>, VerdictError> {
    let (_, p, _) = split(token)?;
    decode(p, "payload")
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
    let (header, payload) = verify_as(token, public_key, kid, TYP)?;
    let claims: Claims = parse_bytes(&payload, "claims")?;
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

/// Checks the format, the header (`alg` EdDSA, `typ`), the key id and the
/// signature of `token`, in that order; returns the header and the payload
/// bytes, which the caller parses (nothing unsigned is ever returned).
pub fn verify_as(
    token: &str,
    public_key: &[u8; 32],
    kid: &str,
    typ: &str,
) -> Result<(Header, Vec<u8>), VerdictError> {
    let token = token.trim();
    let (h, p, s) = split(token)?;
    let header: Header = parse(h, "header")?;
    if header.alg != ALG || header.typ != typ {
        return Err(VerdictError::UnsupportedHeader {
            alg: header.alg,
            typ: header.typ,
            expected: typ.into(),
        });
    }
    if header.kid != kid {
        return Err(VerdictError::WrongKid {
            expected: kid.into(),
            got: header.kid,
        });
    }
    let signature = decode(s, "signature")?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| VerdictError::BadSignature)?;
    Ok((header, decode(p, "payload")?))
}
