//! Enrol, verify and identify on photo files: shared by the verbs and by
//! `edgeid demo`. Each returns a report for printing; the verbs decide the
//! exit status.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use edgeid::config::Config;
use edgeid::decision::enrolment::face_templates;
use edgeid::decision::lockout::{self, LockState, Lockout};
use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::{
    Gallery, Mode, OperatingPoint, Outcome, Reason, Threshold, verify as decide,
};
use edgeid::pipeline::{FacePipeline, FrameAnalysis, StageTimings};
use edgeid::sources::load_image;
use edgeid::store::audit::{self, Event};
use edgeid::store::templates;
use edgeid::store::{KeyRing, Store, unix_now_ms};
use edgeid::verdict::{IssueRequest, Issued, issue};
use edgeid::vision::quality::QualityReport;

use super::pad::{PadCheck, PadCheckInfo};
use super::progress::counter;
use super::state::PipelineCell;

pub use edgeid::decision::enrolment::FACE;

/// One photo through the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoReport {
    pub file: PathBuf,
    pub faces_detected: usize,
    pub quality: Option<QualityReport>,
    pub timings: StageTimings,
    pub decode_ms: f64,
    /// Why the photo was not usable, if it was not.
    pub rejected: Option<Reason>,
    /// The passive PAD model's live score, when one was applied.
    pub pad_score: Option<f32>,
    pub hints: Vec<&'static str>,
}

fn analyse(
    pipeline: &FacePipeline,
    file: &Path,
    pad: Option<&PadCheck>,
) -> anyhow::Result<(PhotoReport, FrameAnalysis)> {
    let t = Instant::now();
    let image = load_image(file)?;
    let decode_ms = t.elapsed().as_secs_f64() * 1e3;
    let analysis = pipeline
        .analyse(&image)
        .with_context(|| format!("analysing {}", file.display()))?;
    let mut rejected = decide::select_face(std::slice::from_ref(&analysis)).err();
    // Only a face that is otherwise usable is worth a PAD score.
    let mut pad_score = None;
    if let (None, Some(check), Some(face)) = (rejected, pad, analysis.face.as_ref()) {
        let (score, live) = check.judge(&image, &face.detection)?;
        pad_score = Some(score);
        if !live {
            rejected = Some(Reason::PresentationAttack);
        }
    }
    let hints = analysis
        .face
        .as_ref()
        .map(|f| f.quality_failures.iter().map(|q| q.hint()).collect())
        .unwrap_or_default();
    Ok((
        PhotoReport {
            file: file.to_owned(),
            faces_detected: analysis.faces_detected,
            quality: analysis.face.as_ref().map(|f| f.quality),
            timings: analysis.timings,
            decode_ms,
            rejected,
            pad_score,
            hints,
        },
        analysis,
    ))
}

#[derive(Debug, Serialize)]
pub struct EnrollReport {
    pub subject: String,
    pub model_id: String,
    pub accepted: usize,
    pub template_rows: Vec<i64>,
    pub photos: Vec<PhotoReport>,
    /// The passive PAD check applied to every photo; `None` when no PAD
    /// model ships and none was named.
    pub presentation_attack_check: Option<PadCheckInfo>,
}

/// What to enrol: the subject, the photos, and the PAD check to apply.
pub struct EnrollRequest<'a> {
    pub subject: &'a str,
    pub files: &'a [PathBuf],
    /// Replace the subject's templates instead of refusing.
    pub replace: bool,
    pub pad: Option<&'a PadCheck>,
}

pub fn enroll(
    store: &mut Store,
    keys: &KeyRing,
    pipeline: &FacePipeline,
    req: &EnrollRequest<'_>,
    quiet: bool,
) -> anyhow::Result<EnrollReport> {
    let EnrollRequest {
        subject,
        files,
        replace,
        pad,
    } = *req;
    edgeid::store::validate_subject(subject)?;
    if !replace && templates::subject_exists(store, subject)? {
        anyhow::bail!(edgeid::store::StoreError::SubjectExists(subject.to_owned()));
    }
    let spec = pipeline.embedder_spec();
    let bar = counter(files.len() as u64, "photos", quiet);
    let mut photos = Vec::new();
    let mut vectors = Vec::new();
    for file in files {
        let (report, analysis) = analyse(pipeline, file, pad)?;
        if let (None, Some(face)) = (report.rejected, analysis.face) {
            vectors.push((face.embedding, face.quality));
        } else if !quiet {
            bar.suspend(|| {
                eprintln!(
                    "{}: not used ({}){}",
                    file.display(),
                    report.rejected.map_or("?", |r| r.as_str()),
                    rejection_detail(&report)
                )
            });
        }
        photos.push(report);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let pad_info = pad.map(PadCheck::info);
    if vectors.is_empty() {
        let checks = if pad.is_some() {
            "face, quality and presentation-attack"
        } else {
            "face and quality"
        };
        anyhow::bail!(
            "no photo of {subject} passed the {checks} checks: nothing was enrolled; use clear, frontal, well-lit photos of the person themselves"
        );
    }
    let new = face_templates(spec, &vectors);
    let qualities: Vec<_> = vectors.iter().map(|(_, q)| q).collect();
    let rejected: Vec<_> = photos
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.rejected
                .map(|r| serde_json::json!({"sample": i, "reason": r, "pad_score": p.pad_score}))
        })
        .collect();
    let pad_scores: Vec<_> = photos.iter().map(|p| p.pad_score).collect();
    let event = Event {
        event: "enroll",
        subject: Some(subject),
        decision: Some("accept"),
        reason: None,
        detail: serde_json::json!({
            "modality": FACE, "model_id": spec.id, "model_sha256": spec.sha256,
            "samples": files.len(), "accepted": vectors.len(), "rejected": rejected,
            "quality": qualities, "replace": replace,
            // No passive PAD model carried signal on real photos (DESIGN.md),
            // so none ships; the active challenge needs a camera, not photos.
            "presentation_attack_check": pad_info.as_ref().map_or(
                serde_json::json!("not_available"),
                |info| serde_json::json!(info),
            ),
            "pad_scores": pad_info.as_ref().map(|_| pad_scores),
        }),
    };
    let rows = templates::enroll(store, &keys.dek, subject, &new, replace, Some(&event))?;
    Ok(EnrollReport {
        subject: subject.to_owned(),
        model_id: spec.id.clone(),
        accepted: rows.len(),
        template_rows: rows,
        photos,
        presentation_attack_check: pad_info,
    })
}

/// The part of a rejection line after the reason: the PAD score against
/// its threshold, or the quality hints.
fn rejection_detail(report: &PhotoReport) -> String {
    if report.rejected == Some(Reason::PresentationAttack) {
        return report
            .pad_score
            .map(|s| format!(": live score {s:.3} below the PAD threshold"))
            .unwrap_or_default();
    }
    if report.hints.is_empty() {
        String::new()
    } else {
        format!(": {}", report.hints.join(", "))
    }
}

#[derive(Debug, Serialize)]
pub struct DecisionReport {
    pub outcome: Outcome,
    pub issued: Issued,
    pub photos: Vec<PhotoReport>,
    /// Rows that failed their integrity check, when any.
    pub tampered_rows: Vec<i64>,
    pub gallery_open_ms: Option<f64>,
    pub decide_ms: Option<f64>,
    pub issue_ms: f64,
    /// Sentence for the operator on a rejection.
    pub message: Option<String>,
}

pub struct Request<'a> {
    pub mode: Mode,
    pub subject: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub files: &'a [PathBuf],
    pub threshold: Option<f32>,
}

/// Verify (1:1) or identify (1:N): always ends in a signed verdict, and an
/// audit record, unless the store or keys cannot be used at all.
pub fn decide(
    store: &mut Store,
    keys: &KeyRing,
    config: &Config,
    pipeline: &mut PipelineCell<'_>,
    req: &Request<'_>,
) -> anyhow::Result<DecisionReport> {
    let lockout = Lockout::from(config.lockout);
    let mut extra = serde_json::json!({});
    let mut tampered_rows = Vec::new();
    let mut message = None;
    let mut photos = Vec::new();
    let (mut gallery_open_ms, mut decide_ms) = (None, None);
    let outcome = 'decided: {
        if let Some(subject) = req.subject {
            if let LockState::Locked { until_ms, failures } =
                lockout.check(store, subject, unix_now_ms())?
            {
                message = Some(format!(
                    "{subject} is locked out after {failures} failed attempts; try again in {} s",
                    (until_ms - unix_now_ms()).max(0) / 1000 + 1
                ));
                extra =
                    serde_json::json!({"locked_until_ms": until_ms, "recent_failures": failures});
                break 'decided Outcome::reject(Mode::Verify, Reason::LockedOut, Some(subject));
            }
            if !templates::subject_exists(store, subject)? {
                message = Some(format!(
                    "{subject} is not enrolled: enrol them with `edgeid enroll --subject {subject} PHOTO...`"
                ));
                break 'decided Outcome::reject(
                    Mode::Verify,
                    Reason::UnknownSubject,
                    Some(subject),
                );
            }
        }
        let pipeline = pipeline.get()?;
        let spec = pipeline.embedder_spec();
        extra = serde_json::json!({"model_id": spec.id, "model_sha256": spec.sha256});
        if req.mode == Mode::Identify {
            extra["identify_enabled"] = serde_json::json!(config.identify_enabled);
        }
        let t = Instant::now();
        let load = Gallery::open(store, &keys.dek, FACE, &spec.id, req.subject)?;
        gallery_open_ms = Some(t.elapsed().as_secs_f64() * 1e3);
        if !load.tampered.is_empty() {
            tampered_rows = load.tampered.iter().map(|t| t.row).collect();
            for t in &load.tampered {
                audit::append(
                    store,
                    &Event {
                        event: "store_tampered",
                        subject: Some(&t.subject),
                        decision: None,
                        reason: Some(Reason::StoreTampered.as_str()),
                        detail: serde_json::json!({"template_row": t.row}),
                    },
                )?;
            }
            extra["tampered_rows"] = serde_json::json!(load.tampered);
        }
        if let Some(subject) = req.subject {
            if let Some(t) = load.tampered.iter().find(|t| t.subject == subject) {
                message = Some(format!(
                    "template row {} of subject {subject} failed its integrity check (store_tampered): \
                     revoke and re-enrol {subject}, and investigate who changed the store",
                    t.row
                ));
                break 'decided Outcome::reject(Mode::Verify, Reason::StoreTampered, Some(subject));
            }
            if !load.gallery.contains(subject) {
                message = Some(format!(
                    "{subject} was enrolled with another face model than {}: re-enrol with `edgeid enroll --replace`",
                    spec.id
                ));
                break 'decided Outcome::reject(Mode::Verify, Reason::ModelMismatch, Some(subject));
            }
        } else {
            let stale = load.needs_reenrolment();
            if !stale.is_empty() {
                tracing::warn!(subjects = ?stale, "subjects enrolled with another model are not searched: re-enrol them");
                extra["needs_reenrolment"] = serde_json::json!(stale);
            }
            if !load.tampered.is_empty() {
                eprintln!(
                    "warning: {} template(s) failed their integrity check and were left out (see `edgeid audit export`)",
                    load.tampered.len()
                );
            }
        }
        let mut frames = Vec::with_capacity(req.files.len());
        for file in req.files {
            let (report, analysis) = analyse(pipeline, file, None)?;
            photos.push(report);
            frames.push(analysis);
        }
        let threshold =
            Threshold::resolve(req.threshold, spec, OperatingPoint(DEFAULT_OPERATING_POINT))
                .context("the manifest has no threshold for the embedder; pass --threshold")?;
        extra["threshold_source"] = serde_json::json!(threshold.source);
        let t = Instant::now();
        let outcome = match req.subject {
            Some(subject) => decide::decide_verify(&load.gallery, subject, &frames, &threshold),
            None => decide::decide_identify(&load.gallery, &frames, &threshold),
        };
        decide_ms = Some(t.elapsed().as_secs_f64() * 1e3);
        if let Some(f) = outcome.frame.and_then(|i| photos.get(i)) {
            extra["quality"] = serde_json::json!(f.quality);
        }
        if let Some(subject) = req.subject
            && let Some(accepted) = lockout::attempt(outcome.reason)
        {
            if let LockState::Locked { until_ms, failures } =
                lockout.record(store, subject, accepted, unix_now_ms())?
            {
                audit::append(
                    store,
                    &Event {
                        event: "lockout",
                        subject: Some(subject),
                        decision: None,
                        reason: Some(Reason::LockedOut.as_str()),
                        detail: serde_json::json!({"locked_until_ms": until_ms, "failures": failures}),
                    },
                )?;
            }
        }
        outcome
    };
    if message.is_none() && outcome.reason != Reason::Match {
        message = Some(rejection_sentence(&outcome));
    }
    let t = Instant::now();
    let issued = issue(
        store,
        keys,
        IssueRequest {
            outcome: &outcome,
            nonce: req.nonce,
            modalities: &[FACE],
            lifetime_secs: config.verdict_lifetime_secs,
            detail: extra,
        },
    )?;
    Ok(DecisionReport {
        outcome,
        issued,
        photos,
        tampered_rows,
        gallery_open_ms,
        decide_ms,
        issue_ms: t.elapsed().as_secs_f64() * 1e3,
        message,
    })
}

fn rejection_sentence(outcome: &Outcome) -> String {
    let who = outcome.subject.as_deref().unwrap_or("anyone enrolled");
    match outcome.reason {
        Reason::NoMatch => format!("the face did not match {who}"),
        Reason::NoFace => "no face was found: face the camera in good light".into(),
        Reason::MultipleFaces => "more than one face was in view: one person at a time".into(),
        Reason::LowQuality => "the face was too small, blurred, turned or badly lit: try again closer and facing the camera".into(),
        other => format!("rejected ({other})"),
    }
}
