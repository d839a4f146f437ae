//! Issuing a verdict for an outcome: reserve the next sequence number, sign,
//! and append the audit record with the scores the verdict leaves out. The
//! number and the record commit together (one fsync) before the verdict is
//! returned: after a crash there is neither a repeated number nor a number
//! that the audit log cannot explain.

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::evidence::Provenance;
use super::verify::Outcome;
use crate::store::audit::{self, Event};
use crate::store::{KeyRing, Store, StoreError, device, unix_now};
use crate::verdict::claims::amr_of;
use crate::verdict::jws::{self, SignError};
use crate::verdict::{Claims, Decision, Mode};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("random number generator failed")]
    Random,
}

/// What an issued verdict is, for printing.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub verdict: String,
    pub claims: Claims,
    pub audit_record: i64,
}

pub struct IssueRequest<'a> {
    pub outcome: &'a Outcome,
    pub nonce: Option<&'a str>,
    pub modalities: &'a [&'a str],
    /// The `src` and `liveness` claims.
    pub provenance: Provenance,
    pub lifetime_secs: u64,
    /// Extra audit detail (models, quality, timings, tampered rows, ...).
    pub detail: serde_json::Value,
}

pub fn random_jti() -> Result<String, IssueError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| IssueError::Random)?;
    Ok(hex::encode(bytes))
}

pub fn issue(
    store: &mut Store,
    keys: &KeyRing,
    req: IssueRequest<'_>,
) -> Result<Issued, IssueError> {
    let outcome = req.outcome;
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let seq = device::next_seq_in(&tx)?;
    let iat = unix_now();
    let sub = match outcome.decision {
        Decision::Accept => outcome.subject.clone(),
        // 1:1: the claim is echoed on reject too; 1:N rejects name no one.
        Decision::Reject if outcome.mode == Mode::Verify => outcome.subject.clone(),
        Decision::Reject => None,
    };
    let claims = Claims {
        iss: keys.device_id.clone(),
        iat,
        exp: iat + req.lifetime_secs as i64,
        jti: random_jti()?,
        seq,
        nonce: req.nonce.map(str::to_owned),
        decision: outcome.decision,
        sub,
        mode: outcome.mode,
        reason: outcome.reason,
        modalities: req.modalities.iter().map(|m| (*m).to_owned()).collect(),
        src: req.provenance.capture,
        liveness: req.provenance.liveness,
        amr: req
            .modalities
            .iter()
            .filter_map(|m| amr_of(m))
            .map(str::to_owned)
            .collect(),
    };
    let verdict = jws::sign(&claims, &keys.signer, &keys.kid)?;
    let mut detail = serde_json::json!({
        "seq": seq,
        "jti": claims.jti,
        "mode": outcome.mode,
        "modalities": req.modalities,
        "score": outcome.score,
        "threshold": outcome.threshold,
        "frame": outcome.frame,
        "candidates": outcome.candidates,
    });
    if let (Some(map), serde_json::Value::Object(extra)) = (detail.as_object_mut(), req.detail) {
        map.extend(extra);
    }
    let audit_record = audit::append_in(
        &tx,
        &Event::Verdict {
            mode: outcome.mode,
            subject: outcome.subject.as_deref(),
            decision: outcome.decision,
            reason: outcome.reason,
            detail,
        },
    )?;
    tx.commit()?;
    Ok(Issued {
        verdict,
        claims,
        audit_record,
    })
}
