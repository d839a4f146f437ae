//! Latency of the face pipeline: each stage and the whole, over many runs
//! on one frame, reported as percentiles.

use std::time::Duration;

use image::RgbImage;
use serde::Serialize;

use super::metrics::percentile;
use crate::pipeline::{FacePipeline, StageTimings};
use crate::vision::VisionError;

#[derive(Debug, Clone, Serialize)]
pub struct StageLatency {
    pub stage: &'static str,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineBench {
    pub threads: usize,
    pub runs: usize,
    pub frame: (u32, u32),
    pub stages: Vec<StageLatency>,
}

/// Runs the pipeline `warmup` times unmeasured, then `runs` times measured.
/// Fails if any run finds no face: a benchmark of the no-face path would
/// flatter the figures.
pub fn bench_pipeline(
    pipeline: &FacePipeline,
    frame: &RgbImage,
    threads: usize,
    warmup: usize,
    runs: usize,
    progress: &dyn Fn(),
) -> Result<PipelineBench, BenchError> {
    for _ in 0..warmup {
        pipeline.analyse(frame)?;
    }
    let mut samples: Vec<StageTimings> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let analysis = pipeline.analyse(frame)?;
        if analysis.face.is_none() {
            return Err(BenchError::NoFace);
        }
        samples.push(analysis.timings);
        progress();
    }
    let stage_count = StageTimings::default().stages().len();
    let stages = (0..stage_count)
        .map(|i| {
            let name = StageTimings::default().stages()[i].0;
            let mut ms: Vec<f64> = samples.iter().map(|t| to_ms(t.stages()[i].1)).collect();
            ms.sort_by(f64::total_cmp);
            StageLatency {
                stage: name,
                mean_ms: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
                p50_ms: percentile(&ms, 50.0),
                p99_ms: percentile(&ms, 99.0),
                max_ms: ms.last().copied().unwrap_or(f64::NAN),
            }
        })
        .collect();
    Ok(PipelineBench {
        threads,
        runs,
        frame: frame.dimensions(),
        stages,
    })
}

fn to_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Places a photo on a `width`×`height` grey canvas, scaled to fit, the way
/// a camera frame would hold a person standing at the device.
pub fn camera_frame(photo: &RgbImage, width: u32, height: u32) -> RgbImage {
    let scale = (width as f32 / photo.width() as f32).min(height as f32 / photo.height() as f32);
    let (w, h) = (
        ((photo.width() as f32 * scale) as u32).max(1),
        ((photo.height() as f32 * scale) as u32).max(1),
    );
    let resized = image::imageops::resize(photo, w, h, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(width, height, image::Rgb([110, 110, 110]));
    image::imageops::overlay(
        &mut canvas,
        &resized,
        ((width - w) / 2) as i64,
        ((height - h) / 2) as i64,
    );
    canvas
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Vision(#[from] VisionError),
    #[error("the benchmark frame has no detectable face; give a photo with one clear face")]
    NoFace,
}
