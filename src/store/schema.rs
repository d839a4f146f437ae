//! Tables and migrations. `schema_version` records every migration applied;
//! a database from a newer edgeid is refused before anything is written.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Migrations in order; index i brings the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const V1: &str = r#"
CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
);
-- One row: who this device is and the last verdict sequence number issued.
CREATE TABLE device (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    device_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
-- One row: the DEK wrapped by the KEK, the signing key sealed by the DEK.
CREATE TABLE keys (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    wrapped_dek        BLOB NOT NULL,
    sealed_signing_key BLOB NOT NULL,
    public_key         BLOB NOT NULL,
    kid                TEXT NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE TABLE subjects (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
-- AUTOINCREMENT: a row id is never reused, so an old sealed blob can never
-- be replayed into a later row with the same id.
CREATE TABLE templates (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject      TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    modality     TEXT NOT NULL,
    model_id     TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    dim          INTEGER NOT NULL,
    quality      TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX templates_subject ON templates(subject);
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    event     TEXT NOT NULL,
    subject   TEXT,
    decision  TEXT,
    reason    TEXT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
-- The last record's id and hash, so deleting the newest records is noticed.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    record_id INTEGER NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TABLE lockout_failures (
    subject TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE INDEX lockout_failures_subject ON lockout_failures(subject, at_ms);
CREATE TABLE verdict_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    verdict    TEXT NOT NULL
);
"#;

/// The keyed audit chain (`store::audit`): each record's MAC and the id of
/// the key that made it, the head's too (NULL in records written before);
/// and the look-ups of a subject's enrolment records.
const V2: &str = r#"
ALTER TABLE audit ADD COLUMN key_id TEXT;
ALTER TABLE audit ADD COLUMN mac TEXT;
ALTER TABLE audit_head ADD COLUMN key_id TEXT;
ALTER TABLE audit_head ADD COLUMN mac TEXT;
CREATE INDEX audit_subject ON audit(subject, id);
CREATE INDEX audit_event ON audit(event, id);
"#;

/// Audit retention (`store::audit::checkpoint`): the signed checkpoint the
/// records kept after a pruning follow.
const V3: &str = r#"
CREATE TABLE audit_checkpoint (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL
);
"#;

/// The schema version recorded in `conn` (0 for an empty database).
pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    let has_table: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    if has_table == 0 {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?)
}

/// Refuses a database written by a newer edgeid; reads only.
pub fn check_not_newer(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies the missing migrations in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current = current_version(conn)?;
    if current >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Re-read inside the write lock: another process may have migrated.
    let current = current_version(&tx)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (index as i64 + 1, super::unix_now()),
        )?;
        tracing::info!(version = index + 1, "store schema migrated");
    }
    tx.commit()?;
    Ok(())
}
