//! The sealed local store: one SQLite database (WAL) under the state
//! directory holding everything edgeid must remember.
//!
//! - `schema`: tables and migrations, with a version table.
//! - `seal`: AES-256-GCM sealing bound to a row (associated data).
//! - `keys`: the key-encryption key (KEK) sources, the wrapped data key (DEK)
//!   and the sealed Ed25519 device signing key; rotation.
//! - `device`: device id and the monotonic verdict sequence.
//! - `templates`: subjects and their sealed templates.
//! - `audit`: the SHA-256 hash-chained audit log.
//! - `lockout`: failed-attempt records that survive restarts.
//! - `queue`: the bounded outbound verdict queue (used by the daemon).
//!
//! The store knows nothing of models or images: templates are `f32` slices
//! labelled with a model id, and plaintext only ever exists in memory.

pub mod audit;
pub mod device;
pub mod keys;
pub mod lockout;
pub mod queue;
pub mod schema;
pub mod seal;
pub mod templates;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use keys::{Kek, KekSource, KeyRing};
pub use seal::DataKey;

/// The database file inside the state directory.
pub const DB_FILE: &str = "edgeid.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no store at {0}: run `edgeid keys init` first (or pass --state-dir)")]
    NotInitialised(PathBuf),
    #[error(
        "the store at {path} has schema version {found}, newer than this edgeid supports ({supported}); \
         upgrade edgeid — the store was not modified"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(
        "template row {row} of subject {subject:?} failed its integrity check (store_tampered): \
         revoke and re-enrol the subject"
    )]
    Tampered { row: i64, subject: String },
    #[error("subject {0:?} is already enrolled: pass --replace to re-enrol, or revoke it first")]
    SubjectExists(String),
    #[error("subject {0:?} is not enrolled")]
    UnknownSubject(String),
    #[error(
        "invalid subject id {0:?}: use 1–128 characters of letters, digits, '.', '_', '-', '@'"
    )]
    InvalidSubject(String),
    #[error("the store holds no device identity: run `edgeid keys init`")]
    NoDevice,
    /// A stored value that does not read back as what was written. The
    /// decoding error is part of the message, so not also a `source()`.
    #[error("malformed stored value in {what}: {error}")]
    Malformed {
        /// Which record ("template row 12").
        what: String,
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An open store. All writes go through methods of the submodules.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens an existing store; refuses a missing one or a newer schema
    /// before writing anything.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NotInitialised(state_dir.to_owned()));
        }
        Self::open_path(path)
    }

    /// Opens the store, creating the state directory (mode 0700) and the
    /// database when missing.
    pub fn create(state_dir: &Path) -> Result<Self, StoreError> {
        if !state_dir.is_dir() {
            create_private_dir(state_dir).map_err(|source| StoreError::StateDir {
                path: state_dir.to_owned(),
                source,
            })?;
        }
        Self::open_path(state_dir.join(DB_FILE))
    }

    fn open_path(path: PathBuf) -> Result<Self, StoreError> {
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Checked before any pragma that writes (journal_mode), so a newer
        // database is left byte-for-byte as it was.
        schema::check_not_newer(&conn, &path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a committed enrollment, key change or verdict sequence number
        // survives power loss; the cost is one fsync per commit.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn, path })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC time ("2026-05-01T12:00:00.123Z") for audit records.
pub fn rfc3339_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days: exact for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    )
}

/// Subject ids are pseudonymous handles; a small alphabet keeps them out of
/// log-injection and path trouble.
pub fn validate_subject(subject: &str) -> Result<(), StoreError> {
    let ok = (1..=128).contains(&subject.len())
        && subject
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidSubject(subject.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
    }

    #[test]
    fn subject_ids_are_checked() {
        assert!(validate_subject("alice-01@site").is_ok());
        assert!(validate_subject("").is_err());
        assert!(validate_subject("a b").is_err());
        assert!(validate_subject("x\n").is_err());
    }
}
