//! The retention checkpoint: what the audit log's pruned prefix ended with,
//! signed by the device key, so the records kept still verify as a chain
//! and nothing else can shorten it.
//!
//! Pruning ([`super::retention`]) deletes records 1..=N only after writing
//! a checkpoint carrying record N's id, hash and audit key, and the count
//! of records pruned in all. [`super::verify`] then walks the chain from
//! the checkpoint instead of from the genesis hash:
//! - deleting more of the oldest records breaks the link at the first
//!   record kept (it no longer follows the checkpoint), and moving the
//!   checkpoint forward to hide that needs the device's signing key;
//! - deleting the checkpoint leaves a chain that starts past record 1,
//!   which is a broken link as before retention existed;
//! - editing a kept record breaks its hash or MAC as before.
//!
//! The checkpoint is an Ed25519 compact JWS (`typ`
//! `edgeid-audit-checkpoint+jwt`), not a MAC: a signed export carries it,
//! so the offline check with the device's public JWK starts from it too,
//! and it outlives a data-key rotation (which changes the audit key but
//! not the signing key).
//!
//! It also keeps what the pruned records said each subject holds (the
//! template rows of their newest enrolment), so a subject enrolled before
//! the oldest kept record is still checked for rows deleted behind
//! edgeid's back ([`super::enrolment_tampering`]).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::super::StoreError;
use crate::verdict::jws::{self, VerdictError};

/// The `typ` of a retention checkpoint.
pub const CHECKPOINT_TYP: &str = "edgeid-audit-checkpoint+jwt";

/// The signed payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The device id.
    pub iss: String,
    /// The signing key's id (also in the header).
    pub kid: String,
    /// When the prefix was pruned, Unix seconds.
    pub iat: i64,
    /// The newest pruned record: the chain kept starts at `record + 1`.
    pub record: i64,
    /// Its hash: the `prev_hash` of the first record kept.
    pub hash: String,
    /// The audit key it was MAC'd under (none: written before keyed audit):
    /// the key epoch the first record kept continues.
    pub key_id: Option<String>,
    /// Records pruned in all, over every pruning (they are 1..=record).
    pub pruned: u64,
    /// The device's verdict sequence number when it pruned.
    pub seq: u64,
    /// Subjects whose newest enrolment record was pruned: what it wrote.
    pub enrolments: BTreeMap<String, Enrolment>,
}

/// What an enrolment record said the subject holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    pub record: i64,
    pub template_rows: Vec<i64>,
}

/// The checkpoint as `audit verify` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    /// Records 1..=through_record were pruned.
    pub through_record: i64,
    pub hash: String,
    pub pruned: u64,
    pub pruned_at: String,
}

/// Why a checkpoint token is not one this device signed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is not signed by the device key: {0}")]
    Token(#[source] VerdictError),
    #[error("the signed checkpoint does not read as one: {0}")]
    Payload(#[source] serde_json::Error),
}

impl Checkpoint {
    pub fn summary(&self) -> CheckpointSummary {
        CheckpointSummary {
            through_record: self.record,
            hash: self.hash.clone(),
            pruned: self.pruned,
            pruned_at: super::super::rfc3339_utc(self.iat.saturating_mul(1000)),
        }
    }

    /// Opens a checkpoint token signed by `public_key` (id `kid`).
    pub fn open(token: &str, public_key: &[u8; 32], kid: &str) -> Result<Self, CheckpointError> {
        let (_, payload) = jws::verify_as(token, public_key, kid, CHECKPOINT_TYP)
            .map_err(CheckpointError::Token)?;
        serde_json::from_slice(&payload).map_err(CheckpointError::Payload)
    }
}

/// The stored checkpoint token, if the log was ever pruned.
pub fn stored_token(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT token FROM audit_checkpoint WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Replaces the stored checkpoint (inside the pruning transaction).
pub(super) fn store_token(conn: &Connection, token: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_checkpoint (id, token) VALUES (1, ?1) \
         ON CONFLICT(id) DO UPDATE SET token = excluded.token",
        [token],
    )?;
    Ok(())
}

/// The device's public key and its id as stored (checked against the
/// signing key whenever the keys are unlocked); `None` before `keys init`.
fn device_key(conn: &Connection) -> Result<Option<([u8; 32], String)>, StoreError> {
    let row: Option<(Vec<u8>, String)> = conn
        .query_row("SELECT public_key, kid FROM keys WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(row.and_then(|(bytes, kid)| Some((<[u8; 32]>::try_from(bytes.as_slice()).ok()?, kid))))
}

/// What the store's checkpoint turned out to be.
pub enum Found {
    /// Never pruned.
    None,
    Valid(Checkpoint),
    /// Present, but not signed by the device key (or unreadable).
    Forged,
}

/// Reads and checks the store's checkpoint against the device's key.
pub fn find(conn: &Connection) -> Result<Found, StoreError> {
    let Some(token) = stored_token(conn)? else {
        return Ok(Found::None);
    };
    let Some((public_key, kid)) = device_key(conn)? else {
        return Ok(Found::Forged);
    };
    Ok(match Checkpoint::open(&token, &public_key, &kid) {
        Ok(c) => Found::Valid(c),
        Err(e) => {
            tracing::warn!(error = %e, "the audit retention checkpoint does not verify");
            Found::Forged
        }
    })
}
