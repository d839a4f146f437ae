//! The sealed local store: one SQLite database (WAL) under the state
//! directory holding everything edgeid must remember.
//!
//! - `schema`: tables and migrations, with a version table.
//! - `files`: the state directory and its files, private whatever the umask.
//! - `seal`: AES-256-GCM sealing bound to a row (associated data).
//! - `keys`: the key-encryption key (KEK) sources, the wrapped data key (DEK)
//!   and the sealed Ed25519 device signing key (its public key checked
//!   against the stored one at every unlock); rotation.
//! - `anchor`: the rollback anchor beside the database, so an older copy of
//!   the database is refused; `commit`: the transactions that move it.
//! - `device`: device id and the monotonic verdict sequence.
//! - `health`: the store looked at read-only (`edgeid doctor`).
//! - `templates`: subjects and their sealed templates.
//! - `audit`: the SHA-256 hash-chained audit log.
//! - `lockout`: failed-attempt records that survive restarts.
//! - `queue`: the bounded outbound verdict queue (used by the daemon).
//! - `space`: a full filesystem recognised in SQLite and file errors, and
//!   reading without needing space.
//!
//! The store knows nothing of models or images: templates are `f32` slices
//! labelled with a model id, and plaintext only ever exists in memory.

pub mod anchor;
pub mod audit;
pub mod commit;
pub mod device;
pub mod files;
pub mod health;
pub mod keys;
pub mod lockout;
pub mod queue;
pub mod schema;
pub mod seal;
pub mod space;
pub mod templates;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use anchor::AnchorError;
pub use commit::{StoreTx, Writer};
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
    #[error("cannot create or secure {path} (state directory 0700, files 0600): {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the state directory {path} belongs to uid {owner}, not the running user ({uid}): its owner could \
         swap the store's files; run edgeid as that user, or `chown -R {uid} {path}` if it should be yours"
    )]
    StateDirOwner { path: PathBuf, owner: u32, uid: u32 },
    #[error(
        "the database is older than its rollback anchor (database at verdict seq {db_seq} and audit \
         record {db_audit_record}, anchor at seq {anchor_seq} and record {anchor_audit_record}): an older \
         copy was restored, which would bring back revoked subjects and issue verdict numbers twice; \
         refusing to serve (recorded in the audit log). Put the newest database back, or, if this \
         restore was deliberate, run `edgeid keys reanchor --i-restored-a-backup`"
    )]
    RolledBack {
        db_seq: u64,
        anchor_seq: u64,
        db_audit_record: i64,
        anchor_audit_record: i64,
    },
    #[error(
        "audit record {record} in the database is not the one the rollback anchor recorded: the database \
         was replaced by another copy; refusing to serve (recorded in the audit log). Put the right \
         database back, or, if this was deliberate, run `edgeid keys reanchor --i-restored-a-backup`"
    )]
    Diverged { record: i64 },
    #[error(
        "the rollback anchor {path} is missing, but this store has been anchored (verdict seq {db_seq}, \
         audit record {db_audit_record}): deleting the anchor is how a restored older copy would be \
         hidden; refusing to serve (recorded in the audit log). Put the anchor back, or, if the state \
         directory was restored on purpose, run `edgeid keys reanchor --i-restored-a-backup`"
    )]
    AnchorMissing {
        path: PathBuf,
        db_seq: u64,
        db_audit_record: i64,
    },
    #[error(
        "the rollback anchor {path} does not authenticate under this store's key: it was forged, \
         damaged, or belongs to another store; refusing to serve (recorded in the audit log). Put the \
         right anchor back, or, if the state directory was restored on purpose, run \
         `edgeid keys reanchor --i-restored-a-backup`"
    )]
    AnchorUnauthentic { path: PathBuf },
    #[error(
        "the rollback anchor holds TPM counter {nv_index} at {anchor_value}, but the TPM is at \
         {tpm_value}: the state directory (database and anchor) is an older copy; refusing to serve \
         (recorded in the audit log). Put the newest state back, or, if this restore was deliberate, \
         run `edgeid keys reanchor --i-restored-a-backup`"
    )]
    CounterBehind {
        nv_index: String,
        anchor_value: u64,
        tpm_value: u64,
    },
    #[error(
        "the rollback anchor holds TPM counter {nv_index} at {anchor_value}, ahead of the TPM's \
         {tpm_value}: the TPM was cleared or replaced, or the index redefined; refusing to serve \
         (recorded in the audit log). If the TPM was replaced on purpose, run `edgeid keys reanchor \
         --i-restored-a-backup`"
    )]
    CounterMismatch {
        nv_index: String,
        anchor_value: u64,
        tpm_value: u64,
    },
    #[error(
        "the rollback anchor's TPM counter {nv_index} cannot be read ({source}); a store bound to a \
         counter is not served without it (recorded in the audit log). Check the TPM (`edgeid \
         doctor`, [anchor] tpm_tcti); to unbind a store whose TPM is gone, set [anchor] \
         hardware_counter = \"none\" and run `edgeid keys reanchor --i-restored-a-backup`"
    )]
    CounterUnavailable {
        nv_index: String,
        source: anchor::counter::CounterError,
    },
    #[error(
        "[anchor] asks for TPM counter {nv_index}, which already counts ({tpm_value}), but this \
         store's anchor names no counter: the state directory is a copy from before it was bound, or \
         the index belongs to something else; refusing to serve (recorded in the audit log). If this \
         is deliberate, run `edgeid keys reanchor --i-restored-a-backup` (or choose another \
         tpm_nv_index)"
    )]
    CounterInUse { nv_index: String, tpm_value: u64 },
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    #[error(
        "disk full: the filesystem holding the store has no space left, so the change was not made \
         (nothing already stored is lost); free some space and try again. Reading still works \
         (`subjects list`, `audit verify`, `keys show`)"
    )]
    DiskFull {
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "disk full, and the store at {path} has schema version {found}: this edgeid must migrate it to \
         {supported} before reading it, which needs space; free some space and try again"
    )]
    FullBeforeMigration {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
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
        "subject {subject:?} already has {modality} templates: pass --replace to re-enrol them, or revoke the subject first"
    )]
    ModalityExists { subject: String, modality: String },
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

impl From<rusqlite::Error> for StoreError {
    /// A full filesystem is told apart here, where every SQLite error
    /// enters the store's error (`space`).
    fn from(source: rusqlite::Error) -> Self {
        if space::sqlite_is_full(&source) {
            Self::DiskFull { source }
        } else {
            Self::Sqlite(source)
        }
    }
}

/// An open store. All writes go through methods of the submodules.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    owner: files::Owner,
    /// Set once the keys are unlocked (`keys::unlock`, `keys::init`): then
    /// every commit moves the rollback anchor forward.
    anchor: Option<anchor::Anchoring>,
    /// `[anchor]`: whether the anchor is also bound to a TPM counter.
    counter_config: anchor::counter::CounterConfig,
}

/// The files SQLite keeps beside the database in WAL mode.
const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

impl Store {
    /// Opens an existing store; refuses a missing one, a state directory
    /// owned by another user or a newer schema before writing anything
    /// (a loose directory or file mode is tightened).
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NotInitialised(state_dir.to_owned()));
        }
        let owner = files::prepare_dir(state_dir, false)?;
        files::tighten(&path)?;
        Self::open_path(state_dir, path, owner)
    }

    /// Opens an existing store for reading, also on a full filesystem. The
    /// usual open needs space: a store in WAL mode whose write-ahead log
    /// and shared-memory index were removed at the last clean close gets
    /// them created again. When that fails for want of space, a read-only
    /// connection reads the database without them (or, after a crash left
    /// a log, with its index in memory: exclusive locking mode, so only
    /// while nothing else has the store open, which is when the index is
    /// missing). Writes on it fail; the read-only verbs use it.
    pub fn open_for_reading(state_dir: &Path) -> Result<Self, StoreError> {
        match Self::open(state_dir) {
            Err(StoreError::DiskFull { source }) => {
                tracing::warn!(error = %source, "disk full: opening the store read-only");
                Self::open_read_only(state_dir)
            }
            other => other,
        }
    }

    fn open_read_only(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(DB_FILE);
        let owner = files::prepare_dir(state_dir, false)?;
        let conn = Self::connect_read_only(&path)?;
        schema::check_not_newer(&conn, &path)?;
        let found = schema::current_version(&conn)?;
        if found < schema::SCHEMA_VERSION {
            return Err(StoreError::FullBeforeMigration {
                path,
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        Ok(Self::assemble(conn, path, state_dir, owner))
    }

    /// A read-only connection on a full disk. A WAL-mode reader needs the
    /// `-shm` index: when a writer left one, a plain read-only open reads
    /// the database and its WAL. When there is none (every connection
    /// closed, so the WAL was checkpointed into the database and removed)
    /// and none can be created, the file is complete on its own and is
    /// opened `immutable` (no locks, no index). A non-empty WAL without an
    /// index cannot be read without space: that is said, not guessed.
    fn connect_read_only(path: &Path) -> Result<Connection, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let plain = Connection::open_with_flags(path, flags).and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(c)
        });
        let error = match plain {
            Ok(conn) => return Ok(conn),
            Err(e) => e,
        };
        let wal = side_file(path, "-wal");
        let wal_empty = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
        if !wal_empty {
            return Err(StoreError::from(error));
        }
        let uri = format!("file:{}?immutable=1", uri_path(path));
        Ok(Connection::open_with_flags(&uri, flags)?)
    }

    /// Opens the store, creating the state directory (mode 0700) and the
    /// database (0600) when missing, whatever the umask.
    pub fn create(state_dir: &Path) -> Result<Self, StoreError> {
        let owner = files::prepare_dir(state_dir, true)?;
        let path = state_dir.join(DB_FILE);
        // Created before SQLite opens it: SQLite would create it 0644 under
        // umask 022, and gives the WAL and shared-memory files its mode.
        files::private_file(&path, owner)?;
        Self::open_path(state_dir, path, owner)
    }

    fn open_path(state_dir: &Path, path: PathBuf, owner: files::Owner) -> Result<Self, StoreError> {
        let side_files = || SIDE_FILES.map(|suffix| side_file(&path, suffix));
        for file in side_files() {
            files::tighten(&file)?;
        }
        files::tighten(&state_dir.join(anchor::ANCHOR_FILE))?;
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
        // SQLite creates these with the database's mode; checked all the same.
        for file in side_files() {
            files::tighten(&file)?;
        }
        Ok(Self::assemble(conn, path, state_dir, owner))
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection for writes: its transactions move the rollback
    /// anchor forward when they commit.
    pub fn conn_mut(&mut self) -> Writer<'_> {
        Writer::new(&mut self.conn, &mut self.anchor)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An open connection as a store, still locked (no anchoring, no
    /// hardware counter until the config sets one).
    fn assemble(conn: Connection, path: PathBuf, state_dir: &Path, owner: files::Owner) -> Self {
        Self {
            conn,
            path,
            dir: state_dir.to_owned(),
            owner,
            anchor: None,
            counter_config: Default::default(),
        }
    }

    /// Sets `[anchor]` (before the keys are unlocked): whether the rollback
    /// anchor is also bound to a TPM counter.
    pub fn set_counter_config(&mut self, config: anchor::counter::CounterConfig) {
        self.counter_config = config;
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether commits move the rollback anchor (the keys are unlocked).
    pub fn is_anchored(&self) -> bool {
        self.anchor.is_some()
    }

    pub(crate) fn owner(&self) -> files::Owner {
        self.owner
    }
}

/// `path` for an SQLite URI: `%`, `?` and `#` percent-encoded.
fn uri_path(path: &Path) -> String {
    path.to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

fn side_file(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
        Err(StoreError::InvalidSubject(crate::untrusted::echo(
            subject,
            crate::untrusted::SHORT,
        )))
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
