//! Signed verdicts: the only thing that leaves the device.
//!
//! - `claims`: the header and claims (no score, vector or image), with the
//!   decision and mode values.
//! - `reason`: the fixed list of reason codes a verdict carries.
//! - `jws`: compact JWS with EdDSA (Ed25519, RFC 8037): signing and verification.
//! - `jwk`: the device public key as an OKP JWK; `kid` is its RFC 7638 thumbprint.
//!
//! The JWS is written by hand (a few dozen lines over ring and base64): the
//! JOSE crates either do not take ring's Ed25519 keys or pull a second crypto
//! stack. `tests/python/verify_jws.py` checks it against PyJWT.

pub mod claims;
pub mod jwk;
pub mod jws;
pub mod reason;

pub use claims::{Claims, Decision, Header, Mode};
pub use jwk::Jwk;
pub use jws::{SignError, VerdictError, Verified, sign, verify};
pub use reason::Reason;
