//! `edgeid compare A B`: are these two photos the same person?

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::decision::{OperatingPoint, Reason, Threshold};
use edgeid::pipeline::{FacePipeline, StageTimings};
use edgeid::sources::load_image;
use edgeid::vision::quality::QualityReport;

use super::GlobalArgs;
use super::output::{emit, ms};
use super::pipeline::load_pipeline;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// First photo (JPEG or PNG).
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// Similarity threshold to decide at (default: the manifest's, FAR 1e-3).
    #[arg(long)]
    pub threshold: Option<f32>,
}

#[derive(Serialize)]
struct PhotoReport {
    path: PathBuf,
    width: u32,
    height: u32,
    faces_detected: usize,
    quality: QualityReport,
    timings: StageTimings,
    decode_ms: f64,
}

#[derive(Serialize)]
struct CompareReport {
    a: PhotoReport,
    b: PhotoReport,
    similarity: f32,
    threshold: Threshold,
    decision: &'static str,
    reason: Reason,
}

pub fn run(global: &GlobalArgs, args: CompareArgs) -> anyhow::Result<()> {
    let pipeline = load_pipeline(global)?;
    let (a, ea) = analyse(&pipeline, &args.a)?;
    let (b, eb) = analyse(&pipeline, &args.b)?;
    let spec_threshold = Threshold::resolve(
        args.threshold,
        pipeline.embedder_spec(),
        OperatingPoint(DEFAULT_OPERATING_POINT),
    )
    .context("the manifest has no threshold for the embedder; pass --threshold")?;
    let similarity = ea.cosine(&eb);
    let accepted = spec_threshold.accepts(similarity);
    let report = CompareReport {
        a,
        b,
        similarity,
        threshold: spec_threshold,
        decision: if accepted { "accept" } else { "reject" },
        reason: if accepted {
            Reason::Match
        } else {
            Reason::NoMatch
        },
    };
    emit(global.json, &report, |r| {
        for p in [&r.a, &r.b] {
            println!(
                "{} ({}×{}): {} face(s) detected",
                p.path.display(),
                p.width,
                p.height,
                p.faces_detected
            );
            let q = &p.quality;
            println!(
                "  quality: eyes {:.0} px, sharpness {:.0}, yaw {:.0}°, pitch {:.0}°, roll {:.0}°, brightness {:.0}",
                q.eye_distance_px, q.sharpness, q.yaw_deg, q.pitch_deg, q.roll_deg, q.brightness
            );
            let stages: Vec<String> = p
                .timings
                .stages()
                .iter()
                .map(|(n, d)| format!("{n} {}", ms(*d)))
                .collect();
            println!(
                "  timings: decode {:.2} ms, {}",
                p.decode_ms,
                stages.join(", ")
            );
        }
        println!(
            "similarity {:.4}, threshold {:.4} ({})",
            r.similarity, r.threshold.value, r.threshold.source
        );
        println!("decision: {} ({})", r.decision, r.reason);
    })
}

fn analyse(
    pipeline: &FacePipeline,
    path: &Path,
) -> anyhow::Result<(PhotoReport, edgeid::vision::embed::Embedding)> {
    let started = std::time::Instant::now();
    let image = load_image(path)?;
    let decode_ms = started.elapsed().as_secs_f64() * 1e3;
    let analysis = pipeline
        .analyse(&image)
        .with_context(|| format!("analysing {}", path.display()))?;
    let face = analysis
        .face
        .with_context(|| format!("no face found in {} ({})", path.display(), Reason::NoFace))?;
    Ok((
        PhotoReport {
            path: path.to_owned(),
            width: image.width(),
            height: image.height(),
            faces_detected: analysis.faces_detected,
            quality: face.quality,
            timings: analysis.timings,
            decode_ms,
        },
        face.embedding,
    ))
}
