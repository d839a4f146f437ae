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
//!
//! The public key and kid stored beside the sealed signing key are only a
//! copy: [`unlock`] derives the public key from the signing key and refuses
//! a store whose copy disagrees, and everything that shows or uses the
//! device's public key takes it from the unlocked [`KeyRing`].

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::anchor::{self, AnchorKey, Reanchored};
use super::audit::Event;
use super::seal::{DataKey, KEY_LEN, SealError, key_aad};
use super::templates::{ModelLabel, open_template, seal_template};
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
    #[error(
        "the public key stored beside the sealed signing key (kid {stored_kid}) is not that signing \
         key's (kid {derived_kid}): the store was tampered with, and the stored key would verify \
         forged verdicts and fail genuine ones; refusing to use it. Restore the store from a trusted \
         copy, or re-initialise it with `edgeid keys init --force`"
    )]
    PublicKeyMismatch {
        stored_kid: String,
        derived_kid: String,
    },
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

    /// The device id and the public key of its signing key.
    pub fn identity(&self) -> PublicIdentity {
        PublicIdentity {
            device_id: self.device_id.clone(),
            public_key: hex::encode(self.public_key()),
            kid: self.kid.clone(),
        }
    }
}

/// The device's public identity, from the unlocked keys.
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
/// the verdict sequence continues so it never repeats (above a rollback
/// anchor left in the state directory too). The store is anchored in the
/// same transaction (an `anchor_reset` record) and stays unlocked.
pub fn init(
    store: &mut Store,
    kek: &Kek,
    device_id: &str,
    force: bool,
) -> Result<KeyRing, StoreError> {
    let at = (store.dir().to_owned(), store.owner());
    let leftover_seq = anchor::leftover_seq(&at.0, device_id);
    // A new store takes the configured counter as it stands.
    let adopted = anchor::adopt_counter(store)?;
    let next = adopted
        .as_ref()
        .map(|(tpm, value)| anchor::counter::CounterRef::tpm(tpm.index(), value + 1));
    let every = store.counter_config.bump_every;
    // The old keys' anchoring ends here: the new anchor is under the new DEK.
    store.anchor = None;
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
    if let Some(seq) = leftover_seq {
        tx.execute(
            "UPDATE device SET seq = MAX(seq, ?1) WHERE id = 1",
            [i64::try_from(seq).unwrap_or(0)],
        )?;
    }
    super::audit::install_key(&tx, &dek, device_id)?;
    let key = AnchorKey::derive(&dek, device_id)?;
    let event = Event::AnchorReset {
        cause: "keys_init",
        detail: serde_json::json!({ "force": force, "leftover_anchor_seq": leftover_seq }),
    };
    let position = anchor::reset_in(
        &tx,
        (&at.0, at.1),
        device_id,
        &event,
        next.as_ref(),
        &[&key],
    )?;
    tx.commit()?;
    let mut anchoring = anchor::Anchoring::new(store, device_id, key, Some(position));
    if let Some((tpm, value)) = adopted {
        let value = tpm.step_from(value).map_err(anchor::AnchorError::from)?;
        anchoring = anchoring.with_counter(tpm, value, every);
    }
    store.anchor = Some(anchoring);
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
    public_key: Vec<u8>,
    kid: String,
}

fn key_row(conn: &rusqlite::Connection) -> Result<KeyRow, StoreError> {
    conn.query_row(
        "SELECT wrapped_dek, sealed_signing_key, public_key, kid FROM keys WHERE id = 1",
        [],
        |r| {
            Ok(KeyRow {
                wrapped_dek: r.get(0)?,
                sealed_signing_key: r.get(1)?,
                public_key: r.get(2)?,
                kid: r.get(3)?,
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

/// Opens the keys and checks the stored public key against the signing
/// key's; reads only (`store::health` uses it on a read-only connection).
pub(super) fn open_ring(conn: &rusqlite::Connection, kek: &Kek) -> Result<KeyRing, StoreError> {
    let device_id = device::device_id(conn)?;
    let row = key_row(conn)?;
    let dek = unwrap_dek(kek, &device_id, &row.wrapped_dek)?;
    let pkcs8 = dek
        .open(&key_aad("signing-key", &device_id), &row.sealed_signing_key)
        .map_err(|_| KeyError::SigningKey)?;
    let signer = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::SigningKey)?;
    let kid = crate::verdict::jwk::thumbprint(signer.public_key().as_ref());
    if row.public_key != signer.public_key().as_ref() || row.kid != kid {
        return Err(KeyError::PublicKeyMismatch {
            stored_kid: row.kid,
            derived_kid: kid,
        }
        .into());
    }
    // From here on, this connection appends MAC'd audit records.
    super::audit::install_key(conn, &dek, &device_id)?;
    Ok(KeyRing {
        device_id,
        dek,
        signer,
        kid,
    })
}

/// Records a swapped public key in the audit log (MAC'd: the DEK opens),
/// once for a run of refusals; a store that cannot be written (a full
/// disk) is still refused, with a warning.
fn record_substitution(store: &mut Store, kek: &Kek, derived_kid: &str) {
    let opened = device::device_id(store.conn()).and_then(|device_id| {
        let row = key_row(store.conn())?;
        let dek = unwrap_dek(kek, &device_id, &row.wrapped_dek)?;
        Ok((device_id, row, dek))
    });
    let Ok((device_id, row, dek)) = opened else {
        return;
    };
    let (dek, device_id, row) = (&dek, device_id.as_str(), &row);
    let stored_key = hex::encode(&row.public_key);
    let event = super::audit::Event::KeySubstituted {
        stored_kid: &row.kid,
        stored_key: &stored_key,
        derived_kid,
    };
    let repeats = |d: &serde_json::Value| {
        d["stored_kid"] == row.kid.as_str()
            && d["stored_key"] == stored_key.as_str()
            && d["derived_kid"] == derived_kid
    };
    let recorded = super::audit::install_key(store.conn(), dek, device_id)
        .and_then(|()| super::audit::append_once(store, &event, repeats));
    if let Err(error) = recorded {
        tracing::warn!(%error, "the key substitution could not be recorded in the audit log");
    }
    tracing::error!(stored_kid = %row.kid, derived_kid, "the stored public key is not the signing key's: refusing the store");
}

/// Opens the store's keys with `kek`, refusing a store whose stored public
/// key is not its signing key's, or whose database is behind its rollback
/// anchor (see `anchor`; the refusal is recorded in the audit log). From
/// then on every commit moves the anchor forward.
pub fn unlock(store: &mut Store, kek: &Kek) -> Result<KeyRing, StoreError> {
    let ring = match open_ring(store.conn(), kek) {
        Err(StoreError::Key(KeyError::PublicKeyMismatch {
            stored_kid,
            derived_kid,
        })) => {
            record_substitution(store, kek, &derived_kid);
            return Err(KeyError::PublicKeyMismatch {
                stored_kid,
                derived_kid,
            }
            .into());
        }
        opened => opened?,
    };
    anchor::attach(store, &ring)?;
    Ok(ring)
}

/// `keys reanchor`: accepts the database as it is after a deliberate
/// restore (see `anchor::reanchor`). The keys must open.
pub fn reanchor(store: &mut Store, kek: &Kek) -> Result<Reanchored, StoreError> {
    let ring = open_ring(store.conn(), kek)?;
    anchor::reanchor(store, &ring)
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RotationReport {
    pub new_dek: bool,
    pub templates_resealed: usize,
}

/// Re-wraps the DEK under `new_kek`; with `new_dek`, also generates a new DEK
/// and re-seals the signing key and every template (binding each to its
/// model's sha256), all in one transaction. Templates are decrypted only in
/// memory; nobody re-enrols. The store must unlock with `old` (keys and
/// rollback anchor checked) and stays unlocked under the new keys.
pub fn rotate(
    store: &mut Store,
    old: &Kek,
    new_kek: &Kek,
    new_dek: bool,
) -> Result<RotationReport, StoreError> {
    let ring = unlock(store, old)?;
    let armed = store.anchor.take();
    let counter = armed.as_ref().and_then(anchor::Anchoring::counter);
    match rotate_unlocked(store, &ring, new_kek, new_dek, counter.as_ref()) {
        Ok((report, None)) => {
            store.anchor = armed;
            Ok(report)
        }
        Ok((report, Some((key, position)))) => {
            store.anchor = match armed {
                Some(anchoring) => Some(anchoring.rekeyed(key, position)),
                None => Some(anchor::Anchoring::new(
                    store,
                    &ring.device_id,
                    key,
                    Some(position),
                )),
            };
            Ok(report)
        }
        Err(e) => {
            store.anchor = armed;
            Err(e)
        }
    }
}

/// The rotation's transaction; with a new DEK, also the anchor under it.
fn rotate_unlocked(
    store: &mut Store,
    ring: &KeyRing,
    new_kek: &Kek,
    new_dek: bool,
    counter: Option<&anchor::counter::CounterRef>,
) -> Result<(RotationReport, Option<(AnchorKey, anchor::Position)>), StoreError> {
    let device_id = ring.device_id.as_str();
    let at = (store.dir().to_owned(), store.owner());
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let row = key_row(&tx)?;
    let mut resealed = 0;
    let mut fresh = None;
    if new_dek {
        let next = DataKey::generate().map_err(KeyError::from)?;
        let sk_aad = key_aad("signing-key", device_id);
        let pkcs8 = ring
            .dek
            .open(&sk_aad, &row.sealed_signing_key)
            .map_err(|_| KeyError::SigningKey)?;
        let sealed_sk = next.seal(&sk_aad, &pkcs8).map_err(KeyError::from)?;
        tx.execute(
            "UPDATE keys SET sealed_signing_key = ?1 WHERE id = 1",
            [sealed_sk],
        )?;
        let rows: Vec<(i64, String, String, String, String, Vec<u8>)> = {
            let mut stmt = tx.prepare(
                "SELECT id, subject, modality, model_id, model_sha256, sealed FROM templates",
            )?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?
        };
        for (id, subject, modality, model_id, model_sha256, blob) in rows {
            let model = ModelLabel {
                id: &model_id,
                sha256: &model_sha256,
            };
            // A tampered template stops the rotation: re-sealing it would launder it.
            let (plain, _) = open_template(&ring.dek, id, &subject, &modality, model, &blob)
                .ok_or_else(|| StoreError::Tampered {
                    row: id,
                    subject: subject.clone(),
                })?;
            let sealed = seal_template(&next, id, &subject, &modality, model, &plain)?;
            tx.execute(
                "UPDATE templates SET sealed = ?1 WHERE id = ?2",
                params![sealed, id],
            )?;
            resealed += 1;
        }
        fresh = Some(next);
    }
    let target = fresh.as_ref().unwrap_or(&ring.dek);
    let wrapped = new_kek
        .key
        .seal(&key_aad("dek", device_id), target.bytes())
        .map_err(KeyError::from)?;
    tx.execute(
        "UPDATE keys SET wrapped_dek = ?1, updated_at = ?2 WHERE id = 1",
        params![wrapped, unix_now()],
    )?;
    let report = RotationReport {
        new_dek,
        templates_resealed: resealed,
    };
    let Some(fresh) = fresh else {
        tx.commit()?;
        return Ok((report, None));
    };
    // The anchor is valid under either DEK until the new one has committed.
    let old_key = AnchorKey::derive(&ring.dek, device_id)?;
    let new_key = AnchorKey::derive(&fresh, device_id)?;
    let position = anchor::Position::read(&tx)?;
    let at_position = (&position, counter);
    anchor::replace((&at.0, at.1), device_id, at_position, &[&old_key, &new_key])?;
    tx.commit()?;
    super::audit::install_key(store.conn(), &fresh, device_id)?;
    anchor::replace((&at.0, at.1), device_id, at_position, &[&new_key])?;
    Ok((report, Some((new_key, position))))
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
