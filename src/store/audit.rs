//! The audit log: one record per enroll, verify, identify, revoke, lockout,
//! key and anchor event, chained by SHA-256 and MAC'd under a key that only
//! the unlocked store holds. Records hold decisions, scores and quality
//! figures; never an image, an embedding or a template (the API takes no
//! such type).
//!
//! # The chain
//!
//! hash(n) = SHA-256(hash(n−1) ‖ canonical JSON of record n's stored
//! columns), with hash(0) = 64 zeros: anyone can check the hashes and links
//! (a signed export, or a store without its KEK). mac(n) = HMAC-SHA256 of
//! hash(n) under the audit key, stored with the key's id; the audit key is
//! derived from the data key (DEK) with HKDF and installed on the store's
//! connection when its keys are unlocked (`mac`). Appending without it is
//! refused ([`AuditError::Locked`]): nothing can add an unkeyed record, and
//! editing a record and recomputing the chain fails that record's MAC.
//!
//! `audit_head` keeps the newest record's id, hash, key id and its own MAC
//! (a different label from a record's), so a head rewritten over deleted
//! newest records fails. What an attacker with an older copy could put
//! back is caught outside the database: the rollback anchor (`anchor`)
//! holds the newest record's id and hash, and unlocking refuses a database
//! behind it or diverged from it.
//!
//! # Keys over time
//!
//! Records written before keyed audit carry no MAC and verify by hash as a
//! legacy prefix. The first record under a key is an `audit_key` record
//! naming that key, the key before it (none after the legacy prefix) and
//! how many records precede it; only record 1 of a new store needs none.
//! `keys rotate --dek` and `keys init --force` replace the DEK and so start
//! a new key the same way. With the store's key, [`verify`] checks the MAC
//! of every record under it and of the head; records before the first of
//! them are checked by hash only (counted in [`MacCoverage`]): their hashes
//! are chained into the MAC'd records, so an edit there still breaks the
//! chain, at the first MAC'd record. A record without a MAC after MAC'd
//! ones, a new key that is not declared, a key after the store's own, or
//! newest records under a key the store does not hold, are breaks. Without
//! the KEK only hashes and links are checked, and the report says so
//! (`macs.key_id` is null).
//!
//! What MACs cannot show: stripping every MAC makes a chain look written
//! before keyed audit; any edit made with it changes the hash the rollback
//! anchor holds, and is refused at the next unlock.
//!
//! # Retention
//!
//! The oldest records can be pruned (`[audit] retain_days`, `max_rows`;
//! `retention`) behind a checkpoint signed by the device key
//! (`checkpoint`) that carries the newest pruned record's id, hash and key:
//! the walk then starts from it, so the records kept still verify, and
//! removing more of them, or the checkpoint, is a break.
//!
//! `signed`: the signed export and its offline check; `enrolment`: rows
//! of an enrolment deleted outside `revoke`.

mod chain;
pub mod checkpoint;
mod enrolment;
mod mac;
pub mod retention;
mod signed;

use std::fmt;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, rfc3339_utc, unix_now_ms};
use crate::verdict::{Decision, Mode, Reason, SignError};
use chain::{Link, Walk};
use checkpoint::{CheckpointSummary, Found};
use mac::Installed;

pub use enrolment::{EnrolmentTampering, enrolment_tampering};
pub use mac::install as install_key;
pub use retention::{Pruned, RetentionConfig, RetentionConfigError, prune, prune_at};
pub use signed::{
    Document, EXPORT_TYP, ExportError, ExportReport, Head, SignedExport, export_signed,
    verify_export,
};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The record that starts the records under a new audit key.
pub const KEY_EVENT: &str = "audit_key";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "the audit log is appended to only once the store's keys are unlocked (its records are \
         MAC'd under a key derived from the data key)"
    )]
    Locked,
    #[error(
        "the store's data key was replaced after this process unlocked it (`keys rotate --dek` or \
         `keys init --force` while it ran): restart it to use the new key"
    )]
    StaleKey,
    #[error("cannot derive the audit key from the data key")]
    KeyDerivation,
    #[error("cannot sign the audit export or checkpoint")]
    Sign(#[from] SignError),
    #[error(
        "the audit log's retention checkpoint is not signed by this device's key: records may have \
         been removed from its start; nothing was pruned (see `edgeid audit verify`)"
    )]
    CheckpointForged,
    #[error(
        "the records due for pruning do not verify (record {}: {broken}); nothing was pruned: keep \
         this database as evidence",
        broken.first_broken_record()
    )]
    PruneBroken { broken: Break },
}

/// A record to append: one variant per kind of event, so a record's event
/// name, subject, decision and reason columns always agree with each other
/// and nothing outside the store spells them.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A verify or identify verdict (scores, quality, models in `detail`).
    Verdict {
        mode: Mode,
        subject: Option<&'a str>,
        decision: Decision,
        reason: Reason,
        detail: serde_json::Value,
    },
    /// Templates sealed for a subject (photo files or the camera).
    Enroll {
        subject: &'a str,
        detail: serde_json::Value,
    },
    /// A subject and its templates deleted.
    Revoke {
        subject: &'a str,
        detail: serde_json::Value,
    },
    /// A subject locked out after repeated failures.
    Lockout {
        subject: &'a str,
        locked_until_ms: i64,
        failures: u32,
    },
    /// An admin cleared a subject's failed attempts (`detail.by`: who).
    Unlock {
        subject: &'a str,
        detail: serde_json::Value,
    },
    /// A template row that failed its integrity check.
    StoreTampered {
        subject: &'a str,
        template_row: i64,
        /// What noticed it (a verb, the daemon's gallery open).
        found_by: &'a str,
    },
    /// `edgeid keys init`.
    KeysInit {
        device_id: &'a str,
        kid: &'a str,
        force: bool,
    },
    /// `edgeid keys rotate`.
    KeysRotate {
        new_dek: bool,
        templates_resealed: usize,
    },
    /// The database is not the one the rollback anchor describes: served
    /// nothing (`problem`: behind, diverged, anchor_missing,
    /// anchor_unauthentic; positions in `detail`).
    RollbackDetected {
        problem: &'a str,
        detail: serde_json::Value,
    },
    /// The stored public key (or kid) is not the sealed signing key's:
    /// someone swapped it; the store was refused.
    KeySubstituted {
        stored_kid: &'a str,
        /// The stored public key, hex.
        stored_key: &'a str,
        derived_kid: &'a str,
    },
    /// A new rollback anchor (`cause`: keys_init, legacy_store,
    /// admin_reanchor; positions in `detail`).
    AnchorReset {
        cause: &'a str,
        detail: serde_json::Value,
    },
    /// The oldest records were pruned behind a signed checkpoint (how
    /// many, through which record and hash, by whom, in `detail`).
    AuditPruned { detail: serde_json::Value },
}

/// An event as its stored columns.
struct EventColumns<'a> {
    event: &'static str,
    subject: Option<&'a str>,
    decision: Option<Decision>,
    reason: Option<Reason>,
    detail: serde_json::Value,
}

impl<'a> Event<'a> {
    /// The `event` column: what `audit export` readers switch on.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Verdict { mode, .. } => mode.as_str(),
            Event::Enroll { .. } => "enroll",
            Event::Revoke { .. } => "revoke",
            Event::Lockout { .. } => "lockout",
            Event::Unlock { .. } => "unlock",
            Event::StoreTampered { .. } => "store_tampered",
            Event::KeysInit { .. } => "keys_init",
            Event::KeysRotate { .. } => "keys_rotate",
            Event::RollbackDetected { .. } => "rollback_detected",
            Event::KeySubstituted { .. } => "key_substituted",
            Event::AnchorReset { .. } => "anchor_reset",
            Event::AuditPruned { .. } => "audit_pruned",
        }
    }

    /// Adds a detail entry (for the store's own facts, such as the rows an
    /// enrolment wrote); events whose detail is fixed are returned as is.
    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        if let Event::Verdict { detail, .. }
        | Event::Enroll { detail, .. }
        | Event::Revoke { detail, .. }
        | Event::Unlock { detail, .. } = &mut self
            && let Some(map) = detail.as_object_mut()
        {
            map.insert(key.into(), value);
        }
        self
    }

    fn columns(&self) -> EventColumns<'a> {
        let event = self.name();
        let bare = |subject, detail| EventColumns {
            event,
            subject,
            decision: None,
            reason: None,
            detail,
        };
        match self {
            Event::Verdict {
                subject,
                decision,
                reason,
                detail,
                ..
            } => EventColumns {
                event,
                subject: *subject,
                decision: Some(*decision),
                reason: Some(*reason),
                detail: detail.clone(),
            },
            Event::Enroll { subject, detail } => EventColumns {
                decision: Some(Decision::Accept),
                ..bare(Some(*subject), detail.clone())
            },
            Event::Revoke { subject, detail } | Event::Unlock { subject, detail } => {
                bare(Some(*subject), detail.clone())
            }
            Event::Lockout {
                subject,
                locked_until_ms,
                failures,
            } => EventColumns {
                reason: Some(Reason::LockedOut),
                ..bare(
                    Some(*subject),
                    serde_json::json!({"locked_until_ms": locked_until_ms, "failures": failures}),
                )
            },
            Event::StoreTampered {
                subject,
                template_row,
                found_by,
            } => EventColumns {
                reason: Some(Reason::StoreTampered),
                ..bare(
                    Some(*subject),
                    serde_json::json!({"template_row": template_row, "found_by": found_by}),
                )
            },
            Event::KeysInit {
                device_id,
                kid,
                force,
            } => bare(
                None,
                serde_json::json!({"device_id": device_id, "kid": kid, "force": force}),
            ),
            Event::KeysRotate {
                new_dek,
                templates_resealed,
            } => bare(
                None,
                serde_json::json!({"new_dek": new_dek, "templates_resealed": templates_resealed}),
            ),
            Event::RollbackDetected { problem, detail } => {
                let mut detail = detail.clone();
                if let Some(map) = detail.as_object_mut() {
                    map.insert("problem".into(), serde_json::json!(problem));
                }
                bare(None, detail)
            }
            Event::KeySubstituted {
                stored_kid,
                stored_key,
                derived_kid,
            } => bare(
                None,
                serde_json::json!({"stored_kid": stored_kid, "stored_key": stored_key, "derived_kid": derived_kid}),
            ),
            Event::AnchorReset { cause, detail } => {
                let mut detail = detail.clone();
                if let Some(map) = detail.as_object_mut() {
                    map.insert("cause".into(), serde_json::json!(cause));
                }
                bare(None, detail)
            }
            Event::AuditPruned { detail } => bare(None, detail.clone()),
        }
    }
}

/// A stored record, as exported: `D` is its detail, as JSON, or (inside
/// the store) as the text stored and hashed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record<D = serde_json::Value> {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub subject: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub detail: D,
    pub prev_hash: String,
    pub hash: String,
    /// The id of the key the record is MAC'd under (none: written before
    /// keyed audit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Its MAC (checkable only with the store's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl<D> Record<D> {
    /// The record as the chain sees it; `detail` is its detail's text.
    fn link<'a>(&'a self, detail: &'a str) -> Link<'a> {
        Link {
            id: self.id,
            at: &self.at,
            event: &self.event,
            subject: self.subject.as_deref(),
            decision: self.decision.as_deref(),
            reason: self.reason.as_deref(),
            detail,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
            key_id: self.key_id.as_deref(),
            mac: self.mac.as_deref(),
        }
    }

    /// The same record with another form of its detail.
    fn with_detail<E>(self, detail: E) -> Record<E> {
        Record {
            id: self.id,
            at: self.at,
            event: self.event,
            subject: self.subject,
            decision: self.decision,
            reason: self.reason,
            detail,
            prev_hash: self.prev_hash,
            hash: self.hash,
            key_id: self.key_id,
            mac: self.mac,
        }
    }
}

/// Why the chain is broken, naming the first bad record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Break {
    /// The record's contents do not hash to its stored hash (edited).
    HashMismatch { record: i64 },
    /// The record does not link to the one before it (deleted, inserted or reordered).
    BrokenLink { record: i64, previous: Option<i64> },
    /// The newest records are missing or the head was altered.
    HeadMismatch {
        head_record: i64,
        last_record: Option<i64>,
    },
    /// The record's MAC does not verify: edited, and the chain recomputed.
    MacMismatch { record: i64 },
    /// A record without a MAC after MAC'd ones.
    Unkeyed { record: i64 },
    /// The first record under a new key does not declare it.
    UndeclaredKey { record: i64 },
    /// From this record on, records are under a key that may not be there:
    /// after the store's own key, or one the store does not hold.
    ForeignKey { record: i64 },
    /// The head's MAC does not verify.
    HeadForged { head_record: i64 },
    /// The retention checkpoint the kept records follow is not signed by
    /// the device key: records were removed from the start of the log.
    CheckpointForged { record: i64 },
}

impl Break {
    pub fn first_broken_record(&self) -> i64 {
        match self {
            Break::HashMismatch { record }
            | Break::BrokenLink { record, .. }
            | Break::MacMismatch { record }
            | Break::Unkeyed { record }
            | Break::UndeclaredKey { record }
            | Break::ForeignKey { record }
            | Break::CheckpointForged { record } => *record,
            Break::HeadMismatch {
                head_record,
                last_record,
            } => last_record.map_or(*head_record, |l| l + 1),
            Break::HeadForged { head_record } => head_record + 1,
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::HashMismatch { record } => write!(
                f,
                "record {record} was modified (its hash does not match its contents)"
            ),
            Break::BrokenLink {
                record,
                previous: Some(p),
            } => write!(
                f,
                "record {record} does not follow record {p} (records deleted, inserted or reordered)"
            ),
            Break::BrokenLink {
                record,
                previous: None,
            } => write!(
                f,
                "record {record} is not the start of the chain (records deleted or reordered)"
            ),
            Break::HeadMismatch {
                head_record,
                last_record,
            } => write!(
                f,
                "the newest records are missing or altered: the chain ends at {} but the head says {head_record}",
                last_record.map_or("no record".into(), |r| format!("record {r}"))
            ),
            Break::MacMismatch { record } => write!(
                f,
                "record {record} does not carry this store's MAC: it was modified and the chain recomputed"
            ),
            Break::Unkeyed { record } => write!(
                f,
                "record {record} carries no MAC although records before it do: written, or stripped, \
                 by something without the store's key"
            ),
            Break::UndeclaredKey { record } => write!(
                f,
                "record {record} is the first under a new key but does not declare it: records were \
                 relabelled or their MACs stripped"
            ),
            Break::ForeignKey { record } => write!(
                f,
                "from record {record} on, records are MAC'd under a key this store does not hold \
                 (written elsewhere, or relabelled)"
            ),
            Break::HeadForged { head_record } => write!(
                f,
                "the head (record {head_record}) does not carry this store's MAC: it was rewritten, \
                 and newer records may have been deleted"
            ),
            Break::CheckpointForged { record } => write!(
                f,
                "the retention checkpoint before record {record} is not signed by the device key: it \
                 was forged or altered, and records may have been removed from the start of the log"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChainReport {
    /// Records walked (those kept, after a retention checkpoint).
    pub records: usize,
    pub head: String,
    pub broken: Option<Break>,
    pub macs: MacCoverage,
    /// The retention checkpoint the records kept follow (none: never pruned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointSummary>,
}

/// How much of the chain MACs vouch for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MacCoverage {
    /// The store's audit key when it was at hand (the keys unlocked);
    /// `None`: only hashes and links were checked.
    pub key_id: Option<String>,
    /// Records whose MAC verified under it.
    pub checked: usize,
    /// Records written before keyed audit: checked by hash only.
    pub unkeyed: usize,
    /// Records under a key replaced since (`keys rotate --dek`, `keys init
    /// --force`): checked by hash only.
    pub earlier_key: usize,
    /// Whether the head's MAC verified.
    pub head_checked: bool,
}

/// Appends `event` unless the newest record is the same kind of event and
/// `repeats` says its detail is this one's again: a service refused in a
/// restart loop records the refusal once. `None` when nothing was added.
pub fn append_once(
    store: &mut Store,
    event: &Event<'_>,
    repeats: impl Fn(&serde_json::Value) -> bool,
) -> Result<Option<i64>, StoreError> {
    let newest: Option<(String, String)> = store
        .conn()
        .query_row(
            "SELECT event, detail FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((name, text)) = newest
        && name == event.name()
        && serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|d| repeats(&d))
    {
        return Ok(None);
    }
    append(store, event).map(Some)
}

/// Appends a record in its own transaction; returns its id.
pub fn append(store: &mut Store, event: &Event<'_>) -> Result<i64, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let id = append_in(&tx, event)?;
    tx.commit()?;
    Ok(id)
}

/// Appends inside a caller's transaction (so a change and its record commit
/// together). The store's keys must be unlocked on `conn`; the first record
/// under its key is preceded by the `audit_key` record declaring it.
pub fn append_in(conn: &rusqlite::Connection, event: &Event<'_>) -> Result<i64, StoreError> {
    let key = Installed::find(conn)?.ok_or(AuditError::Locked)?;
    let newest: Option<(i64, String, Option<String>)> = conn
        .query_row(
            "SELECT id, hash, key_id FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let mut prev = newest.as_ref().map(|(id, hash, _)| (*id, hash.clone()));
    if let Some((id, _, previous)) = &newest
        && previous.as_deref() != Some(key.key_id.as_str())
    {
        // A key replaced by a newer one never comes back.
        let superseded: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE key_id = ?1)",
            [&key.key_id],
            |r| r.get(0),
        )?;
        if superseded {
            return Err(AuditError::StaleKey.into());
        }
        let declaration = EventColumns {
            event: KEY_EVENT,
            subject: None,
            decision: None,
            reason: None,
            detail: serde_json::json!({
                "key_id": key.key_id,
                "previous_key_id": previous,
                "records_before": id,
            }),
        };
        prev = Some(insert(conn, &key, prev, declaration)?);
    }
    Ok(insert(conn, &key, prev, event.columns())?.0)
}

/// Inserts a record after `prev` (id, hash) and moves the head to it;
/// returns its id and hash.
fn insert(
    conn: &rusqlite::Connection,
    key: &Installed<'_>,
    prev: Option<(i64, String)>,
    columns: EventColumns<'_>,
) -> Result<(i64, String), StoreError> {
    let (id, prev_hash) = prev.map_or((1, GENESIS.to_owned()), |(id, hash)| (id + 1, hash));
    let at = rfc3339_utc(unix_now_ms());
    let EventColumns {
        event,
        subject,
        decision,
        reason,
        mut detail,
    } = columns;
    if !detail.is_object() {
        detail = serde_json::json!({ "value": detail });
    }
    if let Some(map) = detail.as_object_mut() {
        map.insert(
            "build".into(),
            serde_json::to_value(crate::build_info::BUILD).unwrap_or_default(),
        );
    }
    let detail = detail.to_string();
    let (decision, reason) = (decision.map(Decision::as_str), reason.map(Reason::as_str));
    let hash = Link {
        id,
        at: &at,
        event,
        subject,
        decision,
        reason,
        detail: &detail,
        prev_hash: &prev_hash,
        hash: "",
        key_id: None,
        mac: None,
    }
    .computed_hash();
    let mac = key.record_mac(&hash)?;
    conn.execute(
        "INSERT INTO audit (id, at, event, subject, decision, reason, detail, prev_hash, hash, key_id, mac) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            at,
            event,
            subject,
            decision,
            reason,
            detail,
            prev_hash,
            hash,
            key.key_id,
            mac
        ],
    )?;
    conn.execute(
        "INSERT INTO audit_head (id, record_id, hash, key_id, mac) VALUES (1, ?1, ?2, ?3, ?4) \
         ON CONFLICT(id) DO UPDATE SET record_id = excluded.record_id, hash = excluded.hash, \
         key_id = excluded.key_id, mac = excluded.mac",
        params![id, hash, key.key_id, key.head_mac(id, &hash)?],
    )?;
    Ok((id, hash))
}

/// Every column of a record, in [`Row::read`]'s order.
const SELECT_ROW: &str = "SELECT id, at, event, subject, decision, reason, detail, prev_hash, hash, \
                          key_id, mac FROM audit";

/// A record as stored: its detail is the text that was hashed.
type Row = Record<String>;

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            at: r.get(1)?,
            event: r.get(2)?,
            subject: r.get(3)?,
            decision: r.get(4)?,
            reason: r.get(5)?,
            detail: r.get(6)?,
            prev_hash: r.get(7)?,
            hash: r.get(8)?,
            key_id: r.get(9)?,
            mac: r.get(10)?,
        })
    }

    fn stored_link(&self) -> Link<'_> {
        self.link(&self.detail)
    }
}

fn for_each_row(
    store: &Store,
    mut f: impl FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = store.conn().prepare(&format!("{SELECT_ROW} ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(Row::read(r)?)?;
    }
    Ok(())
}

/// Walks the chain from the first record and checks the head; reports the
/// first break. MACs are checked when the store's keys are unlocked.
pub fn verify(store: &Store) -> Result<ChainReport, StoreError> {
    let key = Installed::find(store.conn())?;
    let mut walk = match checkpoint::find(store.conn())? {
        Found::None => Walk::new(key.as_ref()),
        Found::Valid(c) => Walk::resume(key.as_ref(), &c),
        Found::Forged => {
            let first: Option<i64> =
                store
                    .conn()
                    .query_row("SELECT MIN(id) FROM audit", [], |r| r.get(0))?;
            Walk::refused(
                key.as_ref(),
                Break::CheckpointForged {
                    record: first.unwrap_or(1),
                },
            )
        }
    };
    for_each_row(store, |row| walk.step(&row.stored_link()))?;
    let head: Option<(i64, String, Option<String>, Option<String>)> = store
        .conn()
        .query_row(
            "SELECT record_id, hash, key_id, mac FROM audit_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    walk.finish(
        head.as_ref()
            .map(|(id, hash, key, mac)| (*id, hash.as_str(), key.as_deref(), mac.as_deref())),
    )?;
    Ok(walk.into_report())
}

/// Every record, oldest first.
pub fn export(store: &Store) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    for_each_row(store, |row| {
        let detail = serde_json::from_str(&row.detail).map_err(|e| StoreError::Malformed {
            what: format!("audit record {}", row.id),
            error: Box::new(e),
        })?;
        out.push(row.with_detail(detail));
        Ok(())
    })?;
    Ok(out)
}
