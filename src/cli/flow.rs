//! Enrol, verify and identify on photo files: shared by the verbs and by
//! `edgeid demo`. Each returns a report for printing; the verbs decide the
//! exit status.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use edgeid::api::Admin;
use edgeid::config::Config;
use edgeid::decision::Issued;
use edgeid::decision::enrolment::evidence_templates;
use edgeid::decision::factors::combine;
use edgeid::decision::pad::{PadCheck, PadCheckInfo};
use edgeid::decision::{
    Authenticator, Evidence, Judged, Modalities, Mode, Origin, Outcome, Policy, Provenance, Reason,
    Sample,
};
use edgeid::pipeline::{FacePipeline, StageTimings};
use edgeid::sources::load_image;
use edgeid::store::audit::Event;
use edgeid::store::templates;
use edgeid::store::{KeyRing, Store};
use edgeid::vision::quality::QualityReport;

use super::progress::counter;
use super::state::PipelineCell;
use super::voice_flow;

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
) -> anyhow::Result<(PhotoReport, Sample)> {
    let t = Instant::now();
    let image = load_image(file)?;
    let decode_ms = t.elapsed().as_secs_f64() * 1e3;
    let analysis = pipeline
        .analyse(&image)
        .with_context(|| format!("analysing {}", file.display()))?;
    let mut sample = Sample::new(analysis);
    // Only a face that is otherwise usable is worth a PAD score.
    if let (Ok(()), Some(check), Some(face)) = (sample.judge(), pad, sample.analysis.face.as_ref())
    {
        let judged = check
            .judge(&image, &face.detection)
            .with_context(|| format!("scoring {} with the PAD model", file.display()))?;
        sample.pad = Some(judged);
    }
    let analysis = &sample.analysis;
    let hints = analysis
        .face
        .as_ref()
        .map(|f| f.quality_failures.iter().map(|q| q.hint()).collect())
        .unwrap_or_default();
    let report = PhotoReport {
        file: file.to_owned(),
        faces_detected: analysis.faces_detected,
        quality: analysis.face.as_ref().map(|f| f.quality),
        timings: analysis.timings,
        decode_ms,
        rejected: sample.judge().err(),
        pad_score: sample.pad.map(|p| p.score),
        hints,
    };
    Ok((report, sample))
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
        let (report, sample) = analyse(pipeline, file, pad)?;
        if let (None, Some(face)) = (report.rejected, sample.analysis.face) {
            vectors.push((face.embeddings, face.quality));
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
    let new = evidence_templates(&vectors);
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
    let event = Event::Enroll {
        subject,
        detail: serde_json::json!({
            "modality": FACE, "model_id": spec.id, "model_sha256": spec.sha256,
            "samples": files.len(), "accepted": vectors.len(), "rejected": rejected,
            "quality": qualities, "replace": replace, "by": Admin::this_process(),
            // No passive PAD model carried signal on real photos (README, Liveness),
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
    #[serde(flatten)]
    pub gathered: Gathered,
    pub issue_ms: f64,
    /// Sentence for the operator on a rejection.
    pub message: Option<String>,
}

/// What judging the photos found and cost (empty when the attempt was
/// answered before any model was loaded).
#[derive(Debug, Default, Serialize)]
pub struct Gathered {
    pub photos: Vec<PhotoReport>,
    /// Rows that failed their integrity check, when any.
    pub tampered_rows: Vec<i64>,
    pub gallery_open_ms: Option<f64>,
    pub decide_ms: Option<f64>,
}

pub struct Request<'a> {
    pub mode: Mode,
    pub subject: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// Photos of the face (may be empty when the policy needs no face).
    pub files: &'a [PathBuf],
    /// An audio file of the voice.
    pub voice: Option<&'a Path>,
    /// A stronger policy than the site's, if asked for.
    pub modalities: Option<Modalities>,
    pub threshold: Option<f32>,
}

/// What noticed tampered templates, in their audit records.
const FOUND_BY: &str = "edgeid verify / identify";

/// Verify (1:1) or identify (1:N) on photo files through the decision
/// path: always ends in a signed verdict and an audit record, unless the
/// store or keys cannot be used at all.
pub fn decide(
    store: &mut Store,
    keys: &KeyRing,
    config: &Config,
    pipeline: &mut PipelineCell<'_>,
    req: &Request<'_>,
) -> anyhow::Result<DecisionReport> {
    let auth = Authenticator::new(Policy {
        threshold: req.threshold,
        threshold_source: "--threshold",
        ..config.decision_policy()
    })?;
    let policy = Modalities::for_request(config.decision.modalities, req.modalities)?;
    check_inputs(policy, req)?;
    let request = edgeid::decision::Request::new(req.mode, req.subject, req.nonce, Origin::Cli);
    let mut gathered = Gathered::default();
    // Lockout first: a locked-out subject is answered without loading a model.
    let (judged, provenance) = match auth.locked_out(store, &request)? {
        Some(early) => (early, Provenance::NONE),
        None => {
            let face = match policy.uses_face() {
                true if !req.files.is_empty() => Some(judge_photos(
                    store,
                    keys,
                    &auth,
                    pipeline,
                    req,
                    &request,
                    &mut gathered,
                )?),
                true => Some(no_photos(&request)),
                false => None,
            };
            let voice = match (policy.uses_voice(), req.voice) {
                (true, Some(file)) => Some(voice_flow::judge(store, keys, pipeline, req, file)?),
                (true, None) => Some(voice_flow::not_heard(pipeline.global())?),
                (false, _) => None,
            };
            let fusion = match policy {
                Modalities::FaceAndVoice => voice_flow::factor_fusion(pipeline)?,
                _ => None,
            };
            let judged = combine(policy, &request, face, voice, fusion.as_ref());
            (judged, Provenance::PHOTOS)
        }
    };
    let message = (judged.outcome.reason != Reason::Match).then(|| rejection_sentence(&judged));
    let t = Instant::now();
    let outcome = judged.outcome.clone();
    let issued = auth.finish(store, keys, &request, judged, provenance)?;
    Ok(DecisionReport {
        outcome,
        issued,
        gathered,
        issue_ms: t.elapsed().as_secs_f64() * 1e3,
        message,
    })
}

/// The inputs `policy` needs were given: photos for a face, an audio
/// file for a voice (either, for `face|voice`).
fn check_inputs(policy: Modalities, req: &Request<'_>) -> anyhow::Result<()> {
    if req.mode == Mode::Identify {
        policy.check_identify()?;
    }
    let (photos, voice) = (!req.files.is_empty(), req.voice.is_some());
    let missing = match policy {
        Modalities::Face if !photos => Some("photos of the face"),
        Modalities::Voice if !voice => Some("--voice FILE"),
        Modalities::FaceAndVoice if !photos || !voice => Some("photos and --voice FILE"),
        Modalities::FaceOrVoice if !photos && !voice => Some("photos or --voice FILE"),
        _ => None,
    };
    if let Some(missing) = missing {
        anyhow::bail!(
            "the decision needs {policy} ([decision] modalities or --modalities): pass {missing}"
        );
    }
    if policy == Modalities::Face && voice {
        anyhow::bail!(
            "--voice is not used under modalities {policy}: pass --modalities face+voice to use both"
        );
    }
    Ok(())
}

/// The face factor of a `face|voice` attempt without photos.
fn no_photos(request: &edgeid::decision::Request<'_>) -> Judged {
    Judged {
        outcome: Outcome::reject(request.mode, Reason::NoFace, request.subject),
        detail: serde_json::json!({"cause": "no_photos"}),
        modalities: vec![FACE],
    }
}

/// Loads the models, opens the gallery, notes a claim that cannot be
/// compared, and judges the photos.
fn judge_photos(
    store: &mut Store,
    keys: &KeyRing,
    auth: &Authenticator,
    pipeline: &mut PipelineCell<'_>,
    req: &Request<'_>,
    request: &edgeid::decision::Request<'_>,
    report: &mut Gathered,
) -> anyhow::Result<Judged> {
    let pipeline = pipeline.get()?;
    let matcher = auth
        .matcher(pipeline.embedder_spec())?
        .fused_with(&pipeline.extra_specs(), pipeline.fusion())?;
    let t = Instant::now();
    let enrolled = matcher.open_gallery(store, &keys.dek, req.subject, FOUND_BY)?;
    report.gallery_open_ms = Some(t.elapsed().as_secs_f64() * 1e3);
    report.tampered_rows = enrolled.tampered.iter().map(|t| t.row).collect();
    if req.subject.is_none() && !enrolled.tampered.is_empty() {
        eprintln!(
            "warning: {} template(s) failed their integrity check and were left out (see `edgeid audit export`)",
            enrolled.tampered.len()
        );
    }
    let uncomparable = matcher.precheck(store, &enrolled, request)?;
    let mut samples = Vec::with_capacity(req.files.len());
    for file in req.files {
        let (photo, sample) = analyse(pipeline, file, None)?;
        report.photos.push(photo);
        samples.push(sample);
    }
    let t = Instant::now();
    let judged = matcher.judge(
        &enrolled,
        request,
        &Evidence::photos(samples),
        uncomparable.as_ref(),
    );
    report.decide_ms = Some(t.elapsed().as_secs_f64() * 1e3);
    Ok(judged)
}
/// A sentence for the operator on a rejection.
fn rejection_sentence(judged: &Judged) -> String {
    let outcome: &Outcome = &judged.outcome;
    let detail = &judged.detail;
    let subject = outcome.subject.as_deref().unwrap_or("anyone enrolled");
    // The verdict says `no_match` for a claim that cannot be compared; the
    // operator, who holds the store, is told why.
    let cause = detail["cause"]
        .as_str()
        .and_then(|c| Reason::ALL.into_iter().find(|r| r.as_str() == c));
    let reason = match (outcome.reason, cause) {
        (Reason::NoMatch, Some(cause)) => cause,
        (reason, _) => reason,
    };
    match reason {
        Reason::LockedOut => {
            let until = detail["locked_until_ms"].as_i64().unwrap_or_default();
            let now = edgeid::store::unix_now_ms();
            format!(
                "{subject} is locked out after {} failed attempts; try again in {} s",
                detail["recent_failures"],
                (until - now).max(0) / 1000 + 1
            )
        }
        Reason::UnknownSubject => format!(
            "{subject} is not enrolled: enrol them with `edgeid enroll --subject {subject} PHOTO...`"
        ),
        Reason::StoreTampered => {
            let rows: Vec<String> = detail["tampered_rows"]
                .as_array()
                .map(|rows| rows.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default();
            if rows.is_empty() {
                // Rows deleted behind edgeid's back (the enrolment record
                // says what was written).
                format!(
                    "the templates of subject {subject} were deleted outside `edgeid subjects revoke` (store_tampered): \
                     revoke and re-enrol {subject}, and investigate who changed the store"
                )
            } else {
                format!(
                    "template row {} of subject {subject} failed its integrity check (store_tampered): \
                     revoke and re-enrol {subject}, and investigate who changed the store",
                    rows.join(", ")
                )
            }
        }
        Reason::ModelMismatch => format!(
            "{subject} was enrolled with another face model ({}) than {}: re-enrol with `edgeid enroll --replace`",
            detail["enrolled_with"], detail["model_id"]
        ),
        Reason::NoMatch => format!("the face did not match {subject}"),
        Reason::VoiceMismatch => format!("the voice did not match {subject}"),
        Reason::TooLittleSpeech => format!(
            "too little speech in the recording ({:.1} s; {} s needed): speak for longer",
            detail["voice"]["detail"]["speech_s"].as_f64().unwrap_or_default(),
            detail["voice"]["detail"]["min_speech_s"]
        ),
        Reason::PresentationAttack if detail["voice"]["detail"]["cause"] == "voice_replay" => {
            "the recording is a replay of an enrolment clip or of a recent attempt".into()
        }
        Reason::NoFace => "no face was found: face the camera in good light".into(),
        Reason::MultipleFaces => "more than one face was in view: one person at a time".into(),
        Reason::LowQuality => "the face was too small, blurred, turned or badly lit: try again closer and facing the camera".into(),
        other => format!("rejected ({other})"),
    }
}
