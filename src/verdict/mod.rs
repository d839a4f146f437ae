//! Signed verdicts: the only thing that leaves the device.
//!
//! - `claims`: the header and claims fixed by DESIGN.md (no score, vector or image).
//! - `jws`: compact JWS with EdDSA (Ed25519, RFC 8037): signing and verification.
//! - `issue`: sequence number, signature and audit record for an outcome.
//! - `jwk`: the device public key as an OKP JWK; `kid` is its RFC 7638 thumbprint.
//!
//! The JWS is written by hand (a few dozen lines over ring and base64): the
//! JOSE crates either do not take ring's Ed25519 keys or pull a second crypto
//! stack. `tests/python/verify_jws.py` checks it against PyJWT.

pub mod claims;
pub mod issue;
pub mod jwk;
pub mod jws;

pub use claims::{Claims, Decision, Header, Mode};
pub use issue::{IssueError, IssueRequest, Issued, issue};
pub use jwk::Jwk;
pub use jws::{VerdictError, Verified, sign, verify};
