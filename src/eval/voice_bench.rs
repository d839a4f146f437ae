//! Latency of the voice stages for one probe (`edgeid bench --voice`):
//! normalisation + voice activity trim, mel front end, embedding, and the
//! whole, from 16 kHz samples already captured.

use serde::Serialize;

use super::bench::StageLatency;
use super::metrics::percentile;
use crate::voice::{VoiceError, VoicePipeline};

#[derive(Debug, Clone, Serialize)]
pub struct VoiceBench {
    pub probe_s: f64,
    pub speech_s: f64,
    pub partials: usize,
    /// Partials embedded side by side (`[inference] voice_partial_threads`).
    pub partial_threads: usize,
    pub runs: usize,
    pub stages: Vec<StageLatency>,
}

/// Embeds `probe` `warmup` times unmeasured, then `runs` times measured.
pub fn bench_voice(
    pipeline: &VoicePipeline,
    probe: &[f32],
    warmup: usize,
    runs: usize,
    tick: &dyn Fn(),
) -> Result<VoiceBench, VoiceError> {
    for _ in 0..warmup {
        pipeline.embed(probe, 0.0)?;
    }
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut last = None;
    for _ in 0..runs {
        let print = pipeline.embed(probe, 0.0)?;
        let t = print.timings;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        for (i, v) in [
            ms(t.vad),
            ms(t.mel),
            ms(t.embed),
            ms(t.vad + t.mel + t.embed),
        ]
        .into_iter()
        .enumerate()
        {
            times[i].push(v);
        }
        last = Some(print);
        tick();
    }
    let stages = ["vad+trim", "mel", "embed", "total"]
        .into_iter()
        .zip(times.iter_mut())
        .map(|(stage, ms)| {
            ms.sort_by(f64::total_cmp);
            StageLatency {
                stage,
                mean_ms: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
                p50_ms: percentile(ms, 50.0),
                p99_ms: percentile(ms, 99.0),
                max_ms: ms.last().copied().unwrap_or(f64::NAN),
            }
        })
        .collect();
    Ok(VoiceBench {
        probe_s: probe.len() as f64 / crate::voice::RATE as f64,
        speech_s: last.as_ref().map_or(0.0, |p| p.speech_s),
        partials: last.as_ref().map_or(0, |p| p.partials),
        partial_threads: pipeline.embedder().threads(),
        runs,
        stages,
    })
}
