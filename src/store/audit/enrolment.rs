//! What a subject's enrolment left in the store, according to the audit
//! log: the rows of its newest enrolment must still be there unless a
//! revocation, a re-enrolment or a key re-initialisation removed them. A
//! subject or template row deleted behind edgeid's back is tampering, not
//! "not enrolled" or "enrolled with another model".
//!
//! The record relied on is checked on its own: its hash, and its MAC when
//! it is under this store's key. An older record (unkeyed, or under a key
//! replaced since) is checked by its hash only; forging one means
//! rewriting the chain after it, which `audit verify` names and the
//! rollback anchor refuses at the next unlock. A subject whose newest
//! enrolment record was pruned is checked against what the retention
//! checkpoint (signed by the device key) carried forward from it.

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::super::{Store, StoreError};
use super::checkpoint::{self, Found};
use super::mac::Installed;
use super::{Row, SELECT_ROW};

/// How a subject's enrolment was tampered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tampering", rename_all = "snake_case")]
pub enum EnrolmentTampering {
    /// Rows the enrolment audited in `record` wrote are gone, and nothing
    /// audited since removed them.
    Deleted {
        record: i64,
        /// The subject row itself is gone.
        subject_row_deleted: bool,
        /// Template rows of that enrolment that are gone.
        template_rows_deleted: Vec<i64>,
    },
    /// The audit record that says what the subject holds failed its check.
    RecordAltered { record: i64 },
}

/// The newest record that settles what `subject` holds: its enrolment or
/// revocation, or a key (re-)initialisation, which removes every subject.
const SETTLING: &str = "SELECT MAX(id) FROM ( \
       SELECT MAX(id) AS id FROM audit WHERE subject = ?1 AND event IN ('enroll', 'revoke') \
       UNION ALL SELECT MAX(id) FROM audit WHERE event = 'keys_init' \
       UNION ALL SELECT MAX(id) FROM audit WHERE event = 'anchor_reset' \
         AND json_extract(detail, '$.cause') = 'keys_init')";

/// Whether rows of `subject`'s enrolment were deleted outside `revoke`
/// (or the record saying what they are was altered); `None` when the
/// store holds what the audit log says it should.
pub fn enrolment_tampering(
    store: &Store,
    subject: &str,
) -> Result<Option<EnrolmentTampering>, StoreError> {
    let conn = store.conn();
    let settled: Option<i64> = conn.query_row(SETTLING, [subject], |r| r.get(0))?;
    let row = match settled {
        Some(id) => conn
            .query_row(&format!("{SELECT_ROW} WHERE id = ?1"), [id], Row::read)
            .optional()?,
        None => None,
    };
    let Some(row) = row else {
        // Nothing kept settles it: what the pruned records said, if anything.
        return match checkpoint::find(conn)? {
            Found::None => Ok(None),
            Found::Forged => Ok(Some(EnrolmentTampering::RecordAltered {
                record: conn.query_row("SELECT COALESCE(MIN(id), 1) - 1 FROM audit", [], |r| {
                    r.get(0)
                })?,
            })),
            Found::Valid(c) => match c.enrolments.get(subject) {
                Some(e) => rows_gone(conn, subject, e.record, e.template_rows.iter().copied()),
                None => Ok(None),
            },
        };
    };
    let id = row.id;
    let link = row.stored_link();
    let authentic = link.computed_hash() == link.hash
        && match Installed::find(conn)? {
            Some(key) if link.key_id == Some(key.key_id.as_str()) => {
                key.record_ok(link.hash, link.mac)?
            }
            _ => true,
        };
    if !authentic {
        return Ok(Some(EnrolmentTampering::RecordAltered { record: id }));
    }
    if row.event != "enroll" {
        return Ok(None);
    }
    let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap_or_default();
    let enrolled = detail["template_rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(serde_json::Value::as_i64)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    rows_gone(conn, subject, id, enrolled)
}

/// Whether the subject row or any of the `enrolled` template rows that the
/// enrolment in `record` wrote are gone.
fn rows_gone(
    conn: &rusqlite::Connection,
    subject: &str,
    record: i64,
    enrolled: impl IntoIterator<Item = i64>,
) -> Result<Option<EnrolmentTampering>, StoreError> {
    let enrolled: BTreeSet<i64> = enrolled.into_iter().collect();
    let subject_row: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM subjects WHERE id = ?1)",
        [subject],
        |r| r.get(0),
    )?;
    let present: BTreeSet<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM templates WHERE subject = ?1")?;
        stmt.query_map([subject], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let gone: Vec<i64> = enrolled.difference(&present).copied().collect();
    Ok(
        (!subject_row || !gone.is_empty()).then_some(EnrolmentTampering::Deleted {
            record,
            subject_row_deleted: !subject_row,
            template_rows_deleted: gone,
        }),
    )
}
