//! The gallery: a subject's (or everyone's) templates opened once into one
//! contiguous matrix, scored 1:1 or 1:N by cosine (dot product of unit
//! vectors).
//!
//! The matrix is preallocated to its final size (no reallocation leaves a
//! stray plaintext copy on the heap), `mlock`ed where the process may, and
//! zeroised on drop. Templates of another embedder are never loaded: they
//! are reported so the caller can say who must re-enrol.
//!
//! 1:N ([`Gallery::top_subjects`]) first scores every row on a quantised
//! copy (`quant`: one byte per component, a quarter of the memory traffic),
//! then rescores in f32 only the subjects whose provable score interval
//! reaches the k-th best lower bound: the result is exactly the f32 one.
//! The quantised copy is template data too, locked and zeroised the same
//! way (`secret`).

pub mod fused;
mod quant;
mod secret;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use zeroize::Zeroize;

use quant::Quantised;
use secret::Secret;

use crate::store::audit::{self, Event};
use crate::store::templates::{self, ModelLabel, Opened};
use crate::store::{DataKey, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "template row {row} has {got} dimensions, the gallery {expected}: the store is inconsistent"
    )]
    Dimension {
        row: i64,
        expected: usize,
        got: usize,
    },
    #[error(
        "subjects {subjects:?} were enrolled with another face model than the loaded {model}: \
         re-enrol them (`edgeid enroll --replace`)"
    )]
    ModelMismatch {
        model: String,
        subjects: Vec<String>,
    },
}

/// A template that failed to open.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TamperedRow {
    pub row: i64,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
struct SubjectRange {
    id: String,
    start: usize,
    end: usize,
}

/// Plaintext templates in memory.
pub struct Gallery {
    model_id: String,
    dim: usize,
    matrix: Secret<f32>,
    /// The first-pass copy of `matrix`; `None` when its values or dimension
    /// need the exact path.
    quant: Option<Quantised>,
    rows: Vec<i64>,
    subjects: Vec<SubjectRange>,
}

/// A gallery and what could not go into it.
pub struct GalleryLoad {
    /// The primary embedder's templates.
    pub gallery: Gallery,
    /// Fused matching: the further embedders' galleries, in the matcher's
    /// order (empty for one embedder).
    pub extra: Vec<Gallery>,
    pub tampered: Vec<TamperedRow>,
    /// Subject → models of templates skipped because no loaded embedder
    /// made them (its id, or `id@sha256:…` when only the model file differs).
    pub other_models: BTreeMap<String, BTreeSet<String>>,
}

impl GalleryLoad {
    /// Every loaded gallery, the primary first.
    pub fn galleries(&self) -> impl Iterator<Item = &Gallery> {
        std::iter::once(&self.gallery).chain(&self.extra)
    }

    /// Whether any loaded embedder has templates of `subject`.
    pub fn contains(&self, subject: &str) -> bool {
        self.galleries().any(|g| g.contains(subject))
    }

    /// Subjects to re-enrol: no usable template of any loaded model, or
    /// (fused) templates of only some of the loaded models.
    pub fn needs_reenrolment(&self) -> Vec<String> {
        let mut out: BTreeSet<String> = self
            .other_models
            .keys()
            .filter(|s| !self.contains(s))
            .cloned()
            .collect();
        if !self.extra.is_empty() {
            for g in self.galleries() {
                for s in g.subject_ids() {
                    if !self.galleries().all(|h| h.contains(s)) {
                        out.insert(s.to_owned());
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// One `store_tampered` audit record for every template that failed
    /// its integrity check, naming what noticed it.
    pub fn audit_tampered(&self, store: &mut Store, found_by: &str) -> Result<(), StoreError> {
        for t in &self.tampered {
            audit::append(
                store,
                &Event::StoreTampered {
                    subject: &t.subject,
                    template_row: t.row,
                    found_by,
                },
            )?;
        }
        Ok(())
    }

    /// Adds the gallery of a further embedder (opened with the same store
    /// state): its template rows, not its report of other models' rows.
    pub fn with_extra(mut self, load: GalleryLoad) -> Self {
        let loaded: BTreeSet<&str> = self
            .galleries()
            .chain(std::iter::once(&load.gallery))
            .map(Gallery::model_id)
            .collect();
        let keep = |names: &BTreeSet<String>| -> BTreeSet<String> {
            names
                .iter()
                .filter(|n| !loaded.contains(n.as_str()))
                .cloned()
                .collect()
        };
        // A row skipped by one load because the other model made it is not
        // another model's row once both are loaded.
        let mut merged: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (subject, names) in self.other_models.iter().chain(&load.other_models) {
            let names = keep(names);
            if !names.is_empty() {
                merged.entry(subject.clone()).or_default().extend(names);
            }
        }
        self.other_models = merged;
        self.extra.push(load.gallery);
        self
    }
}

/// One subject's best score.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubjectScore {
    pub subject: String,
    pub score: f32,
}

impl Gallery {
    /// Opens the templates of `modality` made by `model` (same id and same
    /// model file), of one subject when given.
    pub fn open(
        store: &Store,
        dek: &DataKey,
        modality: &str,
        model: ModelLabel<'_>,
        subject: Option<&str>,
    ) -> Result<GalleryLoad, GalleryError> {
        let (count, dim) = templates::shape(store, modality, model, subject)?;
        let mut builder = Builder::new(model.id, dim, count);
        let mut tampered = Vec::new();
        let mut other_models: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut error = None;
        templates::open_each(store, dek, modality, subject, |opened| match opened {
            Opened::Tampered(meta) => {
                tracing::error!(row = meta.row, subject = %meta.subject, "template failed its integrity check");
                tampered.push(TamperedRow {
                    row: meta.row,
                    subject: meta.subject.clone(),
                });
            }
            Opened::Ok(meta, _) if !meta.made_by(model) => {
                other_models
                    .entry(meta.subject.clone())
                    .or_default()
                    .insert(meta.model_name(model));
            }
            Opened::Ok(meta, vector) => {
                if let Err(e) = builder.push(&meta.subject, meta.row, vector) {
                    error.get_or_insert(e);
                }
            }
        })?;
        if let Some(e) = error {
            return Err(e);
        }
        // Whole subjects only: one tampered row withdraws the subject, so an
        // attacker cannot steer a decision by swapping in some rows.
        let bad: BTreeSet<&str> = tampered.iter().map(|t| t.subject.as_str()).collect();
        let mut gallery = builder.finish();
        if !bad.is_empty() {
            gallery = gallery.without(&bad);
        }
        Ok(GalleryLoad {
            gallery,
            extra: Vec::new(),
            tampered,
            other_models,
        })
    }

    /// A gallery from plaintext vectors (tests, benchmarks, imports).
    pub fn from_vectors<'a>(
        model_id: &str,
        dim: usize,
        entries: impl ExactSizeIterator<Item = (&'a str, i64, &'a [f32])>,
    ) -> Result<Self, GalleryError> {
        let mut builder = Builder::new(model_id, dim, entries.len());
        for (subject, row, v) in entries {
            builder.push(subject, row, v)?;
        }
        Ok(builder.finish())
    }

    fn without(mut self, drop: &BTreeSet<&str>) -> Self {
        let mut builder = Builder::new(&self.model_id, self.dim, self.rows.len());
        for s in &self.subjects {
            if drop.contains(s.id.as_str()) {
                continue;
            }
            for r in s.start..s.end {
                let v = &self.matrix.as_slice()[r * self.dim..(r + 1) * self.dim];
                // Cannot fail: same dimension, within capacity.
                let _ = builder.push(&s.id, self.rows[r], v);
            }
        }
        let out = builder.finish();
        self.wipe();
        out
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    pub fn contains(&self, subject: &str) -> bool {
        self.subjects.iter().any(|s| s.id == subject)
    }

    /// The subjects with templates here, in gallery order.
    pub fn subject_ids(&self) -> impl Iterator<Item = &str> {
        self.subjects.iter().map(|s| s.id.as_str())
    }

    /// Whether every copy of the templates (f32 and quantised) is locked.
    pub fn is_memory_locked(&self) -> bool {
        self.matrix.is_locked() && self.quant.as_ref().is_none_or(Quantised::is_locked)
    }

    /// `subject`'s templates: (row id, vector), in row order.
    pub fn subject_templates(&self, subject: &str) -> impl Iterator<Item = (i64, &[f32])> {
        let range = self
            .subjects
            .iter()
            .find(|s| s.id == subject)
            .map_or(0..0, |s| s.start..s.end);
        let dim = self.dim;
        let matrix = self.matrix.as_slice();
        range.map(move |r| (self.rows[r], &matrix[r * dim..(r + 1) * dim]))
    }

    /// 1:1: the best score of `subject`'s templates, `None` if it has none.
    pub fn score_subject(&self, subject: &str, probe: &[f32]) -> Option<f32> {
        let range = self.subjects.iter().find(|s| s.id == subject)?;
        if probe.len() != self.dim || range.start == range.end {
            return None;
        }
        let block = &self.matrix.as_slice()[range.start * self.dim..range.end * self.dim];
        block
            .chunks_exact(self.dim)
            .map(|row| dot(row, probe))
            .max_by(f32::total_cmp)
    }

    /// 1:N: every template's score into `out` (resized), in row order.
    pub fn score_all(&self, probe: &[f32], out: &mut Vec<f32>) {
        out.clear();
        if probe.len() != self.dim || self.dim == 0 {
            return;
        }
        out.extend(
            self.matrix
                .as_slice()
                .chunks_exact(self.dim)
                .map(|row| dot(row, probe)),
        );
    }

    /// 1:N: each subject's best score, best first (ties in gallery order),
    /// at most `k`. Exactly the f32 scores: the quantised pass only rules
    /// out subjects that provably rank below `k` others.
    pub fn top_subjects(&self, probe: &[f32], k: usize) -> Vec<SubjectScore> {
        if probe.len() != self.dim || self.dim == 0 || k == 0 {
            return Vec::new();
        }
        let shortlist = self
            .quant
            .as_ref()
            .and_then(|q| q.shortlist(&self.subjects, probe, k));
        let best = match shortlist {
            Some(subjects) => self.exact_top(subjects.into_iter(), probe, k),
            None => self.exact_top(0..self.subjects.len(), probe, k),
        };
        best.into_iter()
            .map(|(i, score)| SubjectScore {
                subject: self.subjects[i].id.clone(),
                score,
            })
            .collect()
    }

    /// The `k` best of `subjects` (indices in increasing order) by their
    /// best f32 score; a stable sort keeps ties in gallery order.
    fn exact_top(
        &self,
        subjects: impl Iterator<Item = usize>,
        probe: &[f32],
        k: usize,
    ) -> Vec<(usize, f32)> {
        let matrix = self.matrix.as_slice();
        let mut best: Vec<(usize, f32)> = subjects
            .filter(|&i| self.subjects[i].end > self.subjects[i].start)
            .map(|i| {
                let s = &self.subjects[i];
                let block = &matrix[s.start * self.dim..s.end * self.dim];
                let score = block
                    .chunks_exact(self.dim)
                    .map(|row| dot(row, probe))
                    .fold(f32::NEG_INFINITY, f32::max);
                (i, score)
            })
            .collect();
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        best.truncate(k);
        best
    }

    fn wipe(&mut self) {
        self.matrix.wipe();
        if let Some(q) = self.quant.as_mut() {
            q.wipe();
        }
    }
}

/// Dot product written for the auto-vectoriser: 16 independent lanes give
/// it room for SSE/AVX on x86-64 and NEON on aarch64, with no intrinsics.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        sum += x * y;
    }
    sum
}

struct Builder {
    model_id: String,
    dim: usize,
    matrix: Vec<f32>,
    rows: Vec<i64>,
    subjects: Vec<SubjectRange>,
}

impl Builder {
    fn new(model_id: &str, dim: usize, capacity_rows: usize) -> Self {
        Self {
            model_id: model_id.to_owned(),
            dim,
            matrix: Vec::with_capacity(capacity_rows * dim),
            rows: Vec::with_capacity(capacity_rows),
            subjects: Vec::new(),
        }
    }

    /// Rows of one subject must arrive together (the store orders by subject).
    fn push(&mut self, subject: &str, row: i64, v: &[f32]) -> Result<(), GalleryError> {
        if v.len() != self.dim {
            return Err(GalleryError::Dimension {
                row,
                expected: self.dim,
                got: v.len(),
            });
        }
        if self.matrix.len() + v.len() > self.matrix.capacity() {
            // Growing would copy plaintext into a new buffer and free the
            // old one unzeroised; a template enrolled since the count is
            // simply left for the next open.
            tracing::warn!(row, "template arrived after the gallery was sized; skipped");
            return Ok(());
        }
        let index = self.rows.len();
        match self.subjects.last_mut() {
            Some(last) if last.id == subject => last.end = index + 1,
            _ => self.subjects.push(SubjectRange {
                id: subject.to_owned(),
                start: index,
                end: index + 1,
            }),
        }
        self.matrix.extend_from_slice(v);
        self.rows.push(row);
        Ok(())
    }

    fn finish(mut self) -> Gallery {
        let matrix = Secret::new(std::mem::take(&mut self.matrix), "gallery");
        let quant = Quantised::build(matrix.as_slice(), self.dim);
        Gallery {
            model_id: std::mem::take(&mut self.model_id),
            dim: self.dim,
            matrix,
            quant,
            rows: std::mem::take(&mut self.rows),
            subjects: std::mem::take(&mut self.subjects),
        }
    }
}

impl Drop for Builder {
    /// A build abandoned on an error leaves no plaintext behind (`finish`
    /// has taken the matrix otherwise).
    fn drop(&mut self) {
        self.matrix.zeroize();
    }
}
