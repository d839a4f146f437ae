//! Failed-verification records per subject, kept in the store so a lockout
//! survives a restart. The policy (how many, how long) is in
//! `decision::lockout`; this is only storage.

use rusqlite::params;

use super::{Store, StoreError};

/// Failure times (ms) for `subject` at or after `since_ms`, oldest first.
pub fn failures_since(store: &Store, subject: &str, since_ms: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = store.conn().prepare(
        "SELECT at_ms FROM lockout_failures WHERE subject = ?1 AND at_ms >= ?2 ORDER BY at_ms",
    )?;
    let rows = stmt.query_map(params![subject, since_ms], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a failure and forgets those older than `forget_before_ms`.
pub fn record_failure(
    store: &mut Store,
    subject: &str,
    at_ms: i64,
    forget_before_ms: i64,
) -> Result<(), StoreError> {
    let tx = store.conn_mut().transaction()?;
    tx.execute(
        "INSERT INTO lockout_failures (subject, at_ms) VALUES (?1, ?2)",
        params![subject, at_ms],
    )?;
    tx.execute(
        "DELETE FROM lockout_failures WHERE at_ms < ?1",
        [forget_before_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// A success clears the subject's failures; returns how many there were.
pub fn clear(store: &Store, subject: &str) -> Result<usize, StoreError> {
    Ok(store
        .conn()
        .execute("DELETE FROM lockout_failures WHERE subject = ?1", [subject])?)
}

/// An admin's unlock: the failures go and the audit record (who, how many)
/// commits with them.
pub fn unlock(
    store: &mut Store,
    subject: &str,
    event: &super::audit::Event<'_>,
) -> Result<usize, StoreError> {
    let tx = store.conn_mut().transaction()?;
    let cleared = tx.execute("DELETE FROM lockout_failures WHERE subject = ?1", [subject])?;
    let event = event
        .clone()
        .with_detail("failures_cleared", cleared.into());
    super::audit::append_in(&tx, &event)?;
    tx.commit()?;
    Ok(cleared)
}
