//! The rollback anchor: where the store has got to, kept outside the
//! database, so that restoring an older copy of the database (which would
//! bring back revoked subjects, forget lockouts and issue verdict numbers a
//! second time) is refused instead of served.
//!
//! # The file
//!
//! `edgeid.anchor` in the state directory, one JSON object, mode 0600:
//!
//! ```json
//! {"format":"edgeid-anchor/1","device_id":"door-1","seq":42,"audit_record":97,
//!  "audit_head":"<hex SHA-256 of record 97>","written_at":"2026-05-01T12:00:00.123Z",
//!  "macs":["<hex HMAC-SHA256>"]}
//! ```
//!
//! `seq` is the last verdict sequence number issued, `audit_record` the
//! newest audit record's id (records are numbered from 1 without gaps, so
//! it is also their count) and `audit_head` that record's hash. Each MAC is
//! HMAC-SHA256 over the JSON array `[format, device_id, seq, audit_record,
//! audit_head, written_at]`, under a key derived from the data key (DEK)
//! with HKDF-SHA256 (salt `edgeid rollback anchor v1`, info
//! `anchor-mac` ‖ device id): without the KEK nobody can write an anchor
//! edgeid accepts. The anchor is valid when one MAC verifies (a DEK
//! rotation writes it under the old and the new key before it commits).
//!
//! # When it is written
//!
//! After every commit that moves the store's position, by the store itself
//! (`Store::conn_mut`'s transactions), once the store's keys are unlocked:
//! temporary file, fsync, rename, fsync of the directory, under an
//! exclusive lock on the directory; never backwards (a later position
//! written by another process stays). A crash between a commit and its
//! anchor leaves the anchor one step behind, which is accepted: the
//! database may be ahead of its anchor, never behind it.
//!
//! # When a store is refused
//!
//! Unlocking the keys (every verb that uses them, and the daemon's start)
//! compares the database with the anchor and refuses to serve, with a named
//! error and a `rollback_detected` audit record (once per distinct
//! refusal, and only if the database can be written), when:
//! - the database is behind the anchor (`StoreError::RolledBack`);
//! - the audit record the anchor names has another hash: the database was
//!   replaced by a copy that went another way (`StoreError::Diverged`);
//! - the anchor does not authenticate (`StoreError::AnchorUnauthentic`);
//! - the anchor is missing although the store has been anchored before (its
//!   audit log holds an `anchor_reset` record) (`StoreError::AnchorMissing`):
//!   deleting the anchor is the obvious way to hide a restored copy.
//!
//! A store that was never anchored (created by an edgeid without anchors)
//! is anchored at its first unlock, with an `anchor_reset` record (cause
//! `legacy_store`) and a warning. `keys init` anchors a new store in the
//! transaction that creates its keys.
//!
//! The only way past a refusal is an administrator's
//! `edgeid keys reanchor --i-restored-a-backup`: it accepts the database as
//! it is, raises its verdict sequence number to the anchor's when the
//! anchor authenticates (so no number is ever issued twice), appends an
//! `anchor_reset` record (cause `admin_reanchor`, with both positions) and
//! writes a new anchor.
//!
//! What the anchor file cannot see: an attacker who can write the database
//! can still edit rows that are neither sealed nor chained; an anchor
//! deleted together with a database from before anchors existed looks
//! like a store never anchored; and a copy of the whole state directory
//! (database and anchor together) restored later authenticates. The last
//! is what the hardware counter is for (`[anchor] hardware_counter =
//! "tpm"`, [`counter`]): the anchor then also records a TPM NV counter's
//! value (format `edgeid-anchor/2`, the MAC covering it), and a restored
//! anchor is behind the TPM. Once an anchor names a counter, the counter
//! is checked whatever the config says (turning the setting off is no way
//! around it), and a store whose counter cannot be read is refused.

pub mod counter;

use std::path::{Path, PathBuf};

use ring::{hkdf, hmac};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::counter::{CounterConfig, CounterError, CounterRef, Standing, Tpm};
use super::audit::{self, Event};
use super::files::{self, Owner};
use super::keys::KeyRing;
use super::seal::DataKey;
use super::{Store, StoreError, rfc3339_utc, unix_now_ms};

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

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("cannot read the rollback anchor {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write the rollback anchor {path}: {source}; the database has committed, but edgeid \
         stops rather than run without the protection (free disk space, check the state directory)"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "disk full writing the rollback anchor {path}: the database has committed, but edgeid stops \
         rather than run without the protection; free some space and try again"
    )]
    DiskFull {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock the state directory {path} to update the rollback anchor: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot derive the rollback anchor's key from the data key")]
    KeyDerivation,
    #[error("the rollback anchor's hardware counter: {0}")]
    Counter(#[from] CounterError),
}

/// Where the store is: what an older copy of the database is behind on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The last verdict sequence number issued.
    pub seq: u64,
    /// The newest audit record's id (0 when there is none).
    pub audit_record: i64,
    /// That record's hash (empty when there is none).
    pub audit_head: String,
}

impl Position {
    /// The position of the database `conn` sees (inside a transaction: the
    /// one it is about to commit).
    pub fn read(conn: &Connection) -> Result<Self, StoreError> {
        let (seq, audit_record, audit_head) = conn.query_row(
            "SELECT COALESCE((SELECT seq FROM device WHERE id = 1), 0), \
                    COALESCE((SELECT id FROM audit ORDER BY id DESC LIMIT 1), 0), \
                    COALESCE((SELECT hash FROM audit ORDER BY id DESC LIMIT 1), '')",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(Self {
            seq: u64::try_from(seq).unwrap_or(0),
            audit_record,
            audit_head,
        })
    }

    fn behind(&self, anchored: &Position) -> bool {
        self.seq < anchored.seq || self.audit_record < anchored.audit_record
    }

    /// At or past `other` in both counters.
    fn reaches(&self, other: &Position) -> bool {
        self.seq >= other.seq && self.audit_record >= other.audit_record
    }
}

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
fn write(
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
        if super::space::io_is_full(&source) {
            AnchorError::DiskFull { path, source }
        } else {
            AnchorError::Write { path, source }
        }
    })
}

fn locked(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, AnchorError> {
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

/// A hardware counter in use: the value the anchor holds, and when to bump.
struct Armed {
    tpm: Tpm,
    value: u64,
    every: u32,
    commits_since_bump: u32,
}

impl Armed {
    fn reference(&self) -> CounterRef {
        CounterRef::tpm(self.tpm.index(), self.value)
    }
}

/// An unlocked store's anchor, moved forward after each commit.
pub struct Anchoring {
    dir: PathBuf,
    owner: Owner,
    device_id: String,
    key: AnchorKey,
    /// The position last written or found written.
    last: Option<Position>,
    counter: Option<Armed>,
}

impl Anchoring {
    pub fn new(store: &Store, device_id: &str, key: AnchorKey, last: Option<Position>) -> Self {
        Self {
            dir: store.dir().to_owned(),
            owner: store.owner(),
            device_id: device_id.to_owned(),
            key,
            last,
            counter: None,
        }
    }

    /// Arms the hardware counter, whose value the anchor now holds.
    pub fn with_counter(mut self, tpm: Tpm, value: u64, every: u32) -> Self {
        self.counter = Some(Armed {
            tpm,
            value,
            every,
            commits_since_bump: 0,
        });
        self
    }

    /// After a key rotation: the same anchor (and counter) under a new key.
    pub fn rekeyed(self, key: AnchorKey, last: Position) -> Self {
        Self {
            key,
            last: Some(last),
            ..self
        }
    }

    /// The counter's value the anchor holds, when one is armed.
    pub fn counter(&self) -> Option<CounterRef> {
        self.counter.as_ref().map(Armed::reference)
    }

    /// Inside the transaction about to commit: whether this commit bumps the
    /// hardware counter (see [`counter`]: an audit record other than a
    /// verdict since the last anchor, or `bump_every` commits).
    pub fn wants_bump(&self, tx: &Connection) -> Result<bool, StoreError> {
        let Some(armed) = &self.counter else {
            return Ok(false);
        };
        if armed.commits_since_bump + 1 >= armed.every {
            return Ok(true);
        }
        let after = self.last.as_ref().map_or(0, |p| p.audit_record);
        Ok(tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE id > ?1 AND event NOT IN ('verify', 'identify'))",
            [after],
            |r| r.get(0),
        )?)
    }

    /// After a commit at `here`: writes the anchor unless it already holds
    /// `here` or a later position (another process may have written one);
    /// with `bump`, writes it with the counter's next value and then
    /// increments the counter.
    pub fn advance(&mut self, here: Position, bump: bool) -> Result<(), AnchorError> {
        if self.last.as_ref() == Some(&here) && !bump {
            return Ok(());
        }
        let _lock = locked(&self.dir)?;
        let current = inspect(&self.dir, &self.device_id, &self.key)?;
        if let Some(armed) = self.counter.as_mut() {
            // Another process (a verb beside the daemon) may have bumped the
            // counter; the anchor file holds the newest value written.
            if let Found::Valid {
                counter: Some(c), ..
            } = &current
                && c.index() == Some(armed.tpm.index())
            {
                armed.value = armed.value.max(c.value);
            }
            armed.commits_since_bump += 1;
            if bump {
                let next = CounterRef::tpm(armed.tpm.index(), armed.value + 1);
                write(
                    &self.dir,
                    self.owner,
                    &self.device_id,
                    (&here, Some(&next)),
                    &[&self.key],
                )?;
                armed.value = armed.tpm.step_from(armed.value)?;
                armed.commits_since_bump = 0;
                self.last = Some(here);
                return Ok(());
            }
        }
        let counter = self.counter();
        let keep = matches!(&current, Found::Valid { position, counter: c } if position.reaches(&here) && *c == counter);
        if !keep {
            write(
                &self.dir,
                self.owner,
                &self.device_id,
                (&here, counter.as_ref()),
                &[&self.key],
            )?;
        }
        self.last = Some(here);
        Ok(())
    }
}

/// Why a store is refused.
pub(super) enum Refusal {
    Behind(Position),
    Diverged(Position),
    Missing,
    Unauthentic,
    /// The anchor's counter value is behind the TPM's: the whole state
    /// directory is an older copy.
    CounterBehind {
        anchored: Position,
        counter: CounterRef,
        tpm_value: u64,
    },
    /// More than one ahead: the TPM was cleared or is another one.
    CounterAhead {
        anchored: Position,
        counter: CounterRef,
        tpm_value: u64,
    },
    /// The anchor names a counter (or the config asks for one) that cannot
    /// be read.
    CounterUnavailable {
        index: u32,
        error: CounterError,
    },
    /// The config asks for a counter that already counts, but the anchor
    /// names none: a copy from before the store was bound.
    CounterInUse {
        index: u32,
        tpm_value: u64,
    },
}

impl Refusal {
    pub(super) fn problem(&self) -> &'static str {
        match self {
            Refusal::Behind(_) => "behind",
            Refusal::Diverged(_) => "diverged",
            Refusal::Missing => "anchor_missing",
            Refusal::Unauthentic => "anchor_unauthentic",
            Refusal::CounterBehind { .. } => "counter_behind",
            Refusal::CounterAhead { .. } => "counter_mismatch",
            Refusal::CounterUnavailable { .. } => "counter_unavailable",
            Refusal::CounterInUse { .. } => "counter_in_use",
        }
    }

    pub(super) fn anchored(&self) -> Option<&Position> {
        match self {
            Refusal::Behind(p) | Refusal::Diverged(p) => Some(p),
            Refusal::CounterBehind { anchored, .. } | Refusal::CounterAhead { anchored, .. } => {
                Some(anchored)
            }
            Refusal::Missing
            | Refusal::Unauthentic
            | Refusal::CounterUnavailable { .. }
            | Refusal::CounterInUse { .. } => None,
        }
    }

    /// The counter's side of the story, for the audit record.
    fn counter_detail(&self) -> serde_json::Value {
        match self {
            Refusal::CounterBehind {
                counter, tpm_value, ..
            }
            | Refusal::CounterAhead {
                counter, tpm_value, ..
            } => json!({ "anchor": counter, "tpm_value": tpm_value }),
            Refusal::CounterUnavailable { index, error } => {
                json!({ "nv_index": format!("{index:#010x}"), "error": error.to_string() })
            }
            Refusal::CounterInUse { index, tpm_value } => {
                json!({ "nv_index": format!("{index:#010x}"), "tpm_value": tpm_value })
            }
            _ => serde_json::Value::Null,
        }
    }

    fn error(self, here: &Position, path: PathBuf) -> StoreError {
        match self {
            Refusal::Behind(anchored) => StoreError::RolledBack {
                db_seq: here.seq,
                anchor_seq: anchored.seq,
                db_audit_record: here.audit_record,
                anchor_audit_record: anchored.audit_record,
            },
            Refusal::Diverged(anchored) => StoreError::Diverged {
                record: anchored.audit_record,
            },
            Refusal::Missing => StoreError::AnchorMissing {
                path,
                db_seq: here.seq,
                db_audit_record: here.audit_record,
            },
            Refusal::Unauthentic => StoreError::AnchorUnauthentic { path },
            Refusal::CounterBehind {
                counter, tpm_value, ..
            } => StoreError::CounterBehind {
                nv_index: counter.nv_index,
                anchor_value: counter.value,
                tpm_value,
            },
            Refusal::CounterAhead {
                counter, tpm_value, ..
            } => StoreError::CounterMismatch {
                nv_index: counter.nv_index,
                anchor_value: counter.value,
                tpm_value,
            },
            Refusal::CounterUnavailable { index, error } => StoreError::CounterUnavailable {
                nv_index: format!("{index:#010x}"),
                source: error,
            },
            Refusal::CounterInUse { index, tpm_value } => StoreError::CounterInUse {
                nv_index: format!("{index:#010x}"),
                tpm_value,
            },
        }
    }
}

/// Whether the database at `here` can be served given the valid anchor at
/// `anchored`.
pub(super) fn compare(
    conn: &Connection,
    here: &Position,
    anchored: &Position,
) -> Result<Option<Refusal>, StoreError> {
    if here.behind(anchored) {
        return Ok(Some(Refusal::Behind(anchored.clone())));
    }
    if anchored.audit_record > 0 {
        let hash: Option<String> = conn
            .query_row(
                "SELECT hash FROM audit WHERE id = ?1",
                [anchored.audit_record],
                |r| r.get(0),
            )
            .optional()?;
        // Missing is as bad as different: retention never prunes the
        // newest records, and the anchor names one of those.
        if hash.as_deref() != Some(anchored.audit_head.as_str()) {
            return Ok(Some(Refusal::Diverged(anchored.clone())));
        }
    }
    Ok(None)
}

fn reset_event_name() -> &'static str {
    Event::AnchorReset {
        cause: "",
        detail: serde_json::Value::Null,
    }
    .name()
}

/// Whether the store has ever been anchored: its audit log says so, or
/// it was pruned (only an unlocked, so anchored, store prunes; a log that
/// starts past record 1 without its checkpoint counts too, or deleting the
/// checkpoint with the anchor would pass for a store never anchored).
pub(super) fn ever_anchored(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM audit WHERE event = ?1) \
         OR EXISTS (SELECT 1 FROM audit_checkpoint) \
         OR COALESCE((SELECT MIN(id) FROM audit), 1) > 1",
        [reset_event_name()],
        |r| r.get(0),
    )?)
}

/// Appends the `rollback_detected` record, unless the newest record is the
/// same refusal (a service restarting in a loop records it once). A store
/// that cannot be written is only logged.
fn record_refusal(store: &mut Store, refusal: &Refusal, here: &Position) {
    let mut detail = json!({
        "database": here,
        "anchor": refusal.anchored(),
    });
    let counter = refusal.counter_detail();
    if !counter.is_null() {
        detail["counter"] = counter;
    }
    let event = Event::RollbackDetected {
        problem: refusal.problem(),
        detail,
    };
    let repeats = |previous: &serde_json::Value| {
        previous["problem"] == refusal.problem() && previous["anchor"] == json!(refusal.anchored())
    };
    if let Err(error) = audit::append_once(store, &event, repeats) {
        tracing::warn!(%error, "the refusal could not be recorded in the audit log");
    }
}

/// At unlock: refuses a database behind its anchor (or without the anchor
/// it should have), recording why; otherwise arms the store so that every
/// commit moves the anchor forward.
pub fn attach(store: &mut Store, ring: &KeyRing) -> Result<(), StoreError> {
    let key = AnchorKey::derive(&ring.dek, &ring.device_id)?;
    let here = Position::read(store.conn())?;
    let found = inspect(store.dir(), &ring.device_id, &key)?;
    let refusal = match &found {
        Found::Valid { position, counter } => match compare(store.conn(), &here, position)? {
            None => counter_refusal(store, position, counter.as_ref()).err(),
            refused => refused,
        },
        Found::Unauthentic => Some(Refusal::Unauthentic),
        Found::Missing if ever_anchored(store.conn())? => Some(Refusal::Missing),
        Found::Missing => {
            tracing::warn!(
                "this store has no rollback anchor yet (created by an older edgeid): anchoring it now"
            );
            let anchoring = Anchoring::new(store, &ring.device_id, key, None);
            let bound = match bind_counter(store) {
                Ok(bound) => bound,
                Err(refusal) => return Err(refuse(store, refusal, &here)),
            };
            store.anchor = Some(match bound {
                Some((tpm, value)) => {
                    anchoring.with_counter(tpm, value, store.counter_config.bump_every)
                }
                None => anchoring,
            });
            let event = Event::AnchorReset {
                cause: "legacy_store",
                detail: json!({ "database": here }),
            };
            audit::append(store, &event)?;
            return Ok(());
        }
    };
    if let Some(refusal) = refusal {
        tracing::error!(
            problem = refusal.problem(),
            "the database is not the one the rollback anchor describes: refusing to serve"
        );
        record_refusal(store, &refusal, &here);
        return Err(refusal.error(&here, store.dir().join(ANCHOR_FILE)));
    }
    let mut anchoring = Anchoring::new(store, &ring.device_id, key, None);
    let named = match found {
        Found::Valid { counter, .. } => counter,
        _ => None,
    };
    let armed = match named {
        Some(c) => Some((counter_for(&store.counter_config, &c), c.value)),
        None => match bind_counter(store) {
            Ok(bound) => bound,
            Err(error) => return Err(refuse(store, error, &here)),
        },
    };
    let bump = armed.is_some();
    if let Some((tpm, value)) = armed {
        anchoring = anchoring.with_counter(tpm, value, store.counter_config.bump_every);
    }
    // An anchor one commit behind (a crash in between) catches up now, and
    // an unlock bumps the counter: a copy taken before it is refused.
    anchoring.advance(here, bump)?;
    store.anchor = Some(anchoring);
    Ok(())
}

/// Records the refusal and turns it into the error the caller returns.
fn refuse(store: &mut Store, refusal: Refusal, here: &Position) -> StoreError {
    tracing::error!(
        problem = refusal.problem(),
        "the rollback anchor's hardware counter refuses this store"
    );
    record_refusal(store, &refusal, here);
    refusal.error(here, store.dir().join(ANCHOR_FILE))
}

/// The TPM counter an anchor names, reached through the configured TCTI.
fn counter_for(config: &CounterConfig, named: &CounterRef) -> Tpm {
    let index = named.index().unwrap_or(counter::DEFAULT_NV_INDEX);
    Tpm::new(&config.tpm_tcti, index)
}

/// Checks the counter a valid anchor names against the TPM (whatever the
/// config says now); catches the counter up after a crash mid-bump.
fn counter_refusal(
    store: &Store,
    anchored: &Position,
    named: Option<&CounterRef>,
) -> Result<(), Refusal> {
    let Some((standing, tpm, tpm_value)) =
        counter_standing(&store.counter_config, anchored, named)?
    else {
        return Ok(());
    };
    if standing == Standing::CrashedMidBump {
        tracing::warn!(
            tpm_value,
            "the anchor is one ahead of the TPM counter (a stop between the two): catching up"
        );
        tpm.step_from(tpm_value)
            .map_err(|error| Refusal::CounterUnavailable {
                index: tpm.index(),
                error,
            })?;
    }
    Ok(())
}

/// Where the TPM stands against the counter value a valid anchor names
/// (None when it names none), without changing anything: refused when
/// behind, far ahead or unreadable.
pub(super) fn counter_standing(
    config: &CounterConfig,
    anchored: &Position,
    named: Option<&CounterRef>,
) -> Result<Option<(Standing, Tpm, u64)>, Refusal> {
    let Some(named) = named else {
        return Ok(None);
    };
    let tpm = counter_for(config, named);
    let tpm_value = tpm.read().map_err(|error| Refusal::CounterUnavailable {
        index: tpm.index(),
        error,
    })?;
    match counter::standing(named.value, tpm_value) {
        s @ (Standing::Current | Standing::CrashedMidBump) => Ok(Some((s, tpm, tpm_value))),
        Standing::Behind => Err(Refusal::CounterBehind {
            anchored: anchored.clone(),
            counter: named.clone(),
            tpm_value,
        }),
        Standing::Ahead => Err(Refusal::CounterAhead {
            anchored: anchored.clone(),
            counter: named.clone(),
            tpm_value,
        }),
    }
}

/// Binds a store whose anchor names no counter to the configured one, if
/// any: defines it when missing. A counter that already counts means a copy
/// from before the binding (or another store's counter): refused.
fn bind_counter(store: &Store) -> Result<Option<(Tpm, u64)>, Refusal> {
    let Some(tpm) = store.counter_config.wanted() else {
        return Ok(None);
    };
    let unavailable = |error| Refusal::CounterUnavailable {
        index: tpm.index(),
        error,
    };
    let (tpm_value, existed) = tpm.open_or_define().map_err(unavailable)?;
    if existed {
        return Err(Refusal::CounterInUse {
            index: tpm.index(),
            tpm_value,
        });
    }
    tracing::info!(
        nv_index = format!("{:#010x}", tpm.index()),
        tpm_value,
        "rollback anchor bound to the TPM counter"
    );
    Ok(Some((tpm, tpm_value)))
}

/// For `keys init` and `keys reanchor`: the configured counter, defined
/// when missing, adopted whatever it counts; `(tpm, value now)`.
pub fn adopt_counter(store: &Store) -> Result<Option<(Tpm, u64)>, AnchorError> {
    let Some(tpm) = store.counter_config.wanted() else {
        return Ok(None);
    };
    let (value, _) = tpm.open_or_define()?;
    Ok(Some((tpm, value)))
}

/// Inside `tx`, which has made the store what it will be: appends the
/// `anchor_reset` record, then writes the anchor of the resulting position
/// under `keys`, before the commit. Returns that position.
pub fn reset_in(
    tx: &Connection,
    (dir, owner): (&Path, Owner),
    device_id: &str,
    event: &Event<'_>,
    counter: Option<&CounterRef>,
    keys: &[&AnchorKey],
) -> Result<Position, StoreError> {
    audit::append_in(tx, event)?;
    let position = Position::read(tx)?;
    replace((dir, owner), device_id, (&position, counter), keys)?;
    Ok(position)
}

/// What `keys reanchor` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Reanchored {
    pub database_before: Position,
    pub anchor_before: Found,
    pub now: Position,
}

/// Accepts the database as it is (an administrator restored it on
/// purpose): raises its sequence number to a valid anchor's, records an
/// `anchor_reset` and writes a new anchor.
pub fn reanchor(store: &mut Store, ring: &KeyRing) -> Result<Reanchored, StoreError> {
    let key = AnchorKey::derive(&ring.dek, &ring.device_id)?;
    let before = Position::read(store.conn())?;
    let found = inspect(store.dir(), &ring.device_id, &key)?;
    let at = (store.dir().to_owned(), store.owner());
    // The counter the config names now (a replaced TPM is re-adopted here).
    let adopted = adopt_counter(store)?;
    let next = adopted
        .as_ref()
        .map(|(tpm, value)| CounterRef::tpm(tpm.index(), value + 1));
    let every = store.counter_config.bump_every;
    store.anchor = None;
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if let Found::Valid { position, .. } = &found {
        // Numbers the anchor knows were issued are never issued again.
        tx.execute(
            "UPDATE device SET seq = MAX(seq, ?1) WHERE id = 1",
            [i64::try_from(position.seq).unwrap_or(i64::MAX)],
        )?;
    }
    let event = Event::AnchorReset {
        cause: "admin_reanchor",
        detail: json!({ "database": before, "anchor": found }),
    };
    let now = reset_in(
        &tx,
        (&at.0, at.1),
        &ring.device_id,
        &event,
        next.as_ref(),
        &[&key],
    )?;
    tx.commit()?;
    tracing::warn!(
        seq = now.seq,
        audit_record = now.audit_record,
        "the store was re-anchored by an administrator"
    );
    let mut anchoring = Anchoring::new(store, &ring.device_id, key, Some(now.clone()));
    if let Some((tpm, value)) = adopted {
        let value = tpm.step_from(value).map_err(AnchorError::from)?;
        anchoring = anchoring.with_counter(tpm, value, every);
    }
    store.anchor = Some(anchoring);
    Ok(Reanchored {
        database_before: before,
        anchor_before: found,
        now,
    })
}
