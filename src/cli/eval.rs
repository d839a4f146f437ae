//! `edgeid eval faces | pad | voice`: accuracy on labelled data, with plots.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::{OperatingPoint, Threshold};
use edgeid::eval::faces::{
    CompareReport, FaceEvalReport, Variant, compare, default_variants, evaluate, read_pairs,
};
use edgeid::eval::metrics::{VerificationMetrics, det, roc};
use edgeid::eval::pad::{
    PAD_OPERATING_POINT, PadImageStats, PadMetrics, PadSampleResult, class_scores, det_curve,
    read_pad_dataset, score_all,
};
use edgeid::eval::plot::{Series, det_chart, roc_chart, score_histogram};
use edgeid::pipeline::{EmbedderChoice, FaceSelection, PipelineConfig, SubjectRule};
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
    /// Speaker verification on DIR/<speaker>/*.flac|wav: EER, TAR at FAR
    /// 1e-2 and 1e-3, the DET curve.
    Voice(super::eval_voice::VoiceArgs),
    /// Face only, voice only and face+voice on virtual persons (a face
    /// identity paired with a speaker): EER and TAR at FAR side by side,
    /// and the fitted fusion for the manifest.
    Fused(super::eval_fused::FusedArgs),
    /// Liveness end to end on clips (DIR/live, DIR/attack/<kind>): BPCER,
    /// APCER per attack kind, time to decision, the DET curve; or render
    /// such a dataset from photos with --generate.
    Liveness(super::eval_liveness::LivenessArgs),
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
    /// Write the ROC curve here (PNG, or SVG by extension); the DET curve
    /// and the score histogram go beside it with `-det` and `-hist`
    /// appended to the name.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Which face of an image is the subject: `central` (the LFW
    /// protocol's subject, the face nearest the image centre), `largest`
    /// or `large_and_central` (the daemon's and the verbs' default).
    #[arg(long, default_value = "central")]
    pub selection: SubjectRule,
    /// Test-time flip augmentation on or off (default: the manifest's
    /// `flip_tta` for the embedder, with which its thresholds were measured).
    #[arg(long)]
    pub flip_tta: Option<bool>,
    /// Run several configurations in one pass and print one table (and one
    /// ROC and DET chart with --plot): comma-separated, each `+`-joined
    /// words (dlib, mobilefacenet or fused; a selection rule; flip or
    /// noflip; cosine or euclidean), e.g.
    /// `largest+noflip,central+flip,mobilefacenet+flip,fused+noflip`.
    /// Without a value: dlib under every rule with and without flip, and
    /// Euclidean; MobileFaceNet and fused with and without flip. A fused
    /// configuration fits its fusion on these pairs' images and prints it
    /// as a manifest `[[fusion]]` entry.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "CONFIGS")]
    pub compare: Option<String>,
    /// The embedder to evaluate: `dlib` or `mobilefacenet` (the fusion is
    /// evaluated, and fitted, by `--compare fused`).
    #[arg(long, default_value = "dlib")]
    pub embedder: EmbedderChoice,
    /// Face alignment to evaluate: `dlib5` (shipped: dlib's published
    /// template on the nearest mesh points) or `calibrated`.
    #[arg(long, default_value = "dlib5", value_parser = parse_alignment)]
    pub alignment: Alignment,
    /// Worker threads (1 gives honest per-image latency).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// With --compare: also write every image's raw embeddings (per
    /// selection rule and model, as is and mirrored) to this JSON file, to
    /// study a fusion without running the models again. They are biometric
    /// data of the dataset's people: keep the file with the dataset.
    #[arg(long, requires = "compare", value_name = "FILE")]
    pub views_out: Option<PathBuf>,
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
        EvalCommand::Voice(args) => super::eval_voice::voice(global, args),
        EvalCommand::Fused(args) => super::eval_fused::fused(global, args),
        EvalCommand::Liveness(args) => super::eval_liveness::liveness(global, args),
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
        faces: FaceSelection {
            rule: args.selection,
            ..FaceSelection::default()
        },
        flip_tta: args.flip_tta,
        // --compare runs every embedder its configurations name.
        embedder: if args.compare.is_some() {
            EmbedderChoice::Fused
        } else {
            args.embedder
        },
        ..PipelineConfig::default()
    };
    if args.compare.is_none() && args.embedder == EmbedderChoice::Fused {
        anyhow::bail!("the fusion is evaluated with --compare fused (or fused+noflip)");
    }
    let pipeline = load_pipeline_with(global, config)?;
    let threshold = Threshold::resolve(
        args.threshold,
        pipeline.embedder_spec(),
        OperatingPoint(DEFAULT_OPERATING_POINT),
    )
    .context("the manifest has no threshold for the embedder; pass --threshold")?;
    if let Some(list) = &args.compare {
        return faces_compare(
            global,
            &args,
            &pairs_file,
            &pairs,
            &pipeline,
            &threshold,
            list,
        );
    }
    let images = distinct_images(&pairs);
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
        selection: SubjectRule,
        flip_tta: bool,
        #[serde(flatten)]
        report: &'a FaceEvalReport,
    }
    let out = Out {
        dataset: &args.dataset,
        pairs_file: &pairs_file,
        threshold_source: &threshold.source,
        selection: args.selection,
        flip_tta: pipeline.embedder().flip(),
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
            "face selection: {} ({}); flip TTA {}",
            o.selection,
            selection_note(o.selection),
            if o.flip_tta { "on" } else { "off" }
        );
        println!(
            "accuracy {:.2} % (95 % CI {}) at threshold {:.4} ({})",
            m.accuracy * 100.0,
            interval(m.accuracy_ci95),
            m.threshold,
            o.threshold_source
        );
        println!("  FAR {:.2} %, FRR {:.2} %", m.far * 100.0, m.frr * 100.0);
        println!(
            "best accuracy {:.2} % (95 % CI {}) at {:.4}",
            m.best_accuracy * 100.0,
            interval(m.best_accuracy_ci95),
            m.best_threshold
        );
        let resolution = 1.0 / m.impostor_pairs.max(1) as f64;
        println!(
            "TAR {:.2} % at FAR 1e-2 (threshold {:.4}), {:.2} % at FAR 1e-3 (threshold {:.4}) on the protocol's {} impostor pairs (FAR resolution {:.1e})",
            m.tar_at_far_1e2 * 100.0,
            m.threshold_at_far_1e2,
            m.tar_at_far_1e3 * 100.0,
            m.threshold_at_far_1e3,
            m.impostor_pairs,
            resolution
        );
        println!(
            "EER {:.2} % (threshold {:.4})",
            m.eer * 100.0,
            m.eer_threshold
        );
        let a = &o.report.all_pairs;
        println!(
            "all {} cross-identity image pairs (FAR resolution {:.1e}) and {} same-identity pairs:",
            a.impostor_pairs, a.far_resolution, a.genuine_pairs
        );
        println!(
            "  threshold {:.4} at FAR 1e-3, TAR {:.2} % there; {:.4} at FAR 1e-2, TAR {:.2} %",
            a.threshold_at_far_1e3,
            a.tar_at_far_1e3 * 100.0,
            a.threshold_at_far_1e2,
            a.tar_at_far_1e2 * 100.0
        );
        println!(
            "  at {:.4}: FAR {:.2e} ({} accepted), TAR {:.2} %",
            a.threshold,
            a.far_at_threshold,
            a.impostors_accepted,
            a.tar_at_threshold * 100.0
        );
        if !o.report.misclassified.is_empty() {
            println!("wrong at {:.4}:", m.threshold);
        }
        for p in &o.report.misclassified {
            let name = |path: &Path| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            println!(
                "  {} {} vs {}: {:.4}",
                if p.genuine {
                    "same person "
                } else {
                    "two people  "
                },
                name(&p.a),
                name(&p.b),
                p.score
            );
        }
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
    det_chart(
        &sibling(plot, "det"),
        "Face verification DET",
        &[Series {
            label: format!("edgeid (EER {:.2} %)", report.metrics.eer * 100.0),
            points: det(&report.genuine_scores, &report.impostor_scores),
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

/// How many images the pairs name (the progress bar's total).
fn distinct_images(pairs: &[edgeid::eval::faces::Pair]) -> usize {
    let names: std::collections::BTreeSet<&Path> = pairs
        .iter()
        .flat_map(|p| [p.a.as_path(), p.b.as_path()])
        .collect();
    names.len()
}

fn selection_note(rule: SubjectRule) -> &'static str {
    match rule {
        SubjectRule::Central => "the LFW protocol's subject: the face nearest the image centre",
        SubjectRule::Largest => "the largest face",
        SubjectRule::LargeAndCentral => "the daemon's default: large and central",
    }
}

/// `[98.07, 99.64] %`.
fn interval((lo, hi): (f64, f64)) -> String {
    format!("[{:.2}, {:.2}] %", lo * 100.0, hi * 100.0)
}

fn faces_compare(
    global: &GlobalArgs,
    args: &FacesArgs,
    pairs_file: &Path,
    pairs: &[edgeid::eval::faces::Pair],
    pipeline: &edgeid::pipeline::FacePipeline,
    threshold: &Threshold,
    list: &str,
) -> anyhow::Result<()> {
    let variants: Vec<Variant> = if list.trim().is_empty() {
        default_variants()
    } else {
        list.split(',')
            .map(str::parse)
            .collect::<Result<_, String>>()
            .map_err(anyhow::Error::msg)?
    };
    let metric = pipeline.embedder().metric();
    let images = distinct_images(pairs);
    let bar = counter(images as u64, "images", global.json);
    let manifest = open_manifest(global)?;
    // Each configuration at its shipped threshold: the command line's for
    // dlib, else the manifest's for its embedder (or fusion).
    let shipped = |v: &Variant| -> Option<f32> {
        if v.metric != metric {
            return None;
        }
        let ids = v.embedder.model_ids();
        let point = DEFAULT_OPERATING_POINT;
        match ids {
            [id] if *id == EmbedderChoice::DLIB_ID => Some(threshold.value),
            [id] => manifest
                .by_id(id, edgeid::infer::ModelRole::FaceEmbedder)
                .ok()
                .and_then(|s| s.thresholds.get(point).map(|t| t.value)),
            _ => manifest
                .fusion(ids)
                .and_then(|f| f.thresholds.get(point).map(|t| t.value)),
        }
    };
    let report = compare(pipeline, pairs, &variants, &shipped, args.threads, &|| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    if let Some(path) = &args.views_out {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &report.views)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(plot) = &args.plot {
        let series = |curve: CurveFn| -> Vec<Series> {
            report
                .variants
                .iter()
                .map(|v| Series {
                    label: format!("{} (EER {:.2} %)", v.label, v.metrics.eer * 100.0),
                    points: curve(&v.genuine_scores, &v.impostor_scores),
                })
                .collect()
        };
        let tar = |g: &[f32], i: &[f32]| roc(g, i).iter().map(|p| (p.far, p.tar)).collect();
        roc_chart(
            plot,
            "Face verification ROC",
            "false accept rate",
            "true accept rate",
            &series(tar),
        )?;
        det_chart(&sibling(plot, "det"), "Face verification DET", &series(det))?;
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        dataset: &'a Path,
        pairs_file: &'a Path,
        threshold: f32,
        threshold_metric: edgeid::infer::manifest::Metric,
        threshold_source: &'a str,
        #[serde(flatten)]
        report: &'a CompareReport,
    }
    let out = Out {
        dataset: &args.dataset,
        pairs_file,
        threshold: threshold.value,
        threshold_metric: metric,
        threshold_source: &threshold.source,
        report: &report,
    };
    emit(global.json, &out, |o| {
        let r = o.report;
        println!(
            "{} pairs, {} images ({}); one pass, every configuration on the same faces",
            pairs.len(),
            r.images,
            o.pairs_file.display()
        );
        println!(
            "threshold {:.4} for {} ({}); other metrics at their own all-pairs FAR 1e-3 threshold (*)",
            o.threshold, o.threshold_metric, o.threshold_source
        );
        println!(
            "{:<34} {:>8} {:>18} {:>7} {:>7} {:>8} {:>7} {:>9} | {:>9} {:>8} {:>7} {:>7}",
            "configuration",
            "acc %",
            "95 % CI",
            "FAR %",
            "FRR %",
            "best %",
            "EER %",
            "FAR all",
            "t@1e-3",
            "acc %",
            "FAR %",
            "TAR %"
        );
        for v in &r.variants {
            let m: &VerificationMetrics = &v.metrics;
            let a = &v.at_all_pairs_threshold;
            let own = if v.all_pairs.threshold != v.all_pairs.threshold_at_far_1e3
                || v.variant.metric == o.threshold_metric
            {
                ""
            } else {
                "*"
            };
            println!(
                "{:<34} {:>7.2}{own:1} {:>18} {:>7.2} {:>7.2} {:>8.2} {:>7.2} {:>9.1e} | {:>9.4} {:>8.2} {:>7.2} {:>7.2}",
                v.label,
                m.accuracy * 100.0,
                interval(m.accuracy_ci95),
                m.far * 100.0,
                m.frr * 100.0,
                m.best_accuracy * 100.0,
                m.eer * 100.0,
                v.all_pairs.far_at_threshold,
                v.all_pairs.threshold_at_far_1e3,
                a.accuracy * 100.0,
                a.far * 100.0,
                (1.0 - a.frr) * 100.0
            );
        }
        if let Some(v) = r.variants.first() {
            println!(
                "FAR all: at the threshold, over all {} cross-identity image pairs (resolution {:.1e}); right of |: at their FAR 1e-3 threshold, on the protocol's pairs",
                v.all_pairs.impostor_pairs, v.all_pairs.far_resolution
            );
        }
        for v in &r.variants {
            if let Some(cv) = &v.cross_validation {
                println!(
                    "{}: {}-fold cross-validation by identity (fusion and FAR 1e-3 threshold fitted without the pair's first person): accuracy {:.2} % (95 % CI {}), {} false accepts, {} false rejects of {} pairs; fold thresholds {:.3?}",
                    v.label,
                    cv.folds,
                    cv.accuracy * 100.0,
                    interval(cv.accuracy_ci95),
                    cv.false_accepts,
                    cv.false_rejects,
                    cv.pairs,
                    cv.thresholds
                );
            }
            if let Some(f) = &v.fusion {
                let entry =
                    toml::to_string(&serde_json::json!({ "fusion": [f] })).unwrap_or_default();
                println!("{}: manifest entry fitted on all images:\n{entry}", v.label);
            }
        }
        for (rule, n) in &r.no_face {
            if *n > 0 {
                println!("no face found with {rule}: {n} image(s)");
            }
        }
        for (p, e) in &r.errors {
            println!("  error: {}: {e}", p.display());
        }
    })?;
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

/// A curve over (genuine, impostor) scores: ROC or DET points.
type CurveFn = fn(&[f32], &[f32]) -> Vec<(f64, f64)>;
