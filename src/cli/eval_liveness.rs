//! `edgeid eval liveness`: liveness end to end on clips. `--generate DIR`
//! renders a dataset from photos (live heads and every attack kind);
//! `--dataset DIR` plays one through the pipeline and the liveness track.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use edgeid::decision::liveness::{LivenessMode, LivenessPolicy};
use edgeid::eval::liveness::dataset::{
    clip_path, read_dataset, read_frames, write_clip, write_png_frames,
};
use edgeid::eval::liveness::report::LivenessReport;
use edgeid::eval::liveness::run::{ClipResult, check_for, run_clip, sweep_key, with_threshold};
use edgeid::eval::liveness::{ClipKind, ClipSpec, Subject, render_clip};
use edgeid::eval::plot::det_chart;
use edgeid::sources::load_image;
use edgeid::vision::liveness::TurnSide;

use super::GlobalArgs;
use super::output::emit;
use super::pipeline::load_pipeline;
use super::progress::counter;

#[derive(Debug, Args)]
pub struct LivenessArgs {
    /// Dataset to evaluate: DIR/live/* and DIR/attack/<kind>/* (kinds:
    /// print_moved, print_tilted, print_curved, screen_replay, still);
    /// clips are Y4M files or folders of numbered frames, with an optional
    /// `<clip>.side` (image_left / image_right) for the challenge mode.
    #[arg(long, required_unless_present = "generate")]
    pub dataset: Option<PathBuf>,
    /// Render a dataset into DIR instead (from `--photo`), then stop.
    #[arg(long, value_name = "DIR", conflicts_with = "dataset")]
    pub generate: Option<PathBuf>,
    /// Photos the generated clips show (each needs one clear face).
    #[arg(long = "photo")]
    pub photos: Vec<PathBuf>,
    /// Clips per kind to generate.
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Seed of the generated clips (the same seed, the same clips).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Generated frame size, WxH.
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Generated clip length in seconds.
    #[arg(long, default_value_t = 4.0)]
    pub seconds: f32,
    /// Frame rate the clips are played at (and generated at).
    #[arg(long, default_value_t = 15)]
    pub fps: u32,
    /// Write generated clips as folders of numbered PNG frames instead of
    /// Y4M files.
    #[arg(long)]
    pub png: bool,
    /// Liveness mode to judge with (default: the config's `[liveness] mode`).
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Write the DET curve over the mode's main threshold (min_parallax for
    /// motion, min_turn for challenge) here (PNG, or SVG by extension).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    Motion,
    Challenge,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("use WxH, e.g. 640x480")?;
    let parse = |v: &str| v.parse::<u32>().ok().filter(|&n| (32..=4096).contains(&n));
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("{s:?}: width and height must be 32..=4096")),
    }
}

pub fn liveness(global: &GlobalArgs, args: LivenessArgs) -> anyhow::Result<()> {
    match (&args.generate, &args.dataset) {
        (Some(dir), _) => generate(global, &args, dir),
        (None, Some(dir)) => evaluate(global, &args, dir),
        (None, None) => anyhow::bail!("give --dataset DIR or --generate DIR"),
    }
}

fn generate(global: &GlobalArgs, args: &LivenessArgs, dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.photos.is_empty(),
        "--generate needs at least one --photo"
    );
    let pipeline = load_pipeline(global)?;
    let subjects = args
        .photos
        .iter()
        .map(|p| {
            let photo = load_image(p).with_context(|| format!("reading {}", p.display()))?;
            Subject::from_photo(&pipeline, photo).with_context(|| format!("{}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spec = ClipSpec {
        size: args.size,
        fps: args.fps as f32,
        seconds: args.seconds,
    };
    let kinds: Vec<ClipKind> = std::iter::once(ClipKind::Live)
        .chain(ClipKind::ATTACKS)
        .collect();
    let bar = counter((kinds.len() * args.count) as u64, "clips", global.json);
    for kind in kinds {
        for n in 0..args.count {
            let subject = &subjects[n % subjects.len()];
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(n as u64);
            let clip = render_clip(subject, kind, spec, seed)?;
            let path = clip_path(dir, kind, n);
            if args.png {
                write_png_frames(&path.with_extension(""), &clip)?;
            } else {
                write_clip(&path, &clip, args.fps)?;
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if !global.json {
        println!("wrote {} clips per kind to {}", args.count, dir.display());
    }
    Ok(())
}

/// Thresholds the DET sweeps, around the default of each mode.
fn sweep_values(mode: LivenessMode) -> Vec<f32> {
    let (lo, step, n) = match mode {
        LivenessMode::Challenge => (0.05, 0.05, 12),
        _ => (0.005, 0.005, 16),
    };
    (0..n).map(|i| lo + step * i as f32).collect()
}

fn evaluate(global: &GlobalArgs, args: &LivenessArgs, dir: &Path) -> anyhow::Result<()> {
    let clips = read_dataset(dir)?;
    let config = super::state::load_config(global)?;
    let mut policy: LivenessPolicy = config.liveness;
    policy.mode = match args.mode {
        Some(Mode::Motion) => LivenessMode::Motion,
        Some(Mode::Challenge) => LivenessMode::Challenge,
        None => policy.mode,
    };
    anyhow::ensure!(
        policy.mode != LivenessMode::Off,
        "liveness mode is off: give --mode motion or challenge"
    );
    let key = sweep_key(policy.mode);
    let values = sweep_values(policy.mode);
    let policies: Vec<LivenessPolicy> = std::iter::once(policy)
        .chain(values.iter().map(|&v| with_threshold(policy, v)))
        .collect();
    let pipeline = load_pipeline(global)?;
    let bar = counter(clips.len() as u64, "clips", global.json);
    let mut results = Vec::with_capacity(clips.len());
    for (i, clip) in clips.iter().enumerate() {
        let frames = read_frames(&clip.path)?;
        // A live clip is asked for the side it turns to; an attack for
        // the other side (a replay that turns the wrong way), or
        // alternately when it has no side.
        let side = match (clip.kind, clip.side) {
            (ClipKind::Live, side) => side,
            (_, Some(TurnSide::ImageLeft)) => Some(TurnSide::ImageRight),
            (_, Some(TurnSide::ImageRight)) => Some(TurnSide::ImageLeft),
            (_, None) if i.is_multiple_of(2) => Some(TurnSide::ImageLeft),
            (_, None) => Some(TurnSide::ImageRight),
        };
        anyhow::ensure!(
            policy.mode != LivenessMode::Challenge || side.is_some(),
            "{}: the challenge mode needs the side a live clip turns to ({} with image_left or image_right)",
            clip.path.display(),
            clip.path.with_extension("side").display()
        );
        let check = check_for(policy.mode, side);
        let run = run_clip(
            &pipeline,
            &frames,
            f64::from(args.fps),
            check,
            &policies,
            &|| {},
        )
        .with_context(|| format!("analysing {}", clip.path.display()))?;
        let mut outcomes = run.outcomes.into_iter();
        let Some((outcome, decided_after, figures)) = outcomes.next() else {
            continue;
        };
        results.push(ClipResult {
            path: clip.path.display().to_string(),
            kind: clip.kind,
            frames: frames.len(),
            analysed: run.analysed,
            detected: run.detected,
            meshed: run.meshed,
            outcome,
            decided_after,
            figures: Some(figures),
            sweep: outcomes.map(|o| o.0).collect(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let threshold = match policy.mode {
        LivenessMode::Challenge => policy.min_turn,
        _ => policy.min_parallax,
    };
    let report = LivenessReport::compute(policy.mode.as_str(), key, threshold, &values, &results);
    if let Some(plot) = &args.plot {
        det_chart(
            plot,
            &format!(
                "Liveness ({}) DET over {key}: {}",
                policy.mode.as_str(),
                dir.display()
            ),
            &report.det_series(),
        )?;
    }
    #[derive(serde::Serialize)]
    struct Out<'a> {
        dataset: &'a Path,
        report: &'a LivenessReport,
        clips: &'a [ClipResult],
    }
    let out = Out {
        dataset: dir,
        report: &report,
        clips: &results,
    };
    emit(global.json, &out, |o| print_human(o.dataset, o.report))
}

fn print_human(dataset: &Path, r: &LivenessReport) {
    let pct = |v: f64| format!("{:.1} %", v * 100.0);
    println!(
        "dataset    {} (mode {}, {} = {})",
        dataset.display(),
        r.mode,
        r.threshold_key,
        r.threshold
    );
    println!(
        "live       {} clips: {} accepted, {} refused as attacks, {} timed out; BPCER {}",
        r.live_clips,
        r.live_accepted,
        r.live_refused,
        r.live_timed_out,
        pct(r.bpcer)
    );
    if let Some(t) = &r.time_to_decision {
        println!(
            "time       to a live decision (clip seconds): median {:.2} s, p90 {:.2} s, max {:.2} s ({} clips)",
            t.median, t.p90, t.max, t.clips
        );
    }
    println!(
        "detection  BlazeFace found a face on {} of analysed live frames, the mesh confirmed {}",
        pct(r.detection_rate),
        pct(r.mesh_rate)
    );
    for a in &r.attacks {
        println!(
            "{:<14} {} clips: {} accepted, {} refused, {} timed out; APCER {}",
            a.kind.name(),
            a.clips,
            a.accepted,
            a.refused,
            a.timed_out,
            pct(a.apcer)
        );
    }
}
