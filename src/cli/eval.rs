//! `edgeid eval faces | pad`: accuracy on labelled data, with plots.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::{OperatingPoint, Threshold};
use edgeid::eval::faces::{FaceEvalReport, evaluate, read_pairs};
use edgeid::eval::metrics::roc;
use edgeid::eval::plot::{Series, roc_chart, score_histogram};
use edgeid::pipeline::PipelineConfig;
use edgeid::vision::align::Alignment;

use super::GlobalArgs;
use super::output::emit;
use super::pipeline::load_pipeline_with;
use super::progress::counter;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Face verification on an LFW-layout dataset and a pairs file.
    Faces(FacesArgs),
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

pub fn run(global: &GlobalArgs, cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Faces(args) => faces(global, args),
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
