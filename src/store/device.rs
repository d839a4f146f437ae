//! The device identity and the verdict sequence number.
//!
//! `next_seq` commits the incremented value (synchronous=FULL, so fsynced)
//! before returning it: a verdict is signed only with a number already on
//! disk, so no number is ever issued twice, even across a crash or kill -9.
//! `next_seq_in` does the same inside a caller's transaction, so a verdict's
//! number and its audit record reach the disk in one commit.

use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreError, unix_now};

pub fn device_id(conn: &Connection) -> Result<String, StoreError> {
    conn.query_row("SELECT device_id FROM device WHERE id = 1", [], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or(StoreError::NoDevice)
}

/// Sets the device id, keeping the sequence number if the row exists.
pub(crate) fn set_identity(conn: &Connection, device_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO device (id, device_id, seq, created_at) VALUES (1, ?1, 0, ?2) \
         ON CONFLICT(id) DO UPDATE SET device_id = excluded.device_id",
        (device_id, unix_now()),
    )?;
    Ok(())
}

/// The last sequence number issued (0 before the first verdict).
pub fn current_seq(conn: &Connection) -> Result<u64, StoreError> {
    let seq: i64 = conn
        .query_row("SELECT seq FROM device WHERE id = 1", [], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NoDevice)?;
    Ok(seq as u64)
}

/// Reserves and durably records the next sequence number.
pub fn next_seq(store: &mut Store) -> Result<u64, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let seq = next_seq_in(&tx)?;
    tx.commit()?;
    Ok(seq)
}

/// Reserves the next sequence number inside the caller's transaction; it
/// is durable once that transaction commits.
pub fn next_seq_in(conn: &Connection) -> Result<u64, StoreError> {
    let seq: i64 = conn
        .query_row(
            "UPDATE device SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            [],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(StoreError::NoDevice)?;
    Ok(seq as u64)
}
