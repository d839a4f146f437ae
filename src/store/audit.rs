//! The audit log: one record per enroll, verify, identify, revoke, lockout
//! and key event, chained by SHA-256 over the previous record's hash.
//!
//! hash(n) = SHA-256(hash(n−1) ‖ canonical JSON of record n's stored
//! columns), with hash(0) = 64 zeros. `audit_head` keeps the newest record's
//! id and hash, so deleting the newest records is noticed too. Records hold
//! decisions, scores and quality figures; never an image, an embedding or a
//! template (the API takes no such type).

use ring::digest::{SHA256, digest};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, rfc3339_utc, unix_now_ms};
use crate::verdict::{Decision, Mode, Reason};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
            Event::StoreTampered { .. } => "store_tampered",
            Event::KeysInit { .. } => "keys_init",
            Event::KeysRotate { .. } => "keys_rotate",
        }
    }

    /// Adds a detail entry (for the store's own facts, such as the rows an
    /// enrolment wrote); events whose detail is fixed are returned as is.
    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        if let Event::Verdict { detail, .. }
        | Event::Enroll { detail, .. }
        | Event::Revoke { detail, .. } = &mut self
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
            Event::Revoke { subject, detail } => bare(Some(*subject), detail.clone()),
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
        }
    }
}

/// A stored record, as exported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub subject: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Why the chain is broken, naming the first bad record.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
}

impl Break {
    pub fn first_broken_record(&self) -> i64 {
        match self {
            Break::HashMismatch { record } | Break::BrokenLink { record, .. } => *record,
            Break::HeadMismatch {
                head_record,
                last_record,
            } => last_record.map_or(*head_record, |l| l + 1),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub records: usize,
    pub head: String,
    pub broken: Option<Break>,
}

/// The hashed columns of a record, as stored.
struct Columns<'a> {
    id: i64,
    at: &'a str,
    event: &'a str,
    subject: Option<&'a str>,
    decision: Option<&'a str>,
    reason: Option<&'a str>,
    detail: &'a str,
}

fn record_hash(prev: &str, c: &Columns<'_>) -> String {
    // A JSON array of the stored column texts is unambiguous and exactly
    // reproducible from the database, whatever the detail's key order.
    let canonical = serde_json::json!([
        c.id, c.at, c.event, c.subject, c.decision, c.reason, c.detail
    ])
    .to_string();
    let mut buf = Vec::with_capacity(prev.len() + canonical.len());
    buf.extend_from_slice(prev.as_bytes());
    buf.extend_from_slice(canonical.as_bytes());
    hex::encode(digest(&SHA256, &buf))
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

/// Appends inside a caller's transaction (so a change and its record commit together).
pub fn append_in(conn: &rusqlite::Connection, event: &Event<'_>) -> Result<i64, StoreError> {
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, prev) = match last {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let at = rfc3339_utc(unix_now_ms());
    let EventColumns {
        event,
        subject,
        decision,
        reason,
        mut detail,
    } = event.columns();
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
    let hash = record_hash(
        &prev,
        &Columns {
            id,
            at: &at,
            event,
            subject,
            decision: decision.map(Decision::as_str),
            reason: reason.map(Reason::as_str),
            detail: &detail,
        },
    );
    conn.execute(
        "INSERT INTO audit (id, at, event, subject, decision, reason, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            at,
            event,
            subject,
            decision.map(Decision::as_str),
            reason.map(Reason::as_str),
            detail,
            prev,
            hash
        ],
    )?;
    conn.execute(
        "INSERT INTO audit_head (id, record_id, hash) VALUES (1, ?1, ?2) \
         ON CONFLICT(id) DO UPDATE SET record_id = excluded.record_id, hash = excluded.hash",
        params![id, hash],
    )?;
    Ok(id)
}

struct Row {
    id: i64,
    at: String,
    event: String,
    subject: Option<String>,
    decision: Option<String>,
    reason: Option<String>,
    detail: String,
    prev_hash: String,
    hash: String,
}

fn for_each_row(
    store: &Store,
    mut f: impl FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = store.conn().prepare(
        "SELECT id, at, event, subject, decision, reason, detail, prev_hash, hash FROM audit ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(Row {
            id: r.get(0)?,
            at: r.get(1)?,
            event: r.get(2)?,
            subject: r.get(3)?,
            decision: r.get(4)?,
            reason: r.get(5)?,
            detail: r.get(6)?,
            prev_hash: r.get(7)?,
            hash: r.get(8)?,
        })?;
    }
    Ok(())
}

/// Walks the chain from the first record; reports the first break.
pub fn verify(store: &Store) -> Result<ChainReport, StoreError> {
    let mut prev = GENESIS.to_owned();
    let mut prev_id: Option<i64> = None;
    let mut count = 0usize;
    let mut broken: Option<Break> = None;
    for_each_row(store, |row| {
        if broken.is_some() {
            return Ok(());
        }
        count += 1;
        let expected_id = prev_id.map_or(1, |p| p + 1);
        if row.prev_hash != prev || row.id != expected_id {
            broken = Some(Break::BrokenLink {
                record: row.id,
                previous: prev_id,
            });
            return Ok(());
        }
        let h = record_hash(
            &row.prev_hash,
            &Columns {
                id: row.id,
                at: &row.at,
                event: &row.event,
                subject: row.subject.as_deref(),
                decision: row.decision.as_deref(),
                reason: row.reason.as_deref(),
                detail: &row.detail,
            },
        );
        if h != row.hash {
            broken = Some(Break::HashMismatch { record: row.id });
            return Ok(());
        }
        prev = row.hash;
        prev_id = Some(row.id);
        Ok(())
    })?;
    if broken.is_none() {
        let head: Option<(i64, String)> = store
            .conn()
            .query_row(
                "SELECT record_id, hash FROM audit_head WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let consistent = match &head {
            Some((id, hash)) => Some(*id) == prev_id && *hash == prev,
            None => prev_id.is_none(),
        };
        if !consistent {
            broken = Some(Break::HeadMismatch {
                head_record: head.map_or(0, |h| h.0),
                last_record: prev_id,
            });
        }
    }
    Ok(ChainReport {
        records: count,
        head: prev,
        broken,
    })
}

/// Every record, oldest first.
pub fn export(store: &Store) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    for_each_row(store, |row| {
        let detail = serde_json::from_str(&row.detail).map_err(|e| StoreError::Malformed {
            what: format!("audit record {}", row.id),
            error: Box::new(e),
        })?;
        out.push(Record {
            id: row.id,
            at: row.at,
            event: row.event,
            subject: row.subject,
            decision: row.decision,
            reason: row.reason,
            detail,
            prev_hash: row.prev_hash,
            hash: row.hash,
        });
        Ok(())
    })?;
    Ok(out)
}
