//! Keys: the key-encryption key (KEK) from outside the store, the data key
//! (DEK) stored only wrapped by the KEK, and the Ed25519 device signing key
//! stored only sealed by the DEK.
//!
//! KEK sources, first found wins:
//! 1. `$CREDENTIALS_DIRECTORY/edgeid.kek` (systemd `LoadCredentialEncrypted=`,
//!    which may be TPM-bound; systemd owns that directory's permissions);
//! 2. the file named by `kek_file` in the config;
//! 3. the file named by `$EDGEID_KEK_FILE` (tests, development).
//!
//! Files from 2 and 3 must be owned by the running user with no group or
//! other permission bits. A KEK is 32 raw bytes or 64 hex characters.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::seal::{DataKey, KEY_LEN, SealError, key_aad, template_aad};
use super::{Store, StoreError, device, unix_now};

pub const CREDENTIAL_NAME: &str = "edgeid.kek";
pub const KEK_ENV: &str = "EDGEID_KEK_FILE";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no key-encryption key found: provide a systemd credential edgeid.kek, set kek_file in the config, \
         or set EDGEID_KEK_FILE to a 0600 file holding 32 random bytes (e.g. `head -c32 /dev/urandom > kek`)"
    )]
    NoKek,
    #[error("cannot read the key-encryption key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the key-encryption key {path} is {len} bytes: it must be 32 raw bytes or 64 hex characters"
    )]
    WrongLength { path: PathBuf, len: usize },
    #[error(
        "the key-encryption key file {path} has mode {mode:o}: run `chmod 600 {path}` (no group or other access)"
    )]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error(
        "the key-encryption key file {path} is owned by uid {owner}, not the running user ({uid}): chown it"
    )]
    WrongOwner { path: PathBuf, owner: u32, uid: u32 },
    #[error(
        "the key-encryption key from {0} does not open this store's data key: it is the wrong KEK \
         (nothing was modified)"
    )]
    WrongKek(KekSource),
    #[error(
        "the store's keys are already initialised: pass --force to replace them (this discards every enrolled template)"
    )]
    AlreadyInitialised,
    #[error("the store has no keys: run `edgeid keys init`")]
    NotInitialised,
    #[error(
        "the sealed device signing key failed to open or parse: the store is damaged or tampered"
    )]
    SigningKey,
    #[error("cryptographic failure: {0}")]
    Seal(#[from] SealError),
}

/// Where the KEK came from (reported, never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    Credential(PathBuf),
    ConfigFile(PathBuf),
    EnvFile(PathBuf),
    /// Given explicitly (e.g. `keys rotate --new-kek FILE`).
    File(PathBuf),
}

impl fmt::Display for KekSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credential(p) => write!(f, "systemd credential {}", p.display()),
            Self::ConfigFile(p) => write!(f, "config kek_file {}", p.display()),
            Self::EnvFile(p) => write!(f, "EDGEID_KEK_FILE {}", p.display()),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The key-encryption key; zeroised on drop.
pub struct Kek {
    key: DataKey,
    pub source: KekSource,
}

impl Kek {
    pub fn from_bytes(bytes: &[u8; KEY_LEN], source: KekSource) -> Self {
        Self {
            key: DataKey::from_bytes(bytes),
            source,
        }
    }

    /// Finds the KEK in the documented order.
    pub fn locate(config_kek_file: Option<&Path>) -> Result<Self, KeyError> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(CREDENTIAL_NAME);
            if path.exists() {
                return Self::read(&path, KekSource::Credential(path.clone()), false);
            }
        }
        if let Some(path) = config_kek_file {
            return Self::read(path, KekSource::ConfigFile(path.to_owned()), true);
        }
        if let Some(path) = std::env::var_os(KEK_ENV).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return Self::read(&path, KekSource::EnvFile(path.clone()), true);
        }
        Err(KeyError::NoKek)
    }

    /// Reads a KEK file, checking ownership and mode when `check_mode`.
    pub fn read(path: &Path, source: KekSource, check_mode: bool) -> Result<Self, KeyError> {
        let read_err = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if check_mode {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let uid = unsafe { libc::geteuid() };
            if meta.uid() != uid {
                return Err(KeyError::WrongOwner {
                    path: path.to_owned(),
                    owner: meta.uid(),
                    uid,
                });
            }
            let mode = meta.mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::LoosePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let raw = Zeroizing::new(std::fs::read(path).map_err(read_err)?);
        let bytes = parse_kek(&raw).ok_or(KeyError::WrongLength {
            path: path.to_owned(),
            len: raw.len(),
        })?;
        Ok(Self::from_bytes(&bytes, source))
    }
}

/// 32 raw bytes, or 64 hex characters with optional surrounding whitespace.
fn parse_kek(raw: &[u8]) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if raw.len() == KEY_LEN {
        out.copy_from_slice(raw);
        return Some(out);
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.len() != 2 * KEY_LEN {
        return None;
    }
    hex::decode_to_slice(text, out.as_mut()).ok()?;
    Some(out)
}

/// The unlocked keys of a store.
pub struct KeyRing {
    pub device_id: String,
    pub dek: DataKey,
    pub signer: Ed25519KeyPair,
    pub kid: String,
}

impl KeyRing {
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.signer.public_key().as_ref());
        out
    }
}

/// The device's public identity, readable without the KEK.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicIdentity {
    pub device_id: String,
    /// Raw Ed25519 public key, hex.
    pub public_key: String,
    pub kid: String,
}

fn generate_signing_key() -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| SealError::Random)?;
    Ok(Zeroizing::new(pkcs8.as_ref().to_vec()))
}

/// Creates the device identity, signing key and DEK. With `force`, replaces
/// existing keys and deletes every template (they could no longer be opened);
/// the verdict sequence continues so it never repeats.
pub fn init(
    store: &mut Store,
    kek: &Kek,
    device_id: &str,
    force: bool,
) -> Result<KeyRing, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let exists: Option<i64> = tx
        .query_row("SELECT id FROM keys", [], |r| r.get(0))
        .optional()?;
    if exists.is_some() && !force {
        return Err(KeyError::AlreadyInitialised.into());
    }
    let dek = DataKey::generate().map_err(KeyError::from)?;
    let pkcs8 = generate_signing_key()?;
    let signer = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::SigningKey)?;
    let kid = crate::verdict::jwk::thumbprint(signer.public_key().as_ref());
    let wrapped = kek
        .key
        .seal(&key_aad("dek", device_id), dek.bytes())
        .map_err(KeyError::from)?;
    let sealed_sk = dek
        .seal(&key_aad("signing-key", device_id), &pkcs8)
        .map_err(KeyError::from)?;
    tx.execute("DELETE FROM subjects", [])?;
    tx.execute("DELETE FROM keys", [])?;
    tx.execute(
        "INSERT INTO keys (id, wrapped_dek, sealed_signing_key, public_key, kid, updated_at) \
         VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        params![
            wrapped,
            sealed_sk,
            signer.public_key().as_ref(),
            kid,
            unix_now()
        ],
    )?;
    device::set_identity(&tx, device_id)?;
    tx.commit()?;
    Ok(KeyRing {
        device_id: device_id.to_owned(),
        dek,
        signer,
        kid,
    })
}

struct KeyRow {
    wrapped_dek: Vec<u8>,
    sealed_signing_key: Vec<u8>,
}

fn key_row(conn: &rusqlite::Connection) -> Result<KeyRow, StoreError> {
    conn.query_row(
        "SELECT wrapped_dek, sealed_signing_key FROM keys WHERE id = 1",
        [],
        |r| {
            Ok(KeyRow {
                wrapped_dek: r.get(0)?,
                sealed_signing_key: r.get(1)?,
            })
        },
    )
    .optional()?
    .ok_or(StoreError::Key(KeyError::NotInitialised))
}

fn unwrap_dek(kek: &Kek, device_id: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
    let raw = kek
        .key
        .open(&key_aad("dek", device_id), wrapped)
        .map_err(|_| KeyError::WrongKek(kek.source.clone()))?;
    let bytes: [u8; KEY_LEN] = raw
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::SigningKey)?;
    let bytes = Zeroizing::new(bytes);
    Ok(DataKey::from_bytes(&bytes))
}

/// Opens the store's keys with `kek`; reads only.
pub fn unlock(store: &Store, kek: &Kek) -> Result<KeyRing, StoreError> {
    let device_id = device::device_id(store.conn())?;
    let row = key_row(store.conn())?;
    let dek = unwrap_dek(kek, &device_id, &row.wrapped_dek)?;
    let pkcs8 = dek
        .open(&key_aad("signing-key", &device_id), &row.sealed_signing_key)
        .map_err(|_| KeyError::SigningKey)?;
    let signer = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::SigningKey)?;
    let kid = crate::verdict::jwk::thumbprint(signer.public_key().as_ref());
    Ok(KeyRing {
        device_id,
        dek,
        signer,
        kid,
    })
}

/// The public identity, without the KEK.
pub fn public_identity(store: &Store) -> Result<PublicIdentity, StoreError> {
    let device_id = device::device_id(store.conn())?;
    let (public_key, kid) = store
        .conn()
        .query_row("SELECT public_key, kid FROM keys WHERE id = 1", [], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })
        .optional()?
        .ok_or(StoreError::Key(KeyError::NotInitialised))?;
    Ok(PublicIdentity {
        device_id,
        public_key: hex::encode(public_key),
        kid,
    })
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotationReport {
    pub new_dek: bool,
    pub templates_resealed: usize,
}

/// Re-wraps the DEK under `new_kek`; with `new_dek`, also generates a new DEK
/// and re-seals the signing key and every template, all in one transaction.
/// Templates are decrypted only in memory; nobody re-enrols.
pub fn rotate(
    store: &mut Store,
    old: &Kek,
    new_kek: &Kek,
    new_dek: bool,
) -> Result<RotationReport, StoreError> {
    let device_id = device::device_id(store.conn())?;
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let row = key_row(&tx)?;
    let dek = unwrap_dek(old, &device_id, &row.wrapped_dek)?;
    let mut resealed = 0;
    let target = if new_dek {
        let fresh = DataKey::generate().map_err(KeyError::from)?;
        let sk_aad = key_aad("signing-key", &device_id);
        let pkcs8 = dek
            .open(&sk_aad, &row.sealed_signing_key)
            .map_err(|_| KeyError::SigningKey)?;
        let sealed_sk = fresh.seal(&sk_aad, &pkcs8).map_err(KeyError::from)?;
        tx.execute(
            "UPDATE keys SET sealed_signing_key = ?1 WHERE id = 1",
            [sealed_sk],
        )?;
        let rows: Vec<(i64, String, String, String, Vec<u8>)> = {
            let mut stmt =
                tx.prepare("SELECT id, subject, modality, model_id, sealed FROM templates")?;
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?
        };
        for (id, subject, modality, model_id, blob) in rows {
            let aad = template_aad(id, &subject, &modality, &model_id);
            // A tampered template stops the rotation: re-sealing it would launder it.
            let plain = dek.open(&aad, &blob).map_err(|_| StoreError::Tampered {
                row: id,
                subject: subject.clone(),
            })?;
            let sealed = fresh.seal(&aad, &plain).map_err(KeyError::from)?;
            tx.execute(
                "UPDATE templates SET sealed = ?1 WHERE id = ?2",
                params![sealed, id],
            )?;
            resealed += 1;
        }
        fresh
    } else {
        dek
    };
    let wrapped = new_kek
        .key
        .seal(&key_aad("dek", &device_id), target.bytes())
        .map_err(KeyError::from)?;
    tx.execute(
        "UPDATE keys SET wrapped_dek = ?1, updated_at = ?2 WHERE id = 1",
        params![wrapped, unix_now()],
    )?;
    tx.commit()?;
    Ok(RotationReport {
        new_dek,
        templates_resealed: resealed,
    })
}

/// A fresh random device id (128 bits, hex).
pub fn random_device_id() -> Result<String, KeyError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SealError::Random)?;
    Ok(format!("edgeid-{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_formats() {
        assert!(parse_kek(&[7u8; 32]).is_some());
        let hex64 = "ab".repeat(32);
        assert_eq!(
            parse_kek(format!("{hex64}\n").as_bytes()).map(|k| k[0]),
            Some(0xab)
        );
        assert!(parse_kek(&[7u8; 31]).is_none());
        assert!(parse_kek("zz".repeat(32).as_bytes()).is_none());
    }
}
