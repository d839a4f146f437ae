//! Subjects and their sealed templates.
//!
//! Enrolment writes the subject and all its templates in one transaction, so
//! after a crash a subject is either fully enrolled or absent. Each blob is
//! sealed with its final row id in the associated data: the row is inserted
//! first (AUTOINCREMENT gives the id), then its blob written, inside the same
//! transaction.
//!
//! A template is bound to the model that made it by both the model's id and
//! the sha256 of its file (in the sealed blob's associated data): a model
//! file swapped under the same id does not compare against templates it did
//! not make. Templates sealed before the sha256 was bound (associated data
//! layout 1) still open; their sha256 column is compared but not
//! authenticated until `keys rotate --dek` re-seals them.

use std::collections::BTreeMap;

use rusqlite::params;
use serde::Serialize;
use zeroize::Zeroizing;

use super::seal::{DataKey, f32_to_bytes, legacy_template_aad, template_aad};
use super::{Store, StoreError, unix_now, validate_subject};

/// The model a template is made by, or a gallery is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLabel<'a> {
    pub id: &'a str,
    /// The sha256 of the model file (hex).
    pub sha256: &'a str,
}

/// One template to store.
pub struct NewTemplate<'a> {
    pub modality: &'a str,
    pub model_id: &'a str,
    pub model_sha256: &'a str,
    pub vector: &'a [f32],
    /// Quality figures of the sample (JSON), kept for audit and re-checks.
    pub quality: serde_json::Value,
}

impl NewTemplate<'_> {
    fn model(&self) -> ModelLabel<'_> {
        ModelLabel {
            id: self.model_id,
            sha256: self.model_sha256,
        }
    }
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
    /// Whether the sealed blob binds `model_sha256` (false for templates
    /// sealed before it was bound: the column is then unauthenticated).
    pub model_bound: bool,
}

impl TemplateMeta {
    /// Made by `model`: same id and same model file.
    pub fn made_by(&self, model: ModelLabel<'_>) -> bool {
        self.model_id == model.id && self.model_sha256 == model.sha256
    }

    /// This template's model as named to someone using `loaded`: its id,
    /// or `id@sha256:<first 12>` when only the model file differs.
    pub fn model_name(&self, loaded: ModelLabel<'_>) -> String {
        if self.model_id == loaded.id {
            let short = self.model_sha256.get(..12).unwrap_or(&self.model_sha256);
            format!("{}@sha256:{short}", self.model_id)
        } else {
            self.model_id.clone()
        }
    }
}

/// Seals `plain` for template row `row`.
pub(crate) fn seal_template(
    dek: &DataKey,
    row: i64,
    subject: &str,
    modality: &str,
    model: ModelLabel<'_>,
    plain: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let aad = template_aad(row, subject, modality, model.id, model.sha256);
    Ok(dek.seal(&aad, plain).map_err(super::keys::KeyError::from)?)
}

/// Opens a template blob: with the current associated data, else the
/// legacy one (`(plaintext, model_bound)`); `None` when neither opens it.
pub(crate) fn open_template(
    dek: &DataKey,
    row: i64,
    subject: &str,
    modality: &str,
    model: ModelLabel<'_>,
    blob: &[u8],
) -> Option<(Zeroizing<Vec<u8>>, bool)> {
    let bound = template_aad(row, subject, modality, model.id, model.sha256);
    if let Ok(plain) = dek.open(&bound, blob) {
        return Some((plain, true));
    }
    let legacy = legacy_template_aad(row, subject, modality, model.id);
    dek.open(&legacy, blob).ok().map(|plain| (plain, false))
}

/// Inserts one template row of `subject`, then seals its blob with the row
/// id the insert gave (inside the caller's transaction); returns the row.
fn add_template(
    conn: &rusqlite::Connection,
    dek: &DataKey,
    subject: &str,
    t: &NewTemplate<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    let row: i64 = conn
        .prepare_cached(
            "INSERT INTO templates (subject, modality, model_id, model_sha256, dim, quality, sealed, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, x'', ?7) RETURNING id",
        )?
        .query_row(
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
    let sealed = seal_template(
        dek,
        row,
        subject,
        t.modality,
        t.model(),
        &f32_to_bytes(t.vector),
    )?;
    conn.prepare_cached("UPDATE templates SET sealed = ?1 WHERE id = ?2")?
        .execute(params![sealed, row])?;
    Ok(row)
}

/// Enrols `subject`, which must be new unless `replace`: then its
/// templates of the modality enrolled go in the same transaction (those of
/// its other modalities stay, see [`enroll_modality`]).
pub fn enroll(
    store: &mut Store,
    dek: &DataKey,
    subject: &str,
    templates: &[NewTemplate<'_>],
    replace: bool,
    audit_event: Option<&super::audit::Event<'_>>,
) -> Result<Vec<i64>, StoreError> {
    let modality = templates.first().map_or("face", |t| t.modality);
    let held = if replace {
        Held::Replace
    } else {
        Held::RefuseSubject
    };
    enroll_in(store, dek, subject, modality, templates, held, audit_event)
}

/// What an enrolment does with what the subject already holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// The subject must be new.
    RefuseSubject,
    /// The subject must hold no templates of the modality.
    RefuseModality,
    /// The modality's templates are replaced.
    Replace,
}

/// Enrols `subject`'s templates of one modality (`templates` must all be
/// of it), keeping those of its other modalities: a voice added to a face
/// enrolment, or re-enrolled with `replace`. The subject is created when
/// new. The audit record lists every template row the subject holds
/// afterwards, so deleting any of them later is seen as tampering.
pub fn enroll_modality(
    store: &mut Store,
    dek: &DataKey,
    subject: &str,
    modality: &str,
    templates: &[NewTemplate<'_>],
    replace: bool,
    audit_event: Option<&super::audit::Event<'_>>,
) -> Result<Vec<i64>, StoreError> {
    let held = if replace {
        Held::Replace
    } else {
        Held::RefuseModality
    };
    enroll_in(store, dek, subject, modality, templates, held, audit_event)
}

fn enroll_in(
    store: &mut Store,
    dek: &DataKey,
    subject: &str,
    modality: &str,
    templates: &[NewTemplate<'_>],
    held: Held,
    audit_event: Option<&super::audit::Event<'_>>,
) -> Result<Vec<i64>, StoreError> {
    validate_subject(subject)?;
    debug_assert!(templates.iter().all(|t| t.modality == modality));
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = unix_now();
    if held == Held::RefuseSubject {
        let exists: i64 = tx.query_row(
            "SELECT count(*) FROM subjects WHERE id = ?1",
            [subject],
            |r| r.get(0),
        )?;
        if exists > 0 {
            return Err(StoreError::SubjectExists(subject.to_owned()));
        }
    }
    tx.execute(
        "INSERT OR IGNORE INTO subjects (id, created_at) VALUES (?1, ?2)",
        params![subject, now],
    )?;
    let held_rows: i64 = tx.query_row(
        "SELECT count(*) FROM templates WHERE subject = ?1 AND modality = ?2",
        params![subject, modality],
        |r| r.get(0),
    )?;
    if held_rows > 0 {
        if held != Held::Replace {
            return Err(StoreError::ModalityExists {
                subject: subject.to_owned(),
                modality: modality.to_owned(),
            });
        }
        tx.execute(
            "DELETE FROM templates WHERE subject = ?1 AND modality = ?2",
            params![subject, modality],
        )?;
    }
    let rows = templates
        .iter()
        .map(|t| add_template(&tx, dek, subject, t, now))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(event) = audit_event {
        let all: Vec<i64> = tx
            .prepare("SELECT id FROM templates WHERE subject = ?1 ORDER BY id")?
            .query_map([subject], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let event = event
            .clone()
            .with_detail("modality_rows", serde_json::json!(rows))
            .with_detail("template_rows", serde_json::json!(all));
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

/// The modalities `subject` holds templates of (empty: not enrolled).
pub fn modalities_of(
    store: &Store,
    subject: &str,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    let mut stmt = store
        .conn()
        .prepare("SELECT DISTINCT modality FROM templates WHERE subject = ?1")?;
    let held = stmt
        .query_map([subject], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(held)
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
    /// Failed to open: moved, edited, relabelled (subject, model id or
    /// sha256) or sealed under another key.
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
    let mut floats: Zeroizing<Vec<f32>> = Zeroizing::new(Vec::new());
    let mut legacy = 0usize;
    while let Some(r) = rows.next()? {
        let mut meta = TemplateMeta {
            row: r.get(0)?,
            subject: r.get(1)?,
            modality: r.get(2)?,
            model_id: r.get(3)?,
            model_sha256: r.get(4)?,
            dim: r.get::<_, i64>(5)? as usize,
            model_bound: false,
        };
        let blob = r.get_ref(6)?.as_blob().map_err(|e| StoreError::Malformed {
            what: format!("template row {}", meta.row),
            error: Box::new(e),
        })?;
        let model = ModelLabel {
            id: &meta.model_id,
            sha256: &meta.model_sha256,
        };
        match open_template(dek, meta.row, &meta.subject, &meta.modality, model, blob) {
            Some((plain, bound)) if plain.len() == meta.dim * 4 => {
                meta.model_bound = bound;
                legacy += usize::from(!bound);
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
    if legacy > 0 {
        tracing::warn!(
            templates = legacy,
            "templates sealed before their model's sha256 was bound to them: they still open, \
             but re-seal them with `edgeid keys rotate --dek --new-kek <the KEK file>`"
        );
    }
    Ok(())
}

/// How many templates of `modality` by `model` (of one subject when
/// given) there are, and their dimension, so a gallery can be sized once.
pub fn shape(
    store: &Store,
    modality: &str,
    model: ModelLabel<'_>,
    subject: Option<&str>,
) -> Result<(usize, usize), StoreError> {
    let (n, dim): (i64, Option<i64>) = store.conn().query_row(
        "SELECT count(*), MAX(dim) FROM templates WHERE modality = ?1 AND model_id = ?2 \
         AND model_sha256 = ?3 AND (?4 IS NULL OR subject = ?4)",
        params![modality, model.id, model.sha256, subject],
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
        for (subject, templates) in subjects {
            validate_subject(subject)?;
            add_subject.execute(params![subject, now])?;
            for t in templates {
                add_template(&tx, dek, subject, t, now)?;
                count += 1;
            }
        }
    }
    tx.commit()?;
    Ok(count)
}
