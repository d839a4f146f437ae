//! The anchor file: its format and MAC, reading and authenticating it,
//! and writing it atomically under the state directory's lock.

use std::path::Path;

use ring::{hkdf, hmac};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::counter::CounterRef;
use super::{AnchorError, Position};
use crate::store::files::{self, Owner};
use crate::store::seal::DataKey;
use crate::store::{rfc3339_utc, unix_now_ms};

/// The anchor file inside the state directory.
pub const ANCHOR_FILE: &str = "edgeid.anchor";
const FORMAT: &str = "edgeid-anchor/1";
/// With a hardware counter's value.
const FORMAT_COUNTED: &str = "edgeid-anchor/2";
const HKDF_SALT: &[u8] = b"edgeid rollback anchor v1";
const HKDF_INFO: &[u8] = b"anchor-mac";
/// A leftover anchor's sequence number above this is not believed (an
/// unauthenticated value may only raise the sequence within reason).
const SEQ_SANITY: u64 = 1 << 53;

/// The MAC key of the anchor, derived from the DEK.
pub struct AnchorKey(hmac::Key);

impl AnchorKey {
    pub fn derive(dek: &DataKey, device_id: &str) -> Result<Self, AnchorError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(dek.bytes());
        let info = [HKDF_INFO, device_id.as_bytes()];
        let okm = prk
            .expand(&info, hmac::HMAC_SHA256)
            .map_err(|_| AnchorError::KeyDerivation)?;
        Ok(Self(hmac::Key::from(okm)))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AnchorFile {
    format: String,
    device_id: String,
    #[serde(flatten)]
    position: Position,
    /// The hardware counter's value when it was written (format /2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter: Option<CounterRef>,
    written_at: String,
    macs: Vec<String>,
}

impl AnchorFile {
    fn mac_input(&self) -> Vec<u8> {
        let mut fields = json!([
            self.format,
            self.device_id,
            self.position.seq,
            self.position.audit_record,
            self.position.audit_head,
            self.written_at
        ]);
        if let (Some(c), Some(list)) = (&self.counter, fields.as_array_mut()) {
            list.extend([json!(c.kind), json!(c.nv_index), json!(c.value)]);
        }
        fields.to_string().into_bytes()
    }

    fn format_for(counter: Option<&CounterRef>) -> &'static str {
        if counter.is_some() {
            FORMAT_COUNTED
        } else {
            FORMAT
        }
    }

    fn authenticates(&self, device_id: &str, key: &AnchorKey) -> bool {
        let input = self.mac_input();
        self.format == Self::format_for(self.counter.as_ref())
            && self.device_id == device_id
            && self.macs.iter().any(|mac| {
                hex::decode(mac).is_ok_and(|tag| hmac::verify(&key.0, &input, &tag).is_ok())
            })
    }
}

/// What the state directory holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Found {
    Missing,
    /// Present, but damaged, forged, or another store's.
    Unauthentic,
    Valid {
        position: Position,
        /// The hardware counter's value it recorded, if it names one.
        #[serde(skip_serializing_if = "Option::is_none")]
        counter: Option<CounterRef>,
    },
}

fn read_file(path: &Path) -> Result<Option<Result<AnchorFile, serde_json::Error>>, AnchorError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AnchorError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads and authenticates the anchor in `dir`.
pub fn inspect(dir: &Path, device_id: &str, key: &AnchorKey) -> Result<Found, AnchorError> {
    Ok(match read_file(&dir.join(ANCHOR_FILE))? {
        None => Found::Missing,
        Some(Ok(file)) if file.authenticates(device_id, key) => Found::Valid {
            position: file.position,
            counter: file.counter,
        },
        Some(_) => Found::Unauthentic,
    })
}

/// The sequence number of an anchor left in `dir` for `device_id`, not
/// authenticated: `keys init` starts above it, so a re-initialised device
/// never issues a number twice.
pub fn leftover_seq(dir: &Path, device_id: &str) -> Option<u64> {
    match read_file(&dir.join(ANCHOR_FILE)) {
        Ok(Some(Ok(file))) if file.device_id == device_id && file.position.seq < SEQ_SANITY => {
            Some(file.position.seq)
        }
        _ => None,
    }
}

/// Writes the anchor of `position` (and the counter's value), with one MAC
/// per key, whatever the anchor held before (the caller holds the
/// directory's lock).
pub(super) fn write(
    dir: &Path,
    owner: Owner,
    device_id: &str,
    (position, counter): (&Position, Option<&CounterRef>),
    keys: &[&AnchorKey],
) -> Result<(), AnchorError> {
    let mut file = AnchorFile {
        format: AnchorFile::format_for(counter).to_owned(),
        device_id: device_id.to_owned(),
        position: position.clone(),
        counter: counter.cloned(),
        written_at: rfc3339_utc(unix_now_ms()),
        macs: Vec::new(),
    };
    let input = file.mac_input();
    file.macs = keys
        .iter()
        .map(|k| hex::encode(hmac::sign(&k.0, &input)))
        .collect();
    let mut text = serde_json::to_string(&file).unwrap_or_default();
    text.push('\n');
    files::write_atomic(dir, ANCHOR_FILE, text.as_bytes(), owner).map_err(|source| {
        let path = dir.join(ANCHOR_FILE);
        if crate::store::space::io_is_full(&source) {
            AnchorError::DiskFull { path, source }
        } else {
            AnchorError::Write { path, source }
        }
    })
}

pub(super) fn locked(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, AnchorError> {
    files::lock_dir(dir).map_err(|source| AnchorError::Lock {
        path: dir.to_owned(),
        source,
    })
}

/// Replaces the anchor with that of `position` (and the counter's value),
/// one MAC per key, under the directory's lock, whatever it held before
/// (key changes, re-anchoring).
pub fn replace(
    (dir, owner): (&Path, Owner),
    device_id: &str,
    at: (&Position, Option<&CounterRef>),
    keys: &[&AnchorKey],
) -> Result<(), AnchorError> {
    let _lock = locked(dir)?;
    write(dir, owner, device_id, at, keys)
}
