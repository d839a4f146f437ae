//! Where a model's time goes in tract: loads each shipped model as the
//! backend does (pinned input shape, optimised), runs it on a constant input
//! and prints the time per operator kind, slowest first. For tuning the
//! models and tract's knobs (`TRACT_*` environment variables).
//!
//! `cargo run --release --example op_profile -- [RUNS] [THREADS]`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgeid::infer::{Manifest, manifest::default_models_dir};
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    let runs: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let threads: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1);
    edgeid::infer::tract::set_inference_threads(threads);
    let manifest = Manifest::open(&default_models_dir())?;
    for spec in manifest.models().iter().filter(|m| m.shipped) {
        let bytes = manifest.read_verified(spec)?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))?
            .with_input_fact(0, f32::fact(spec.input.shape.clone()).into())?
            .into_optimized()?
            .into_runnable()?;
        let input: Tensor =
            tract_ndarray::ArrayD::<f32>::from_elem(spec.input.shape.clone(), 0.5).into();
        let mut per_op: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
        let mut total = Duration::ZERO;
        for run in 0..=runs {
            let mut state = model.spawn()?;
            let mut times = Vec::new();
            let t = Instant::now();
            state.run_plan_with_eval(
                tvec!(input.clone().into()),
                |ctx, op_state, node, inputs| {
                    let t = Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    times.push((node.op().name().to_string(), t.elapsed()));
                    out
                },
            )?;
            // The first run warms caches and allocators; it is not counted.
            if run > 0 {
                total += t.elapsed();
                for (name, d) in times {
                    let e = per_op.entry(name).or_default();
                    e.0 += d;
                    e.1 += 1;
                }
            }
        }
        println!(
            "{} ({}): {:.2} ms per run",
            spec.id,
            spec.file,
            total.as_secs_f64() * 1e3 / runs as f64
        );
        let mut rows: Vec<_> = per_op.into_iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1.0));
        for (name, (d, n)) in rows.iter().take(8) {
            println!(
                "  {:<24} {:>7.2} ms  ({} nodes)",
                name,
                d.as_secs_f64() * 1e3 / runs as f64,
                n / runs as usize
            );
        }
    }
    Ok(())
}
