//! Why a store is refused: the database against the anchor, and the
//! anchor's counter against the TPM.

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::Position;
use super::counter::{CounterError, CounterRef};
use crate::store::StoreError;

/// Why a store is refused.
pub(in crate::store) enum Refusal {
    Behind(Position),
    Diverged(Position),
    Missing,
    Unauthentic,
    /// The anchor's counter value is behind the TPM's: the whole state
    /// directory is an older copy.
    CounterBehind {
        anchored: Position,
        counter: CounterRef,
        tpm_value: u64,
    },
    /// More than one ahead: the TPM was cleared or is another one.
    CounterAhead {
        anchored: Position,
        counter: CounterRef,
        tpm_value: u64,
    },
    /// The anchor names a counter (or the config asks for one) that cannot
    /// be read.
    CounterUnavailable {
        index: u32,
        error: CounterError,
    },
    /// The config asks for a counter that already counts, but the anchor
    /// names none: a copy from before the store was bound.
    CounterInUse {
        index: u32,
        tpm_value: u64,
    },
}

impl Refusal {
    pub(in crate::store) fn problem(&self) -> &'static str {
        match self {
            Refusal::Behind(_) => "behind",
            Refusal::Diverged(_) => "diverged",
            Refusal::Missing => "anchor_missing",
            Refusal::Unauthentic => "anchor_unauthentic",
            Refusal::CounterBehind { .. } => "counter_behind",
            Refusal::CounterAhead { .. } => "counter_mismatch",
            Refusal::CounterUnavailable { .. } => "counter_unavailable",
            Refusal::CounterInUse { .. } => "counter_in_use",
        }
    }

    pub(in crate::store) fn anchored(&self) -> Option<&Position> {
        match self {
            Refusal::Behind(p) | Refusal::Diverged(p) => Some(p),
            Refusal::CounterBehind { anchored, .. } | Refusal::CounterAhead { anchored, .. } => {
                Some(anchored)
            }
            Refusal::Missing
            | Refusal::Unauthentic
            | Refusal::CounterUnavailable { .. }
            | Refusal::CounterInUse { .. } => None,
        }
    }

    /// The counter's side of the story, for the audit record.
    pub(super) fn counter_detail(&self) -> serde_json::Value {
        match self {
            Refusal::CounterBehind {
                counter, tpm_value, ..
            }
            | Refusal::CounterAhead {
                counter, tpm_value, ..
            } => json!({ "anchor": counter, "tpm_value": tpm_value }),
            Refusal::CounterUnavailable { index, error } => {
                json!({ "nv_index": format!("{index:#010x}"), "error": error.to_string() })
            }
            Refusal::CounterInUse { index, tpm_value } => {
                json!({ "nv_index": format!("{index:#010x}"), "tpm_value": tpm_value })
            }
            _ => serde_json::Value::Null,
        }
    }

    pub(super) fn error(self, here: &Position, path: PathBuf) -> StoreError {
        match self {
            Refusal::Behind(anchored) => StoreError::RolledBack {
                db_seq: here.seq,
                anchor_seq: anchored.seq,
                db_audit_record: here.audit_record,
                anchor_audit_record: anchored.audit_record,
            },
            Refusal::Diverged(anchored) => StoreError::Diverged {
                record: anchored.audit_record,
            },
            Refusal::Missing => StoreError::AnchorMissing {
                path,
                db_seq: here.seq,
                db_audit_record: here.audit_record,
            },
            Refusal::Unauthentic => StoreError::AnchorUnauthentic { path },
            Refusal::CounterBehind {
                counter, tpm_value, ..
            } => StoreError::CounterBehind {
                nv_index: counter.nv_index,
                anchor_value: counter.value,
                tpm_value,
            },
            Refusal::CounterAhead {
                counter, tpm_value, ..
            } => StoreError::CounterMismatch {
                nv_index: counter.nv_index,
                anchor_value: counter.value,
                tpm_value,
            },
            Refusal::CounterUnavailable { index, error } => StoreError::CounterUnavailable {
                nv_index: format!("{index:#010x}"),
                source: error,
            },
            Refusal::CounterInUse { index, tpm_value } => StoreError::CounterInUse {
                nv_index: format!("{index:#010x}"),
                tpm_value,
            },
        }
    }
}

/// Whether the database at `here` can be served given the valid anchor at
/// `anchored`.
pub(in crate::store) fn compare(
    conn: &Connection,
    here: &Position,
    anchored: &Position,
) -> Result<Option<Refusal>, StoreError> {
    if here.behind(anchored) {
        return Ok(Some(Refusal::Behind(anchored.clone())));
    }
    if anchored.audit_record > 0 {
        let hash: Option<String> = conn
            .query_row(
                "SELECT hash FROM audit WHERE id = ?1",
                [anchored.audit_record],
                |r| r.get(0),
            )
            .optional()?;
        // Missing is as bad as different: retention never prunes the
        // newest records, and the anchor names one of those.
        if hash.as_deref() != Some(anchored.audit_head.as_str()) {
            return Ok(Some(Refusal::Diverged(anchored.clone())));
        }
    }
    Ok(None)
}
