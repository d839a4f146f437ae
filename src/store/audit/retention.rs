//! Audit retention (`[audit]`): the log keeps at most `max_rows` records
//! and none older than `retain_days`; the oldest go behind a signed
//! checkpoint ([`super::checkpoint`]), so what is kept still verifies.
//!
//! Pruning refuses a prefix whose chain does not verify (those records are
//! the evidence), never removes the newest record (the rollback anchor
//! names it), and records itself: an `audit_pruned` record after the
//! records kept says how many went, up to which record and hash, and who
//! pruned (the daemon or an admin's `edgeid audit prune`). The daemon
//! prunes at start and then every [`DAEMON_INTERVAL`], at most
//! [`DAEMON_BATCH`] records at a time so a request never waits long behind
//! it. Freed pages are reused by SQLite: the database stops growing rather
//! than shrinking.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::super::keys::KeyRing;
use super::super::{Store, StoreError, device, rfc3339_utc, unix_now, unix_now_ms};
use super::chain::Walk;
use super::checkpoint::{self, Checkpoint, Enrolment, Found};
use super::mac::Installed;
use super::{AuditError, Event, Row, SELECT_ROW, append_in};

/// How often the daemon prunes.
pub const DAEMON_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// The most records the daemon prunes at once; when it had more to prune
/// it comes back after [`DAEMON_CATCH_UP`].
pub const DAEMON_BATCH: u64 = 20_000;
pub const DAEMON_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// `[audit]` in `edgeid.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Records older than this many days are pruned.
    pub retain_days: u32,
    /// At most this many records are kept (the newest).
    pub max_rows: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        // ~1.6 KB a verdict record: 500 000 records are under 1 GB.
        Self {
            retain_days: 365,
            max_rows: 500_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit.{key} must be {min}..={max} (it is {value})")]
pub struct RetentionConfigError {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
    pub value: u64,
}

impl RetentionConfig {
    pub const RETAIN_DAYS: (u64, u64) = (1, 36_500);
    pub const MAX_ROWS: (u64, u64) = (1000, 100_000_000);

    pub fn validate(&self) -> Result<(), RetentionConfigError> {
        for (key, value, (min, max)) in [
            (
                "retain_days",
                u64::from(self.retain_days),
                Self::RETAIN_DAYS,
            ),
            ("max_rows", self.max_rows, Self::MAX_ROWS),
        ] {
            if !(min..=max).contains(&value) {
                return Err(RetentionConfigError {
                    key,
                    min,
                    max,
                    value,
                });
            }
        }
        Ok(())
    }
}

/// What a pruning did.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    /// Records removed now (0: nothing was due).
    pub records: u64,
    /// Records 1..=through_record are gone (0: none ever).
    pub through_record: i64,
    /// Records pruned in all, over every pruning.
    pub total: u64,
    /// Records still in the log, the `audit_pruned` record included.
    pub kept: u64,
    /// More records were due than `batch` allowed.
    pub more_due: bool,
}

/// The newest record due for pruning under `limits` at `now_ms`, given the
/// log holds `first..=newest`: beyond `max_rows`, as many as leave
/// `max_rows` with the `audit_pruned` record; never `newest` itself.
fn due_through(
    conn: &rusqlite::Connection,
    limits: &RetentionConfig,
    now_ms: i64,
    (first, newest): (i64, i64),
) -> Result<i64, StoreError> {
    let max_rows = i64::try_from(limits.max_rows).unwrap_or(i64::MAX);
    let by_rows = if newest - first + 1 > max_rows {
        newest - max_rows + 1
    } else {
        0
    };
    let cutoff = rfc3339_utc(now_ms.saturating_sub(i64::from(limits.retain_days) * 86_400_000));
    // `at` is fixed-width RFC 3339 UTC: text order is time order.
    let by_age: i64 = conn.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM audit WHERE at < ?1",
        [&cutoff],
        |r| r.get(0),
    )?;
    Ok(by_rows.max(by_age).min(newest - 1))
}

/// Prunes what `limits` make due now, at most `batch` records (all with
/// `None`); `by` says who asked (recorded). The store must be unlocked
/// with `ring`.
pub fn prune(
    store: &mut Store,
    ring: &KeyRing,
    limits: &RetentionConfig,
    batch: Option<u64>,
    by: &str,
) -> Result<Pruned, StoreError> {
    prune_at(store, ring, limits, batch, by, unix_now_ms())
}

/// [`prune`] as if the time were `now_ms` (ages are measured from it).
pub fn prune_at(
    store: &mut Store,
    ring: &KeyRing,
    limits: &RetentionConfig,
    batch: Option<u64>,
    by: &str,
    now_ms: i64,
) -> Result<Pruned, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let key = Installed::find(&tx)?.ok_or(AuditError::Locked)?;
    let previous = match checkpoint::find(&tx)? {
        Found::None => None,
        Found::Valid(c) => Some(c),
        Found::Forged => return Err(AuditError::CheckpointForged.into()),
    };
    let (first, newest): (Option<i64>, Option<i64>) =
        tx.query_row("SELECT MIN(id), MAX(id) FROM audit", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(first), Some(newest)) = (first, newest) else {
        return Ok(nothing(previous.as_ref(), 0));
    };
    let mut through = due_through(&tx, limits, now_ms, (first, newest))?;
    if let Some(b) = batch {
        through = through.min(first.saturating_add(i64::try_from(b).unwrap_or(i64::MAX)) - 1);
    }
    if through < first {
        let kept = u64::try_from(newest - first + 1).unwrap_or(0);
        return Ok(nothing(previous.as_ref(), kept));
    }

    // The prefix must verify before it goes, and what it says subjects
    // hold is carried forward.
    let mut walk = match &previous {
        Some(c) => Walk::resume(Some(&key), c),
        None => Walk::new(Some(&key)),
    };
    let mut enrolments = previous
        .as_ref()
        .map(|c| c.enrolments.clone())
        .unwrap_or_default();
    let (mut hash, mut key_id) = (String::new(), None);
    {
        let mut stmt = tx.prepare(&format!("{SELECT_ROW} WHERE id <= ?1 ORDER BY id"))?;
        let mut rows = stmt.query([through])?;
        while let Some(r) = rows.next()? {
            let row = Row::read(r)?;
            walk.step(&row.stored_link())?;
            settle(&mut enrolments, &row);
            hash.clone_from(&row.hash);
            key_id.clone_from(&row.key_id);
        }
    }
    if let Some(broken) = walk.broken {
        return Err(AuditError::PruneBroken { broken }.into());
    }
    let records = u64::try_from(through - first + 1).unwrap_or(0);
    let total = previous.as_ref().map_or(0, |c| c.pruned) + records;
    let cp = Checkpoint {
        iss: ring.device_id.clone(),
        kid: ring.kid.clone(),
        iat: unix_now(),
        record: through,
        hash: hash.clone(),
        key_id,
        pruned: total,
        seq: device::current_seq(&tx)?,
        enrolments,
    };
    let token =
        crate::verdict::jws::sign_as(checkpoint::CHECKPOINT_TYP, &cp, &ring.signer, &ring.kid)
            .map_err(AuditError::from)?;
    checkpoint::store_token(&tx, &token)?;
    tx.execute("DELETE FROM audit WHERE id <= ?1", params![through])?;
    let event = Event::AuditPruned {
        detail: serde_json::json!({
            "records": records,
            "through_record": through,
            "through_hash": hash,
            "total": total,
            "by": by,
            "retain_days": limits.retain_days,
            "max_rows": limits.max_rows,
        }),
    };
    let id = append_in(&tx, &event)?;
    tx.commit()?;
    tracing::info!(
        records,
        through,
        total,
        by,
        "audit log pruned behind a signed checkpoint"
    );
    let more_due =
        batch.is_some() && due_through(store.conn(), limits, now_ms, (through + 1, id))? > through;
    Ok(Pruned {
        records,
        through_record: through,
        total,
        kept: u64::try_from(id - through).unwrap_or(0),
        more_due,
    })
}

fn nothing(previous: Option<&Checkpoint>, kept: u64) -> Pruned {
    Pruned {
        records: 0,
        through_record: previous.map_or(0, |c| c.record),
        total: previous.map_or(0, |c| c.pruned),
        kept,
        more_due: false,
    }
}

/// Folds one pruned record into what subjects hold: an enrolment sets it,
/// a revocation or a key (re-)initialisation removes it.
fn settle(enrolments: &mut std::collections::BTreeMap<String, Enrolment>, row: &Row) {
    let detail = || serde_json::from_str::<serde_json::Value>(&row.detail).unwrap_or_default();
    match (row.event.as_str(), row.subject.as_deref()) {
        ("enroll", Some(subject)) => {
            let template_rows = detail()["template_rows"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
                .unwrap_or_default();
            enrolments.insert(
                subject.to_owned(),
                Enrolment {
                    record: row.id,
                    template_rows,
                },
            );
        }
        ("revoke", Some(subject)) => {
            enrolments.remove(subject);
        }
        ("keys_init", _) => enrolments.clear(),
        ("anchor_reset", _) if detail()["cause"] == "keys_init" => enrolments.clear(),
        _ => {}
    }
}
