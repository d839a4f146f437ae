//! `edgeid eval faces | pad`: accuracy on labelled data, with plots.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::{OperatingPoint, Threshold};
use edgeid::eval::faces::{FaceEvalReport, evaluate, read_pairs};
use edgeid::eval::metrics::roc;
use edgeid::eval::pad::{
    PAD_OPERATING_POINT, PadImageStats, PadMetrics, PadSampleResult, class_scores, det_curve,
    read_pad_dataset, score_all,
};
use edgeid::eval::plot::{Series, roc_chart, score_histogram};
use edgeid::pipeline::PipelineConfig;
use edgeid::vision::align::Alignment;
use edgeid::vision::pad::PAD_CROP_SCALE;

use super::GlobalArgs;
use super::output::emit;
use super::pad::{load_scorer, pad_model_ids};
use super::pipeline::{load_pipeline_with, open_manifest};
use super::progress::counter;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Face verification on an LFW-layout dataset and a pairs file.
    Faces(FacesArgs),
    /// Presentation-attack detection on DIR/live and DIR/spoof: APCER,
    /// BPCER, ACER, AUC, EER and the DET curve of one face_pad model.
    Pad(PadArgs),
}

#[derive(Debug, Args)]
pub struct FacesArgs {
    /// Dataset directory: DIR/<identity>/<identity>_NNNN.jpg.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Pairs file (LFW pairs.txt format); default DIR/pairs.txt.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Decide at this similarity instead of the manifest's threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Write the ROC curve here (PNG, or SVG by extension); the score
    /// histogram goes beside it with `-hist` appended to the name.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Face alignment to evaluate: `dlib5` (shipped: dlib's published
    /// template on the nearest mesh points) or `calibrated`.
    #[arg(long, default_value = "dlib5", value_parser = parse_alignment)]
    pub alignment: Alignment,
    /// Worker threads (1 gives honest per-image latency).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Args)]
pub struct PadArgs {
    /// Dataset directory: DIR/live/* (bona fide faces) and DIR/spoof/*
    /// (attacks); every non-hidden file there is a sample.
    #[arg(long)]
    pub dataset: PathBuf,
    /// The face_pad model to evaluate, shipped or not (an id from `edgeid
    /// models list`); default: the shipped one.
    #[arg(long)]
    pub model: Option<String>,
    /// Decide at this live score instead of the manifest's threshold.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Write the DET curve (BPCER against APCER) here (PNG, or SVG by
    /// extension).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

pub fn run(global: &GlobalArgs, cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Faces(args) => faces(global, args),
        EvalCommand::Pad(args) => pad(global, args),
    }
}

fn faces(global: &GlobalArgs, args: FacesArgs) -> anyhow::Result<()> {
    let pairs_file = args
        .pairs
        .clone()
        .unwrap_or_else(|| args.dataset.join("pairs.txt"));
    let pairs = read_pairs(&args.dataset, &pairs_file)?;
    let config = PipelineConfig {
        alignment: args.alignment,
        ..PipelineConfig::default()
    };
    let pipeline = load_pipeline_with(global, config)?;
    let threshold = Threshold::resolve(
        args.threshold,
        pipeline.embedder_spec(),
        OperatingPoint(DEFAULT_OPERATING_POINT),
    )
    .context("the manifest has no threshold for the embedder; pass --threshold")?;
    let images = pairs.len() * 2;
    let bar = counter(images as u64, "images", global.json);
    let report = evaluate(&pipeline, &pairs, threshold.value, args.threads, &|| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    if let Some(plot) = &args.plot {
        plot_faces(plot, &report)?;
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        dataset: &'a Path,
        pairs_file: &'a Path,
        threshold_source: &'a str,
        #[serde(flatten)]
        report: &'a FaceEvalReport,
    }
    let out = Out {
        dataset: &args.dataset,
        pairs_file: &pairs_file,
        threshold_source: &threshold.source,
        report: &report,
    };
    emit(global.json, &out, |o| {
        let m = &o.report.metrics;
        let s = &o.report.images;
        println!(
            "pairs: {} genuine, {} impostor ({})",
            m.genuine_pairs,
            m.impostor_pairs,
            o.pairs_file.display()
        );
        println!(
            "accuracy {:.2} % at threshold {:.4} ({})",
            m.accuracy * 100.0,
            m.threshold,
            o.threshold_source
        );
        println!("  FAR {:.2} %, FRR {:.2} %", m.far * 100.0, m.frr * 100.0);
        println!(
            "best accuracy {:.2} % at {:.4}",
            m.best_accuracy * 100.0,
            m.best_threshold
        );
        println!(
            "TAR {:.2} % at FAR 1e-2 (threshold {:.4})",
            m.tar_at_far_1e2 * 100.0,
            m.threshold_at_far_1e2
        );
        println!(
            "TAR {:.2} % at FAR 1e-3 (threshold {:.4})",
            m.tar_at_far_1e3 * 100.0,
            m.threshold_at_far_1e3
        );
        println!(
            "EER {:.2} % (threshold {:.4})",
            m.eer * 100.0,
            m.eer_threshold
        );
        println!(
            "images: {}, no face found: {}, errors: {}, unscored pairs: {}",
            s.images,
            s.no_face.len(),
            s.errors.len(),
            m.unscored_pairs
        );
        for p in &s.no_face {
            println!("  no face: {}", p.display());
        }
        for (p, e) in &s.errors {
            println!("  error: {}: {e}", p.display());
        }
        println!(
            "time per image ({} thread(s)): mean {:.1} ms, p50 {:.1} ms, p99 {:.1} ms",
            o.report.threads, s.mean_ms, s.p50_ms, s.p99_ms
        );
    })?;
    Ok(())
}

fn plot_faces(plot: &Path, report: &FaceEvalReport) -> anyhow::Result<()> {
    let curve = roc(&report.genuine_scores, &report.impostor_scores);
    roc_chart(
        plot,
        "Face verification ROC",
        "false accept rate",
        "true accept rate",
        &[Series {
            label: format!("edgeid (EER {:.2} %)", report.metrics.eer * 100.0),
            points: curve.iter().map(|p| (p.far, p.tar)).collect(),
        }],
    )?;
    let hist = sibling(plot, "hist");
    score_histogram(
        &hist,
        "Similarity scores",
        [
            ("genuine", &report.genuine_scores),
            ("impostor", &report.impostor_scores),
        ],
        report.metrics.threshold,
    )?;
    Ok(())
}

fn pad(global: &GlobalArgs, args: PadArgs) -> anyhow::Result<()> {
    let samples = read_pad_dataset(&args.dataset)?;
    let manifest = open_manifest(global)?;
    let scorer = load_scorer(&manifest, args.model.as_deref())?.with_context(|| {
        format!(
            "no shipped face_pad model; pass --model with one of: {} (`edgeid models list`)",
            pad_model_ids(&manifest)
        )
    })?;
    let pipeline = load_pipeline_with(global, PipelineConfig::default())?;
    let bar = counter(samples.len() as u64, "images", global.json);
    let results = score_all(&pipeline, &scorer, &samples, args.threads, &|| bar.inc(1));
    bar.finish_and_clear();
    let (live, spoof) = class_scores(&results);
    let spec = scorer.spec();
    let threshold = match Threshold::resolve(
        args.threshold,
        spec,
        OperatingPoint(PAD_OPERATING_POINT),
    ) {
        Some(t) => t,
        None => {
            // Without a measured threshold, report at this set's own EER
            // point, and say so: it is calibrated on the data it measures.
            let eer = PadMetrics::compute(&live, &spoof, 0.5).eer_threshold;
            tracing::warn!(
                model = %spec.id,
                "the manifest has no {PAD_OPERATING_POINT} threshold for this model; using this dataset's EER point"
            );
            Threshold {
                value: eer,
                source: format!(
                    "this dataset's EER point (the manifest has no {PAD_OPERATING_POINT} threshold for {}; pass --threshold)",
                    spec.id
                ),
            }
        }
    };
    let metrics = PadMetrics::compute(&live, &spoof, threshold.value);
    if let Some(plot) = &args.plot {
        roc_chart(
            plot,
            &format!("PAD DET curve: {}", spec.id),
            "APCER (attacks accepted as live)",
            "BPCER (bona fide faces rejected)",
            &[Series {
                label: format!(
                    "{} (AUC {:.3}, EER {:.1} %)",
                    spec.id,
                    metrics.auc,
                    metrics.eer * 100.0
                ),
                points: det_curve(&live, &spoof),
            }],
        )?;
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        dataset: &'a Path,
        model: &'a str,
        shipped: bool,
        threshold_source: &'a str,
        face_crop_scale: f32,
        metrics: &'a PadMetrics,
        images: PadImageStats,
        samples: &'a [PadSampleResult],
    }
    let out = Out {
        dataset: &args.dataset,
        model: &spec.id,
        shipped: spec.shipped,
        threshold_source: &threshold.source,
        face_crop_scale: PAD_CROP_SCALE,
        metrics: &metrics,
        images: PadImageStats::from_results(&results),
        samples: &results,
    };
    emit(global.json, &out, |o| {
        let m = o.metrics;
        let s = &o.images;
        println!(
            "model {} ({}; higher score = more live)",
            o.model,
            if o.shipped {
                "shipped"
            } else {
                "not shipped: evaluation only"
            }
        );
        println!(
            "images: {} live, {} spoof ({})",
            m.live_images,
            m.spoof_images,
            o.dataset.display()
        );
        println!("threshold {:.4} ({})", m.threshold, o.threshold_source);
        let n = |rate: f64, total: usize| (rate * total as f64).round() as usize;
        println!(
            "  APCER {:.2} % ({} of {} attacks accepted as live)",
            m.apcer * 100.0,
            n(m.apcer, m.spoof_images),
            m.spoof_images
        );
        println!(
            "  BPCER {:.2} % ({} of {} bona fide faces rejected)",
            m.bpcer * 100.0,
            n(m.bpcer, m.live_images),
            m.live_images
        );
        println!("  ACER  {:.2} %", m.acer * 100.0);
        let scored = m
            .auc_scored_only
            .map(|a| format!("{a:.3}"))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "AUC {:.3} (scored faces only {scored}; 0.5 = no signal, below = attacks look more live)",
            m.auc
        );
        println!(
            "EER {:.2} % (threshold {:.4})",
            m.eer * 100.0,
            m.eer_threshold
        );
        println!(
            "BPCER {:.2} % at APCER <= 5 % (threshold {:.4}); APCER {:.2} % at BPCER <= 5 % (threshold {:.4})",
            m.bpcer_at_apcer_5pct * 100.0,
            m.threshold_at_apcer_5pct,
            m.apcer_at_bpcer_5pct * 100.0,
            m.threshold_at_bpcer_5pct
        );
        println!(
            "faces: {} of {} found ({} only with a border added), no face: {} ({} live, {} spoof), unreadable: {}",
            s.faces_found,
            s.images,
            s.faces_found_with_border,
            s.no_face.len(),
            s.no_face_live,
            s.no_face_spoof,
            s.errors.len()
        );
        for p in &s.no_face {
            println!("  no face: {}", p.display());
        }
        for (p, e) in &s.errors {
            println!("  error: {}: {e}", p.display());
        }
        println!(
            "time per image (decode, face search, PAD): mean {:.1} ms, p50 {:.1} ms, p99 {:.1} ms",
            s.mean_ms, s.p50_ms, s.p99_ms
        );
    })?;
    Ok(())
}

fn parse_alignment(s: &str) -> Result<Alignment, String> {
    match s {
        "calibrated" => Ok(Alignment::Calibrated),
        "dlib5" => Ok(Alignment::Dlib5Point),
        other => Err(format!(
            "unknown alignment {other:?}: use calibrated or dlib5"
        )),
    }
}

/// `roc.png` → `roc-hist.png`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("plot");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("png");
    path.with_file_name(format!("{stem}-{suffix}.{ext}"))
}
