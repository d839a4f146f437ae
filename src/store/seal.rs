//! AES-256-GCM sealing (ring). A sealed blob is
//! `format version (1 byte) ‖ nonce (12 bytes, random per seal) ‖ ciphertext ‖ tag`.
//! The associated data starts with the version of its own layout and binds
//! the blob to where it belongs (row id, subject, modality, model id and the
//! model file's sha256), so a blob copied elsewhere, or relabelled as made
//! by another model, fails to open instead of being used.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Version of the blob layout and of the key and legacy template
/// associated-data layouts.
pub const FORMAT_VERSION: u8 = 1;
/// Version of the template associated data that binds the model's sha256.
pub const TEMPLATE_AAD_VERSION: u8 = 2;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed blob is too short or has an unknown format version")]
    Malformed,
    #[error("sealed blob failed authentication (wrong key, or moved or modified)")]
    Authentication,
    #[error("the system random number generator failed")]
    Random,
}

/// A 256-bit AES-GCM key; the raw bytes are zeroised on drop.
pub struct DataKey {
    raw: Zeroizing<[u8; KEY_LEN]>,
    key: LessSafeKey,
}

impl DataKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let raw = Zeroizing::new(*bytes);
        // AES-256 accepts any 32-byte key, so this cannot fail.
        let unbound =
            UnboundKey::new(&AES_256_GCM, raw.as_ref()).unwrap_or_else(|_| unreachable!());
        Self {
            raw,
            key: LessSafeKey::new(unbound),
        }
    }

    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| SealError::Random)?;
        Ok(Self::from_bytes(&bytes))
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.raw
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Authentication)?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens `blob`; the plaintext is zeroised when dropped.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if blob.len() < 1 + NONCE_LEN + AES_256_GCM.tag_len() || blob[0] != FORMAT_VERSION {
            return Err(SealError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[1..1 + NONCE_LEN]);
        let mut body = Zeroizing::new(blob[1 + NONCE_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Authentication)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// Length-prefixed fields so ("ab", "c") and ("a", "bc") differ.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// Associated data of a template: 2 ‖ row id ‖ subject ‖ modality ‖ model id
/// ‖ model sha256.
pub fn template_aad(
    row_id: i64,
    subject: &str,
    modality: &str,
    model_id: &str,
    model_sha256: &str,
) -> Vec<u8> {
    let mut out = legacy_template_aad(row_id, subject, modality, model_id);
    out[0] = TEMPLATE_AAD_VERSION;
    push_field(&mut out, model_sha256.as_bytes());
    out
}

/// Associated data of a template sealed before the model's sha256 was bound:
/// 1 ‖ row id ‖ subject ‖ modality ‖ model id. Such templates still open.
pub fn legacy_template_aad(row_id: i64, subject: &str, modality: &str, model_id: &str) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    out.extend_from_slice(&row_id.to_be_bytes());
    push_field(&mut out, subject.as_bytes());
    push_field(&mut out, modality.as_bytes());
    push_field(&mut out, model_id.as_bytes());
    out
}

/// Associated data of a key blob (`purpose` such as "dek" or "signing-key")
/// bound to the device it belongs to.
pub fn key_aad(purpose: &str, device_id: &str) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    push_field(&mut out, b"edgeid-key");
    push_field(&mut out, purpose.as_bytes());
    push_field(&mut out, device_id.as_bytes());
    out
}

/// f32 values as little-endian bytes (zeroised on drop).
pub fn f32_to_bytes(values: &[f32]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(values.len() * 4));
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_aad() {
        let key = DataKey::generate().expect("rng");
        let aad = template_aad(7, "alice", "face", "m1", "aa");
        let blob = key.seal(&aad, b"secret").expect("seal");
        assert_eq!(key.open(&aad, &blob).expect("open").as_slice(), b"secret");
        for other in [
            template_aad(8, "alice", "face", "m1", "aa"),
            template_aad(7, "bob", "face", "m1", "aa"),
            template_aad(7, "alice", "voice", "m1", "aa"),
            template_aad(7, "alice", "face", "m2", "aa"),
            template_aad(7, "alice", "face", "m1", "ab"),
            legacy_template_aad(7, "alice", "face", "m1"),
        ] {
            assert_eq!(key.open(&other, &blob), Err(SealError::Authentication));
        }
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(
                key.open(&aad, &bad).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
        let again = key.seal(&aad, b"secret").expect("seal");
        assert_ne!(blob[1..13], again[1..13], "nonces must differ");
    }
}
