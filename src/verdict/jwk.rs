//! The device public key as an RFC 8037 OKP JWK. `kid` is the RFC 7638
//! thumbprint: base64url(SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":"…"}`),
//! so anyone holding the JWK can recompute and check it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// A private key's `d` member. Never produced here; read only so that a
    /// JWK carrying one is refused (whoever holds it can forge verdicts).
    #[serde(default, skip_serializing)]
    pub d: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwkError {
    #[error("the key is not an Ed25519 OKP JWK (kty {kty:?}, crv {crv:?})")]
    NotEd25519 { kty: String, crv: String },
    #[error("the JWK's x is not 32 base64url bytes")]
    BadX,
    #[error(
        "the JWK carries a private key (\"d\"): a verifier needs only the public key \
         (`edgeid keys show --jwk`); whoever has this file can forge verdicts, treat the key as leaked"
    )]
    PrivateKey,
}

/// RFC 7638 thumbprint of an Ed25519 public key.
pub fn thumbprint(public_key: &[u8]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
}

impl Jwk {
    pub fn from_public_key(public_key: &[u8]) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public_key),
            kid: Some(thumbprint(public_key)),
            use_: Some("sig".into()),
            alg: Some("EdDSA".into()),
            d: None,
        }
    }

    /// The raw 32-byte public key. A JWK with a private part is refused.
    pub fn public_key(&self) -> Result<[u8; 32], JwkError> {
        if self.d.is_some() {
            return Err(JwkError::PrivateKey);
        }
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(JwkError::NotEd25519 {
                kty: self.kty.clone(),
                crv: self.crv.clone(),
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| JwkError::BadX)?;
        bytes.try_into().map_err(|_| JwkError::BadX)
    }

    /// The key id: the JWK's own, or its thumbprint when absent.
    pub fn key_id(&self) -> Result<String, JwkError> {
        Ok(match &self.kid {
            Some(kid) => kid.clone(),
            None => thumbprint(&self.public_key()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.2/A.3: the example key and its thumbprint.
    #[test]
    fn rfc8037_thumbprint_vector() {
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .expect("vector");
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        let jwk = Jwk::from_public_key(&x);
        assert_eq!(jwk.public_key().expect("ed25519").as_slice(), x.as_slice());
    }

    /// RFC 8037 A.1's private key as a JWK: refused as a verification key.
    #[test]
    fn a_private_jwk_is_refused() {
        let text = r#"{"kty":"OKP","crv":"Ed25519",
            "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let jwk: Jwk = serde_json::from_str(text).expect("parses");
        assert_eq!(jwk.public_key(), Err(JwkError::PrivateKey));
        assert!(!serde_json::to_string(&jwk).expect("json").contains("\"d\""));
    }
}
