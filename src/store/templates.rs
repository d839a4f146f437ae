//! Subjects and their sealed templates.
//!
//! Enrolment writes the subject and all its templates in one transaction, so
//! after a crash a subject is either fully enrolled or absent. Each blob is
//! sealed with its final row id in the associated data: the row is inserted
//! first (AUTOINCREMENT gives the id), then its blob written, inside the same
//! transaction.

use std::collections::BTreeMap;

use rusqlite::params;
use serde::Serialize;

use super::seal::{DataKey, f32_to_bytes, template_aad};
use super::{Store, StoreError, unix_now, validate_subject};

/// One template to store.
pub struct NewTemplate<'a> {
    pub modality: &'a str,
    pub model_id: &'a str,
    pub model_sha256: &'a str,
    pub vector: &'a [f32],
    /// Quality figures of the sample (JSON), kept for audit and re-checks.
    pub quality: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectSummary {
    pub subject: String,
    pub created_at: i64,
    pub templates: usize,
    /// Model id → template count.
    pub models: BTreeMap<String, usize>,
}

/// A template's metadata, without its blob.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateMeta {
    pub row: i64,
    pub subject: String,
    pub modality: String,
    pub model_id: String,
    pub model_sha256: String,
    pub dim: usize,
}

/// Enrols `subject`; with `replace`, its old templates go in the same transaction.
pub fn enroll(
    store: &mut Store,
    dek: &DataKey,
    subject: &str,
    templates: &[NewTemplate<'_>],
    replace: bool,
    audit_event: Option<&super::audit::Event<'_>>,
) -> Result<Vec<i64>, StoreError> {
    validate_subject(subject)?;
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let exists: i64 = tx.query_row(
        "SELECT count(*) FROM subjects WHERE id = ?1",
        [subject],
        |r| r.get(0),
    )?;
    if exists > 0 {
        if !replace {
            return Err(StoreError::SubjectExists(subject.to_owned()));
        }
        tx.execute("DELETE FROM subjects WHERE id = ?1", [subject])?;
    }
    let now = unix_now();
    tx.execute(
        "INSERT INTO subjects (id, created_at) VALUES (?1, ?2)",
        params![subject, now],
    )?;
    let mut rows = Vec::with_capacity(templates.len());
    for t in templates {
        let row: i64 = tx.query_row(
            "INSERT INTO templates (subject, modality, model_id, model_sha256, dim, quality, sealed, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, x'', ?7) RETURNING id",
            params![subject, t.modality, t.model_id, t.model_sha256, t.vector.len() as i64, t.quality.to_string(), now],
            |r| r.get(0),
        )?;
        let plain = f32_to_bytes(t.vector);
        let sealed = dek
            .seal(&template_aad(row, subject, t.modality, t.model_id), &plain)
            .map_err(super::keys::KeyError::from)?;
        tx.execute(
            "UPDATE templates SET sealed = ?1 WHERE id = ?2",
            params![sealed, row],
        )?;
        rows.push(row);
    }
    // The record commits with the enrolment, so neither exists without the other.
    if let Some(event) = audit_event {
        let event = event
            .clone()
            .with_detail("template_rows", serde_json::json!(rows));
        super::audit::append_in(&tx, &event)?;
    }
    tx.commit()?;
    Ok(rows)
}

/// Deletes the subject and all its templates in one transaction; returns
/// how many templates went.
pub fn revoke(
    store: &mut Store,
    subject: &str,
    audit_event: Option<&super::audit::Event<'_>>,
) -> Result<usize, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n: i64 = tx.query_row(
        "SELECT count(*) FROM templates WHERE subject = ?1",
        [subject],
        |r| r.get(0),
    )?;
    let deleted = tx.execute("DELETE FROM subjects WHERE id = ?1", [subject])?;
    if deleted == 0 {
        return Err(StoreError::UnknownSubject(subject.to_owned()));
    }
    // The lockout record goes too: a revoked subject has no attempts left to count.
    tx.execute("DELETE FROM lockout_failures WHERE subject = ?1", [subject])?;
    if let Some(event) = audit_event {
        let event = event
            .clone()
            .with_detail("templates_deleted", serde_json::json!(n));
        super::audit::append_in(&tx, &event)?;
    }
    tx.commit()?;
    Ok(n as usize)
}

pub fn subject_exists(store: &Store, subject: &str) -> Result<bool, StoreError> {
    let n: i64 = store.conn().query_row(
        "SELECT count(*) FROM subjects WHERE id = ?1",
        [subject],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

pub fn list_subjects(store: &Store) -> Result<Vec<SubjectSummary>, StoreError> {
    let mut out: BTreeMap<String, SubjectSummary> = BTreeMap::new();
    let mut stmt = store
        .conn()
        .prepare("SELECT id, created_at FROM subjects ORDER BY id")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (subject, created_at) = row?;
        out.insert(
            subject.clone(),
            SubjectSummary {
                subject,
                created_at,
                templates: 0,
                models: BTreeMap::new(),
            },
        );
    }
    let mut stmt = store
        .conn()
        .prepare("SELECT subject, model_id, count(*) FROM templates GROUP BY subject, model_id")?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (subject, model, n) = row?;
        if let Some(s) = out.get_mut(&subject) {
            s.templates += n as usize;
            s.models.insert(model, n as usize);
        }
    }
    Ok(out.into_values().collect())
}

/// What happened to each template while opening.
pub enum Opened<'a> {
    /// Authenticated plaintext (zeroise your copy).
    Ok(&'a TemplateMeta, &'a [f32]),
    /// Failed to open: moved, edited or sealed under another key.
    Tampered(&'a TemplateMeta),
}

/// Opens every template of `modality` (of one subject when given) and hands
/// each to `visit`, with the plaintext only borrowed and zeroised after.
pub fn open_each(
    store: &Store,
    dek: &DataKey,
    modality: &str,
    subject: Option<&str>,
    mut visit: impl FnMut(Opened<'_>),
) -> Result<(), StoreError> {
    let mut stmt = store.conn().prepare(
        "SELECT id, subject, modality, model_id, model_sha256, dim, sealed FROM templates \
         WHERE modality = ?1 AND (?2 IS NULL OR subject = ?2) ORDER BY subject, id",
    )?;
    let mut rows = stmt.query(params![modality, subject])?;
    let mut floats: zeroize::Zeroizing<Vec<f32>> = zeroize::Zeroizing::new(Vec::new());
    while let Some(r) = rows.next()? {
        let meta = TemplateMeta {
            row: r.get(0)?,
            subject: r.get(1)?,
            modality: r.get(2)?,
            model_id: r.get(3)?,
            model_sha256: r.get(4)?,
            dim: r.get::<_, i64>(5)? as usize,
        };
        let blob = r.get_ref(6)?.as_blob().map_err(|e| StoreError::Malformed {
            what: format!("template row {}", meta.row),
            error: Box::new(e),
        })?;
        let aad = template_aad(meta.row, &meta.subject, &meta.modality, &meta.model_id);
        match dek.open(&aad, blob) {
            Ok(plain) if plain.len() == meta.dim * 4 => {
                floats.clear();
                floats.extend(
                    plain
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                visit(Opened::Ok(&meta, &floats));
            }
            _ => visit(Opened::Tampered(&meta)),
        }
    }
    Ok(())
}

/// How many templates of `modality` by `model_id` (of one subject when
/// given) there are, and their dimension, so a gallery can be sized once.
pub fn shape(
    store: &Store,
    modality: &str,
    model_id: &str,
    subject: Option<&str>,
) -> Result<(usize, usize), StoreError> {
    let (n, dim): (i64, Option<i64>) = store.conn().query_row(
        "SELECT count(*), MAX(dim) FROM templates WHERE modality = ?1 AND model_id = ?2 AND (?3 IS NULL OR subject = ?3)",
        params![modality, model_id, subject],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((n as usize, dim.unwrap_or(0) as usize))
}

/// Enrols many subjects in one transaction (bulk import, benchmarks).
pub fn enroll_batch(
    store: &mut Store,
    dek: &DataKey,
    subjects: &[(&str, Vec<NewTemplate<'_>>)],
) -> Result<usize, StoreError> {
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = unix_now();
    let mut count = 0;
    {
        let mut add_subject =
            tx.prepare("INSERT INTO subjects (id, created_at) VALUES (?1, ?2)")?;
        let mut add_row = tx.prepare(
            "INSERT INTO templates (subject, modality, model_id, model_sha256, dim, quality, sealed, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, x'', ?7) RETURNING id",
        )?;
        let mut set_blob = tx.prepare("UPDATE templates SET sealed = ?1 WHERE id = ?2")?;
        for (subject, templates) in subjects {
            validate_subject(subject)?;
            add_subject.execute(params![subject, now])?;
            for t in templates {
                let row: i64 = add_row.query_row(
                    params![
                        subject,
                        t.modality,
                        t.model_id,
                        t.model_sha256,
                        t.vector.len() as i64,
                        t.quality.to_string(),
                        now
                    ],
                    |r| r.get(0),
                )?;
                let plain = f32_to_bytes(t.vector);
                let sealed = dek
                    .seal(&template_aad(row, subject, t.modality, t.model_id), &plain)
                    .map_err(super::keys::KeyError::from)?;
                set_blob.execute(params![sealed, row])?;
                count += 1;
            }
        }
    }
    tx.commit()?;
    Ok(count)
}
