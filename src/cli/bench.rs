//! `edgeid bench`: per-stage and whole-pipeline latency on a 640×480 frame
//! with one face, on 1 and 2 inference threads, and 1:N matching speed.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use edgeid::decision::gallery_bench::{GalleryBenchReport, bench_gallery};
use edgeid::eval::bench::{PipelineBench, bench_pipeline, camera_frame};
use edgeid::eval::plot::{Series, latency_chart};
use edgeid::infer::tract::set_inference_threads;
use edgeid::sources::load_image;

use super::GlobalArgs;
use super::output::emit;
use super::pipeline::load_pipeline;
use super::progress::counter;
use super::samples::default_sample;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measured runs per thread count.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Photo with one face, placed on a 640×480 frame (default: the sample obama.jpg).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Inference thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Gallery sizes for the 1:N matching benchmark (0 to skip).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub gallery: Vec<usize>,
    /// Write a per-stage latency chart (PNG or SVG).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Serialize)]
struct BenchReport {
    image: PathBuf,
    pipeline: Vec<PipelineBench>,
    gallery: Vec<GalleryBenchReport>,
}

pub fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<()> {
    let image_path = match args.image.clone() {
        Some(p) => p,
        None => default_sample("obama.jpg")?,
    };
    let photo = load_image(&image_path)?;
    let frame = camera_frame(&photo, 640, 480);
    let pipeline = load_pipeline(global)?;
    let mut report = BenchReport {
        image: image_path,
        pipeline: Vec::new(),
        gallery: Vec::new(),
    };
    for &threads in &args.threads {
        set_inference_threads(threads);
        let bar = counter(
            args.runs as u64,
            &format!("runs ({threads} thread(s))"),
            global.json,
        );
        let result = bench_pipeline(&pipeline, &frame, threads, 10, args.runs, &|| bar.inc(1))
            .with_context(|| format!("benchmarking on {}", report.image.display()))?;
        bar.finish_and_clear();
        report.pipeline.push(result);
    }
    set_inference_threads(1);
    for &n in args.gallery.iter().filter(|&&n| n > 0) {
        report
            .gallery
            .push(bench_gallery(n).with_context(|| format!("benchmarking a gallery of {n}"))?);
    }
    if let Some(plot) = &args.plot {
        let series: Vec<Series> = report
            .pipeline
            .iter()
            .map(|b| Series {
                label: format!("{} thread(s)", b.threads),
                points: b.stages.iter().map(|s| (s.p50_ms, s.p99_ms)).collect(),
            })
            .collect();
        let names: Vec<&str> = report
            .pipeline
            .first()
            .map(|b| b.stages.iter().map(|s| s.stage).collect())
            .unwrap_or_default();
        latency_chart(
            plot,
            "Face pipeline latency (640×480, tract CPU)",
            &names,
            &series,
        )?;
    }
    emit(global.json, &report, |r| {
        println!("frame: 640×480 from {}", r.image.display());
        for b in &r.pipeline {
            println!("{} inference thread(s), {} runs:", b.threads, b.runs);
            println!(
                "  {:<10} {:>9} {:>9} {:>9} {:>9}",
                "stage", "mean", "p50", "p99", "max"
            );
            for s in &b.stages {
                println!(
                    "  {:<10} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6.2} ms",
                    s.stage, s.mean_ms, s.p50_ms, s.p99_ms, s.max_ms
                );
            }
        }
        for g in &r.gallery {
            println!(
                "1:N over {} templates ({}-d, one core): p50 {:.2} ms, p99 {:.2} ms; gallery open {:.0} ms (write {:.0} ms), memory locked: {}",
                g.templates,
                g.dim,
                g.one_to_n_p50_ms,
                g.one_to_n_p99_ms,
                g.open_ms,
                g.write_ms,
                g.memory_locked
            );
        }
    })
}
