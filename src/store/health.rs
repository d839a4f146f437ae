//! A store looked at without changing it, for `edgeid doctor`: the schema
//! version, SQLite's integrity check, whether the KEK opens the keys, and
//! where the database stands against its rollback anchor.
//!
//! Unlike [`Store::open`](super::Store::open) this never migrates, tightens
//! modes, records a refusal or moves the anchor: a technician's check must
//! not be what changes the device.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::anchor::counter::{CounterConfig, CounterRef};
use super::anchor::{self, AnchorKey, Found, Position};
use super::keys::{Kek, KeyRing, open_ring};
use super::{DB_FILE, StoreError, schema};

/// A store opened read-only.
pub struct ReadOnlyStore {
    conn: Connection,
    dir: PathBuf,
    path: PathBuf,
}

/// What the database says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub path: PathBuf,
    pub schema_version: i64,
    /// The schema version this edgeid writes.
    pub schema_supported: i64,
    /// SQLite's `integrity_check` findings; empty when it says "ok".
    pub integrity_problems: Vec<String>,
    pub subjects: i64,
    pub audit_records: i64,
}

/// The database against its rollback anchor (see `store::anchor`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AnchorHealth {
    /// The anchor authenticates and the database is at or past it.
    Matches {
        anchor: Position,
        database: Position,
        /// The TPM counter the anchor names, and the TPM's value now.
        #[serde(skip_serializing_if = "Option::is_none")]
        counter: Option<CounterRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tpm_value: Option<u64>,
    },
    /// No anchor, and the store was never anchored: the next unlock anchors it.
    NotYetAnchored { database: Position },
    /// Refused at the next unlock: `problem` is `behind`, `diverged`,
    /// `anchor_missing`, `anchor_unauthentic` or a `counter_*` problem, as
    /// in the audit record.
    Refused {
        problem: &'static str,
        anchor: Option<Position>,
        database: Position,
    },
}

impl ReadOnlyStore {
    /// Opens the database of `state_dir` read-only; refuses a missing one.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::NotInitialised(state_dir.to_owned()));
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Self {
            conn,
            dir: state_dir.to_owned(),
            path,
        })
    }

    /// Schema, integrity and counts. A schema newer than this edgeid's is
    /// reported, not refused: the counts are then not read.
    pub fn health(&self) -> Result<Health, StoreError> {
        let schema_version = schema::current_version(&self.conn)?;
        let mut stmt = self.conn.prepare("PRAGMA integrity_check(20)")?;
        let integrity_problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|line| line != "ok")
            .collect();
        let count = |table: &str| -> Result<i64, StoreError> {
            Ok(self
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        };
        let known = schema_version == schema::SCHEMA_VERSION;
        Ok(Health {
            path: self.path.clone(),
            schema_version,
            schema_supported: schema::SCHEMA_VERSION,
            integrity_problems,
            subjects: if known { count("subjects")? } else { -1 },
            audit_records: if known { count("audit")? } else { -1 },
        })
    }

    /// Opens the keys with `kek`, checking the stored public key against
    /// the signing key's, as every unlock does.
    pub fn unlock(&self, kek: &Kek) -> Result<KeyRing, StoreError> {
        open_ring(&self.conn, kek)
    }

    /// Where the database stands against its anchor, as the next unlock
    /// would judge it (without recording anything).
    pub fn anchor(
        &self,
        ring: &KeyRing,
        counter_config: &CounterConfig,
    ) -> Result<AnchorHealth, StoreError> {
        let key = AnchorKey::derive(&ring.dek, &ring.device_id)?;
        let database = Position::read(&self.conn)?;
        let refused = |refusal: anchor::Refusal, database: Position| AnchorHealth::Refused {
            problem: refusal.problem(),
            anchor: refusal.anchored().cloned(),
            database,
        };
        Ok(match anchor::inspect(&self.dir, &ring.device_id, &key)? {
            Found::Valid { position, counter } => {
                match anchor::compare(&self.conn, &database, &position)? {
                    Some(refusal) => refused(refusal, database),
                    None => {
                        match anchor::counter_standing(counter_config, &position, counter.as_ref())
                        {
                            Err(refusal) => refused(refusal, database),
                            Ok(standing) => AnchorHealth::Matches {
                                anchor: position,
                                database,
                                counter,
                                tpm_value: standing.map(|(_, _, value)| value),
                            },
                        }
                    }
                }
            }
            Found::Unauthentic => refused(anchor::Refusal::Unauthentic, database),
            Found::Missing if anchor::ever_anchored(&self.conn)? => {
                refused(anchor::Refusal::Missing, database)
            }
            Found::Missing => AnchorHealth::NotYetAnchored { database },
        })
    }
}
