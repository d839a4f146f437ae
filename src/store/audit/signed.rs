//! The signed export: every record, the chain head, the device id, the
//! signing key's id and the export time, in a compact JWS (EdDSA with the
//! device key, `typ` `edgeid-audit+jwt`), which anyone holding the device's
//! public JWK can check offline, without the store or the KEK.
//!
//! Checking an export ([`verify_export`]): the header (`alg`, `typ`) and the
//! key id, the signature, then the chain inside (every record's hash,
//! the links from record 1, or from the retention checkpoint the export
//! carries when the oldest records were pruned, the key epochs, the head
//! and the record count),
//! then what the device itself found when it exported. When the signature
//! fails, the chain is still walked to name the first record that was
//! altered or is missing.

use serde::{Deserialize, Serialize};

use super::super::keys::KeyRing;
use super::super::{Store, StoreError, rfc3339_utc, unix_now};
use super::chain::Walk;
use super::checkpoint::{self, Checkpoint};
use super::{AuditError, Break, ChainReport, GENESIS, Record, export, verify};
use crate::verdict::jws::{self, VerdictError};

/// The `typ` of a signed audit export.
pub const EXPORT_TYP: &str = "edgeid-audit+jwt";

/// The signed payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The device id (as a verdict's `iss`).
    pub iss: String,
    /// The signing key's id (also in the header).
    pub kid: String,
    /// When the export was made, Unix seconds.
    pub iat: i64,
    /// How many records follow; they are numbered without gaps from 1, or
    /// from the record after the checkpoint's.
    pub count: usize,
    pub head: Head,
    /// The device's own check of its chain, with MACs, when it exported.
    pub device_check: ChainReport,
    pub records: Vec<Record>,
    /// The retention checkpoint (a JWS signed by the same key) the records
    /// follow, when the oldest were pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// The newest record: its id (0 when there is none) and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub record: i64,
    pub hash: String,
}

/// A signed export and what it holds.
#[derive(Debug, Clone)]
pub struct SignedExport {
    pub token: String,
    pub count: usize,
    pub head: Head,
    pub device_check: ChainReport,
}

/// Signs every record of an unlocked store. The chain is read and checked
/// in one read transaction, so the records are the ones checked.
pub fn export_signed(store: &Store, ring: &KeyRing) -> Result<SignedExport, StoreError> {
    let snapshot = store.conn().unchecked_transaction()?;
    let device_check = verify(store)?;
    let records = export(store)?;
    let checkpoint = checkpoint::stored_token(store.conn())?;
    drop(snapshot);
    let head = Head {
        record: records.last().map_or(0, |r| r.id),
        hash: records
            .last()
            .map_or_else(|| GENESIS.to_owned(), |r| r.hash.clone()),
    };
    let document = Document {
        iss: ring.device_id.clone(),
        kid: ring.kid.clone(),
        iat: unix_now(),
        count: records.len(),
        head: head.clone(),
        device_check: device_check.clone(),
        records,
        checkpoint,
    };
    let token =
        jws::sign_as(EXPORT_TYP, &document, &ring.signer, &ring.kid).map_err(AuditError::from)?;
    Ok(SignedExport {
        token,
        count: document.count,
        head,
        device_check,
    })
}

/// A signed export that checked out.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub device_id: String,
    pub kid: String,
    pub exported_at: String,
    pub records: usize,
    pub head: Head,
    /// What the device found when it exported (MACs checked, records from
    /// before keyed audit or under earlier keys).
    pub device_check: ChainReport,
}

/// Why an export does not check out.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("not a signed audit export from this key: {0}")]
    Token(#[source] VerdictError),
    #[error(
        "the signature does not verify: the document was altered after it was signed, or signed by \
         another key{}",
        .altered.as_ref().map_or_else(String::new, |b| format!(
            "; record {} is where it was altered: {b}", b.first_broken_record()
        ))
    )]
    Signature { altered: Option<Break> },
    #[error("the signed document is not an audit export: {0}")]
    Payload(#[source] serde_json::Error),
    #[error("the export's chain is broken at record {}: {broken}", broken.first_broken_record())]
    Chain { broken: Break },
    #[error(
        "the device found its chain broken at record {} when it exported: {broken}",
        broken.first_broken_record()
    )]
    BrokenOnDevice { broken: Break },
}

impl ExportError {
    /// The first record found bad, when one is named.
    pub fn first_bad_record(&self) -> Option<i64> {
        match self {
            Self::Signature { altered } => altered.as_ref().map(Break::first_broken_record),
            Self::Chain { broken } | Self::BrokenOnDevice { broken } => {
                Some(broken.first_broken_record())
            }
            Self::Token(_) | Self::Payload(_) => None,
        }
    }
}

/// The first problem in the document's chain: its checkpoint's signature
/// (under `key`), a record's hash or link, its key epoch, the head, or a
/// count that does not match the records.
fn chain_problem(document: &Document, key: (&[u8; 32], &str)) -> Result<Option<Break>, StoreError> {
    let first = document.records.first().map_or(1, |r| r.id);
    let mut walk = match &document.checkpoint {
        None => Walk::new(None),
        Some(token) => match Checkpoint::open(token, key.0, key.1) {
            Ok(c) => Walk::resume(None, &c),
            Err(_) => Walk::refused(None, Break::CheckpointForged { record: first }),
        },
    };
    for record in &document.records {
        let detail = record.detail.to_string();
        walk.step(&record.link(&detail))?;
    }
    let newest_key = walk.newest_key().map(str::to_owned);
    let head = (document.head.record, document.head.hash.as_str());
    if head.0 == 0 && document.records.is_empty() {
        if head.1 != GENESIS {
            walk.broken.get_or_insert(Break::HeadMismatch {
                head_record: 0,
                last_record: None,
            });
        }
    } else {
        walk.finish(Some((head.0, head.1, newest_key.as_deref(), None)))?;
    }
    let last_record = walk.head().0;
    if walk.broken.is_none() && document.count != document.records.len() {
        walk.broken = Some(Break::HeadMismatch {
            head_record: i64::try_from(document.count).unwrap_or(i64::MAX),
            last_record,
        });
    }
    Ok(walk.broken)
}

/// Checks a signed export against the device's public key and its id.
pub fn verify_export(
    token: &str,
    public_key: &[u8; 32],
    kid: &str,
) -> Result<ExportReport, ExportError> {
    let payload = match jws::verify_as(token, public_key, kid, EXPORT_TYP) {
        Ok((_, payload)) => payload,
        Err(VerdictError::BadSignature) => {
            let altered = jws::payload_unverified(token)
                .ok()
                .and_then(|p| serde_json::from_slice::<Document>(&p).ok())
                .and_then(|d| chain_problem(&d, (public_key, kid)).ok().flatten());
            return Err(ExportError::Signature { altered });
        }
        Err(e) => return Err(ExportError::Token(e)),
    };
    let document: Document = serde_json::from_slice(&payload).map_err(ExportError::Payload)?;
    // Only a database error could fail the walk, and there is no database.
    if let Some(b) = chain_problem(&document, (public_key, kid)).unwrap_or(None) {
        return Err(ExportError::Chain { broken: b });
    }
    if let Some(b) = document.device_check.broken.clone() {
        return Err(ExportError::BrokenOnDevice { broken: b });
    }
    Ok(ExportReport {
        device_id: document.iss,
        kid: document.kid,
        exported_at: rfc3339_utc(document.iat.saturating_mul(1000)),
        records: document.count,
        head: document.head,
        device_check: document.device_check,
    })
}
