//! `edgeid eval fused --faces DIR --pairs FILE --voices DIR`: face only,
//! voice only and face+voice on virtual persons, side by side, with the
//! fitted calibration as the manifest's `[[fusion]]` entry (protocol in
//! `edgeid::eval::fused`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use edgeid::decision::factors::FactorFusion;
use edgeid::decision::voice::FLOOR_OPERATING_POINT;
use edgeid::eval::faces::{read_pairs, unique_images};
use edgeid::eval::fused::{FaceScores, FusedReport, evaluate, fused_trials, pair_up};
use edgeid::eval::plot::{Series, det_chart};
use edgeid::eval::runner::analyse_all;
use edgeid::eval::voice::{read_voice_dataset, trials};

use super::eval_voice::VoiceTrialArgs;
use edgeid::infer::ModelSpec;
use edgeid::pipeline::{EmbedderChoice, FaceSelection, PipelineConfig, SubjectRule};

use super::GlobalArgs;
use super::output::emit;
use super::pipeline::{load_pipeline_with, load_voice, open_manifest};
use super::progress::counter;

#[derive(Debug, Args)]
pub struct FusedArgs {
    /// Face dataset: DIR/<identity>/<identity>_NNNN.jpg.
    #[arg(long)]
    pub faces: PathBuf,
    /// Pairs file naming the face images used (LFW pairs.txt format);
    /// default FACES/pairs.txt. Every pair of these images is scored.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Voice dataset: DIR/<speaker>/*.flac|wav.
    #[arg(long)]
    pub voices: PathBuf,
    #[command(flatten)]
    pub trials: VoiceTrialArgs,
    /// Images per face template: 1 scores every face image pair; N >= 2
    /// enrols each identity with more than N images on its first N and
    /// scores its other images by the best of them, as the daemon scores a
    /// subject enrolled from several samples (`daemon.enroll_samples`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub face_templates: u16,
    /// Threads for the face pipeline.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Write the DET curves here (PNG, or SVG by extension).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// How the face trials are made.
fn face_trials(face_templates: u16) -> String {
    match face_templates {
        1 => "every image pair (one-image templates)".to_owned(),
        n => format!(
            "probes against the best of {n} enrolled images (identities with more than {n} images; the first {n} by name)"
        ),
    }
}

/// The protocol, as printed with the results.
fn protocol(face_templates: u16) -> String {
    let face = format!("face trials: {}", face_trials(face_templates));
    format!(
        "virtual persons: each speaker paired with a face identity (enrolled speakers with the identities holding the most genuine face trials); {face}; genuine = a person's genuine voice trial x each genuine face trial of its identity; impostor = a voice trial of A vs B's template x each face trial of A's identity vs B's; each modality calibrated to an LLR by logistic regression on its own scores"
    )
}

pub fn fused(global: &GlobalArgs, args: FusedArgs) -> anyhow::Result<()> {
    let pairs_file = args
        .pairs
        .clone()
        .unwrap_or_else(|| args.faces.join("pairs.txt"));
    let images = unique_images(&read_pairs(&args.faces, &pairs_file)?);
    // The LFW protocol's subject is the face nearest the centre.
    let pipeline = load_pipeline_with(
        global,
        PipelineConfig {
            embedder: EmbedderChoice::Dlib,
            faces: FaceSelection {
                rule: SubjectRule::Central,
                ..FaceSelection::default()
            },
            ..PipelineConfig::default()
        },
    )?;
    let face_spec = pipeline.embedder_spec().clone();
    let bar = counter(images.len() as u64, "images", global.json);
    let outcomes = analyse_all(&pipeline, &images, args.threads, &|| bar.inc(1));
    bar.finish_and_clear();
    let descriptors: BTreeMap<&Path, &[f32]> = outcomes
        .iter()
        .filter_map(|(path, o)| {
            let face = o.analysis.as_ref().ok()?.face.as_ref()?;
            Some((path.as_path(), face.embedding.as_slice()))
        })
        .collect();
    let faces = FaceScores::measure(&images, &descriptors, usize::from(args.face_templates));

    let speakers = read_voice_dataset(&args.voices)?;
    let voice = load_voice(global)?;
    let voice_spec = voice.embedder().spec().clone();
    let files: usize = speakers.iter().map(|s| s.files.len()).sum();
    let bar = counter(files as u64, "utterances", global.json);
    let utterances = args.trials.embed(&voice, &speakers, || bar.inc(1));
    bar.finish_and_clear();
    let voice_trials = trials(&speakers, &utterances, args.trials.enrol).labelled;

    let identity_of = pair_up(&speakers, &voice_trials, &faces).with_context(|| {
        format!(
            "{} speakers but only {} face identities: every speaker needs its own",
            speakers.len(),
            faces.identities.len()
        )
    })?;
    let floors = [floor(&face_spec)?, floor(&voice_spec)?];
    let trials = fused_trials(&voice_trials, &identity_of, &faces);
    let manifest = open_manifest(global)?;
    let shipped = FactorFusion::find(&manifest, &face_spec, &voice_spec);
    let report = evaluate(&faces, &voice_trials, &trials, floors, shipped.as_ref())
        .context("no genuine or no impostor scores to calibrate a modality on")?;
    if let Some(plot) = &args.plot {
        let series: Vec<Series> = report
            .det
            .iter()
            .zip(&report.systems)
            .map(|((name, points), s)| Series {
                label: format!("{name} (EER {:.2} %)", s.eer * 100.0),
                points: points.clone(),
            })
            .collect();
        det_chart(plot, "Face, voice and fused on virtual persons", &series)?;
    }
    let pairing: Vec<(String, String)> = speakers
        .iter()
        .zip(&identity_of)
        .map(|(s, &i)| (s.id.clone(), faces.identities[i].clone()))
        .collect();
    let manifest_entry = manifest_entry(&report, &face_spec, &voice_spec, &args, &pairs_file);
    #[derive(serde::Serialize)]
    struct Out<'a> {
        protocol: String,
        face_model: &'a str,
        voice_model: &'a str,
        pairing: &'a [(String, String)],
        #[serde(flatten)]
        report: &'a FusedReport,
        manifest_entry: &'a str,
    }
    let out = Out {
        protocol: protocol(args.face_templates),
        face_model: &face_spec.id,
        voice_model: &voice_spec.id,
        pairing: &pairing,
        report: &report,
        manifest_entry: &manifest_entry,
    };
    emit(global.json, &out, |o| {
        println!("protocol  {}", o.protocol);
        println!("pairing   (speaker -> face identity)");
        for (s, f) in o.pairing {
            println!("          {s} -> {f}");
        }
        println!(
            "trials    {} genuine, {} impostor (FAR resolution {:.1e})",
            o.report.genuine_trials,
            o.report.impostor_trials,
            1.0 / o.report.impostor_trials.max(1) as f64
        );
        println!(
            "{:<28} {:>8} {:>14} {:>14}",
            "system", "EER %", "TAR@1e-3 %", "TAR@1e-2 %"
        );
        for s in &o.report.systems {
            println!(
                "{:<28} {:>8.2} {:>14.2} {:>14.2}",
                s.name,
                s.eer * 100.0,
                s.tar_at_far_1e3 * 100.0,
                s.tar_at_far_1e2 * 100.0
            );
        }
        match &o.report.shipped {
            Some(s) => println!(
                "shipped   {} at its threshold {:.4} (floors {:.4} face, {:.4} voice): FAR {:.2e} ({} of {}), FRR {:.2} % ({} of {})",
                s.fusion,
                s.threshold,
                o.report.floors[0],
                o.report.floors[1],
                s.far,
                s.false_accepts,
                o.report.impostor_trials,
                s.frr * 100.0,
                s.false_rejects,
                o.report.genuine_trials
            ),
            None => println!("shipped   the manifest has no fusion fitted for these two models"),
        }
        println!(
            "\nmanifest entry (models/manifest.toml):\n{}",
            o.manifest_entry
        );
    })
}

/// A model's floor threshold from the manifest.
fn floor(spec: &ModelSpec) -> anyhow::Result<f32> {
    FactorFusion::floor(spec).with_context(|| {
        format!(
            "the manifest has no {FLOOR_OPERATING_POINT} threshold for {}",
            spec.id
        )
    })
}

/// The `[[fusion]]` entry the decision path reads: LLR = weight × (score
/// − mean) / std with std 1, i.e. slope × score + offset.
fn manifest_entry(
    r: &FusedReport,
    face: &ModelSpec,
    voice: &ModelSpec,
    args: &FusedArgs,
    pairs_file: &Path,
) -> String {
    let rule = r.systems.last();
    let threshold = rule.map_or(f32::INFINITY, |s| s.threshold_at_far_1e3);
    let tar = rule.map_or(0.0, |s| s.tar_at_far_1e3 * 100.0);
    let (cf, cv) = (r.face_calibration, r.voice_calibration);
    format!(
        "[[fusion]]\n\
         id = \"{f}+{v}\"\n\
         models = [\"{f}\", \"{v}\"]\n\
         sha256 = [\"{fs}\", \"{vs}\"]\n\
         mean = [{fm}, {vm}]\n\
         std = [1.0, 1.0]\n\
         weights = [{fw}, {vw}]\n\
         fitted_on = \"edgeid eval fused --faces {faces} --pairs {pairs} --voices {voices} --enrol {enrol} --face-templates {ft} --min-speech {ms} --probe-speech {ps}: logistic calibration of each modality on its own scores (classes weighted equally; face: {face_trials}, voice: the eval voice trials), LLR = weight * (score - mean)\"\n\
         [fusion.thresholds.far_1e-3]\n\
         value = {threshold}\n\
         measured_on = \"the same virtual-person trials: the lowest fused LLR with FAR <= 1e-3 of {imp} impostor trials under the shipped rule (each factor at or above its far_1e-2 floor), TAR {tar:.2} % of {gen} genuine trials\"\n",
        f = face.id,
        v = voice.id,
        fs = face.sha256,
        vs = voice.sha256,
        fm = -cf.offset / cf.slope,
        vm = -cv.offset / cv.slope,
        fw = cf.slope,
        vw = cv.slope,
        faces = args.faces.display(),
        voices = args.voices.display(),
        enrol = args.trials.enrol,
        ft = args.face_templates,
        ms = args.trials.min_speech,
        ps = args.trials.probe_speech,
        pairs = pairs_file.display(),
        face_trials = face_trials(args.face_templates),
        imp = r.impostor_trials,
        gen = r.genuine_trials,
    )
}
