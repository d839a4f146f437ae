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

// - `file`: the anchor file's format, MAC, reading and atomic writing;
// - `anchoring`: the unlocked store's anchor, moved after every commit;
// - `refusal`: why a store is refused, as errors and audit details;
// - `counter`: the TPM NV counter reached through tpm2-tools.
// This file: unlocking (`attach`), binding the counter, re-anchoring.
mod anchoring;
pub mod counter;
mod file;
mod refusal;

pub use anchoring::Anchoring;
pub use file::{ANCHOR_FILE, AnchorKey, Found, inspect, leftover_seq, replace};
pub(in crate::store) use refusal::{Refusal, compare};

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::counter::{CounterConfig, CounterError, CounterRef, Standing, Tpm};
use super::audit::{self, Event};
use super::files::Owner;
use super::keys::KeyRing;
use super::{Store, StoreError};

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
    // A store opened read-only (a full disk) can be read, not re-anchored.
    let read_only = store.conn().is_readonly(rusqlite::MAIN_DB).unwrap_or(false);
    let bump = armed.is_some() && !read_only;
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
