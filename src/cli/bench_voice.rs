//! `edgeid bench --voice`: latency of the voice stages for a 3 s probe
//! (the first 3 s of --audio, default the committed golden clip), its
//! partials embedded side by side on the config's `[inference]
//! voice_partial_threads` (or `--voice-partial-threads`).

use std::path::PathBuf;

use anyhow::Context;

use edgeid::eval::voice_bench::bench_voice;
use edgeid::infer::tract::set_inference_threads;
use edgeid::sources::audio::load_file;
use edgeid::voice::{RATE, VoiceEmbedder, VoicePipeline};

use super::GlobalArgs;
use super::bench::BenchArgs;
use super::output::emit;
use super::pipeline::{inference_backend, open_manifest};
use super::progress::counter;

const PROBE_S: f64 = 3.0;

pub fn run(global: &GlobalArgs, args: &BenchArgs) -> anyhow::Result<()> {
    let path = args.audio.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/voice/golden.wav")
    });
    let clip = load_file(&path, 600.0).with_context(|| format!("reading {}", path.display()))?;
    let probe = &clip.samples[..clip.samples.len().min((PROBE_S * RATE as f64) as usize)];
    let manifest = open_manifest(global)?;
    let threads = args.threads.first().copied().unwrap_or(1);
    set_inference_threads(threads);
    // --backend / --providers as for the face pipeline.
    let inference = args.inference(global)?;
    let backend = inference_backend(global, &inference, threads)?;
    let embedder = VoiceEmbedder::load(&manifest, backend.as_ref())?
        .with_threads(inference.voice_partial_threads);
    let pipeline = VoicePipeline::new(embedder);
    let bar = counter(args.runs as u64, "runs", global.json);
    let report = bench_voice(&pipeline, probe, 5, args.runs, &|| bar.inc(1))
        .with_context(|| format!("benchmarking the voice stages on {}", path.display()))?;
    bar.finish_and_clear();
    let inference = backend.info();
    emit(global.json, &report, |r| {
        println!(
            "voice probe: {:.1} s from {} ({:.2} s speech after the trim, {} partials), {inference}, {threads} inference thread(s), partials on {} thread(s) side by side, {} runs:",
            r.probe_s,
            path.display(),
            r.speech_s,
            r.partials,
            r.partial_threads,
            r.runs
        );
        println!(
            "  {:<10} {:>9} {:>9} {:>9} {:>9}",
            "stage", "mean", "p50", "p99", "max"
        );
        for s in &r.stages {
            println!(
                "  {:<10} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6.2} ms",
                s.stage, s.mean_ms, s.p50_ms, s.p99_ms, s.max_ms
            );
        }
    })
}
