//! The outbound verdict queue: verdicts waiting for delivery (MQTT) live on
//! disk, never in memory alone. Bounded: pushing beyond `capacity` drops the
//! oldest, which have expired first anyway (verdicts live seconds).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, unix_now};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub created_at: i64,
    pub verdict: String,
}

/// Appends `verdict`; returns how many old entries were dropped to stay within `capacity`.
pub fn push(store: &mut Store, verdict: &str, capacity: usize) -> Result<usize, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO verdict_queue (created_at, verdict) VALUES (?1, ?2)",
        params![unix_now(), verdict],
    )?;
    let dropped = tx.execute(
        "DELETE FROM verdict_queue WHERE id NOT IN (SELECT id FROM verdict_queue ORDER BY id DESC LIMIT ?1)",
        [capacity as i64],
    )?;
    tx.commit()?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            capacity,
            "verdict queue full: dropped the oldest undelivered verdicts"
        );
    }
    Ok(dropped)
}

/// The oldest queued verdict, left in place.
pub fn peek(store: &Store) -> Result<Option<Queued>, StoreError> {
    Ok(store
        .conn()
        .query_row(
            "SELECT id, created_at, verdict FROM verdict_queue ORDER BY id LIMIT 1",
            [],
            |r| {
                Ok(Queued {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    verdict: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Removes a delivered entry; false when it was already gone.
pub fn remove(store: &Store, id: i64) -> Result<bool, StoreError> {
    Ok(store
        .conn()
        .execute("DELETE FROM verdict_queue WHERE id = ?1", [id])?
        > 0)
}

pub fn len(store: &Store) -> Result<usize, StoreError> {
    let n: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM verdict_queue", [], |r| r.get(0))?;
    Ok(n as usize)
}
