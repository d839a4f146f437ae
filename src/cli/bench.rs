//! `edgeid bench`: per-stage and whole-pipeline latency on a 640×480 frame
//! with one face, on 1 and 2 inference threads, and 1:N matching speed.
//!
//! `edgeid bench --daemon`: frame arrival → verdict on MQTT through the
//! real daemon, run in-process on a scratch state directory with a folder
//! camera playing the sample photo (see `edgeid::eval::daemon_bench`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use edgeid::config::Config;
use edgeid::daemon::{self, RunHooks, RunOptions};
use edgeid::eval::bench::{PipelineBench, bench_pipeline, camera_frame};
use edgeid::eval::daemon_bench::{
    DaemonBenchReport, Marks, Plan, PrivateBroker, ScratchDir, Target, add_pipeline_times,
    run_requests,
};
use edgeid::eval::gallery_bench::{GalleryBenchReport, bench_gallery};
use edgeid::eval::plot::{Series, latency_chart};
use edgeid::infer::tract::set_inference_threads;
use edgeid::infer::{BackendChoice, BackendInfo, InferenceConfig, Provider};
use edgeid::sinks::mqtt::LatencyObserver;
use edgeid::sources::load_image;
use edgeid::store::{Kek, KekSource, Store, keys};

use super::GlobalArgs;
use super::flow;
use super::output::emit;
use super::pipeline::{inference_backend, load_pipeline, load_pipeline_on};
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
    /// Measure the daemon instead: frame arrival → verdict on MQTT, through
    /// the real daemon run in-process (scratch state, folder camera).
    #[arg(long)]
    pub daemon: bool,
    /// With --daemon: verify requests, sent one after another.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// With --daemon: unmeasured requests sent first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// With --daemon: MQTT broker HOST:PORT (default: a private mosquitto on
    /// an ephemeral loopback port).
    #[arg(long, requires = "daemon")]
    pub broker: Option<String>,
    /// With --daemon: the camera's frame rate.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// With --daemon: tract threads per model run (default: as `edgeid run`, 1).
    #[arg(long, requires = "daemon")]
    pub inference_threads: Option<usize>,
    /// Inference backend: tract, onnxruntime or auto (default: the config's
    /// `[inference] backend`).
    #[arg(long, value_parser = ["auto", "tract", "onnxruntime"])]
    pub backend: Option<String>,
    /// ONNX Runtime execution providers, most preferred first (default: the
    /// config's `[inference] providers`), e.g. `tensorrt,cuda`.
    #[arg(long, value_delimiter = ',', value_parser = ["tensorrt", "cuda", "cpu"])]
    pub providers: Vec<String>,
    /// Measure the voice stages instead (VAD, mel, embedding) for a 3 s probe.
    #[arg(long, conflicts_with = "daemon")]
    pub voice: bool,
    /// With --voice: the audio whose first 3 s are the probe (default: the
    /// committed golden clip).
    #[arg(long, requires = "voice")]
    pub audio: Option<PathBuf>,
}

impl BenchArgs {
    /// The config's `[inference]` with `--backend` and `--providers` applied.
    pub(super) fn inference(&self, global: &GlobalArgs) -> anyhow::Result<InferenceConfig> {
        let mut inference = Config::load(global.config.as_deref())?.inference;
        let word = |w: &str| toml::Value::String(w.to_owned());
        if let Some(b) = &self.backend {
            inference.backend = BackendChoice::deserialize(word(b))?;
        }
        if !self.providers.is_empty() {
            inference.providers = self
                .providers
                .iter()
                .map(|p| Provider::deserialize(word(p)))
                .collect::<Result<_, _>>()?;
        }
        inference.validate()?;
        Ok(inference)
    }
}

/// The daemon bench's subject, camera frame size and enrolment photos.
const SUBJECT: &str = "obama";
const FRAME: (u32, u32) = (640, 480);
const ENROL_PHOTOS: [&str; 2] = ["obama2.jpg", "obama3.jpg"];

#[derive(Serialize)]
struct BenchReport {
    image: PathBuf,
    pipeline: Vec<BackendRun>,
    gallery: Vec<GalleryBenchReport>,
}

/// One thread count's figures and what ran the models.
#[derive(Serialize)]
struct BackendRun {
    inference: BackendInfo,
    #[serde(flatten)]
    bench: PipelineBench,
}

pub fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<()> {
    if args.daemon {
        return run_daemon(global, &args);
    }
    if args.voice {
        return super::bench_voice::run(global, &args);
    }
    let image_path = match args.image.clone() {
        Some(p) => p,
        None => default_sample("obama.jpg")?,
    };
    let photo = load_image(&image_path)?;
    let frame = camera_frame(&photo, 640, 480);
    let inference = args.inference(global)?;
    let mut report = BenchReport {
        image: image_path,
        pipeline: Vec::new(),
        gallery: Vec::new(),
    };
    for &threads in &args.threads {
        anyhow::ensure!(threads >= 1, "--threads must be at least 1");
        set_inference_threads(threads);
        // ONNX Runtime fixes its thread count when a session is built.
        let backend = inference_backend(global, &inference, threads)?;
        let pipeline = load_pipeline_on(global, backend.as_ref())?;
        let bar = counter(
            args.runs as u64,
            &format!("runs ({threads} thread(s))"),
            global.json,
        );
        let result = bench_pipeline(&pipeline, &frame, threads, 10, args.runs, &|| bar.inc(1))
            .with_context(|| format!("benchmarking on {}", report.image.display()))?;
        bar.finish_and_clear();
        report.pipeline.push(BackendRun {
            inference: backend.info(),
            bench: result,
        });
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
                label: format!("{}, {} thread(s)", b.inference.backend, b.bench.threads),
                points: b
                    .bench
                    .stages
                    .iter()
                    .map(|s| (s.p50_ms, s.p99_ms))
                    .collect(),
            })
            .collect();
        let names: Vec<&str> = report
            .pipeline
            .first()
            .map(|b| b.bench.stages.iter().map(|s| s.stage).collect())
            .unwrap_or_default();
        let title = match report.pipeline.first() {
            Some(b) => format!("Face pipeline latency (640×480, {})", b.inference),
            None => "Face pipeline latency (640×480)".to_owned(),
        };
        latency_chart(plot, &title, &names, &series)?;
    }
    emit(global.json, &report, |r| {
        println!("frame: 640×480 from {}", r.image.display());
        for run in &r.pipeline {
            let b = &run.bench;
            println!("inference: {}", run.inference);
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

fn run_daemon(global: &GlobalArgs, args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    let photo_path = match args.image.clone() {
        Some(p) => p,
        None => default_sample("obama.jpg")?,
    };
    let enrol: Vec<PathBuf> = ENROL_PHOTOS
        .iter()
        .map(|p| default_sample(p))
        .collect::<anyhow::Result<_>>()?;
    let scratch = ScratchDir::new("edgeid-bench").context("creating a scratch directory")?;
    let dir = scratch.path();

    // Keys, the enrolled subject and the camera frame, as an operator would set them up.
    let kek_path = dir.join("kek");
    write_kek(&kek_path)?;
    let kek = Kek::read(&kek_path, KekSource::ConfigFile(kek_path.clone()), true)?;
    let state_dir = dir.join("state");
    let device_id = keys::random_device_id()?;
    let (public_key, kid) = {
        let mut store = Store::create(&state_dir)?;
        let ring = keys::init(&mut store, &kek, &device_id, false)?;
        let pipeline = load_pipeline(global)?;
        let request = flow::EnrollRequest {
            subject: SUBJECT,
            files: &enrol,
            replace: false,
            pad: None,
        };
        let enrolled = flow::enroll(&mut store, &ring, &pipeline, &request, true)
            .context("enrolling the bench subject")?;
        tracing::info!(accepted = enrolled.accepted, "bench subject enrolled");
        (ring.public_key(), ring.kid.clone())
    };
    let camera_dir = dir.join("camera");
    std::fs::create_dir(&camera_dir)?;
    let photo = load_image(&photo_path)?;
    camera_frame(&photo, FRAME.0, FRAME.1)
        .save(camera_dir.join("frame.png"))
        .context("writing the camera frame")?;

    let (host, port, private_broker) = match &args.broker {
        Some(b) => {
            let (host, port) = parse_broker(b)?;
            (host, port, None)
        }
        None => {
            let broker_dir = dir.join("broker");
            std::fs::create_dir(&broker_dir)?;
            let broker = PrivateBroker::start(&broker_dir)?;
            ("127.0.0.1".to_owned(), broker.port, Some(broker))
        }
    };
    let mut config = daemon_config(
        dir,
        &kek_path,
        &device_id,
        &camera_dir,
        &host,
        port,
        args.fps,
    )?;
    config.inference = args.inference(global)?;
    let topic_prefix = config.mqtt.topic_prefix.clone();

    if let Some(n) = args.inference_threads {
        anyhow::ensure!(n >= 1, "--inference-threads must be at least 1");
        set_inference_threads(n);
    }
    let marks = Arc::new(Marks::default());
    let observer: Arc<dyn LatencyObserver> = marks.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let opts = RunOptions {
        config,
        state_dir: state_dir.clone(),
        models_dir: global.models_dir(),
    };
    let daemon = std::thread::Builder::new()
        .name("edgeid-daemon".into())
        .spawn(move || {
            daemon::run_with(
                opts,
                RunHooks {
                    observer: Some(observer),
                    stop: Some(stop_rx),
                },
            )
        })
        .context("starting the daemon thread")?;

    let target = Target {
        host: host.clone(),
        port,
        topic_prefix,
        device_id,
        subject: SUBJECT.to_owned(),
        public_key,
        kid,
    };
    let plan = Plan {
        requests: args.requests,
        warmup: args.warmup,
        verdict_timeout: Duration::from_secs(10),
        ready_timeout: Duration::from_secs(120),
        max_pause: Duration::try_from_secs_f64(1.0 / args.fps).unwrap_or_default(),
    };
    let bar = counter(args.requests as u64, "verify requests", global.json);
    let measured = run_requests(&target, &plan, &marks, &|| !daemon.is_finished(), &|| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    let _ = stop_tx.send(());
    let stopped = daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))?;
    let mut samples = match (measured, stopped) {
        (Ok(samples), Ok(())) => samples,
        (Ok(_), Err(e)) => return Err(e).context("the daemon did not stop cleanly"),
        (Err(e), Err(d)) => anyhow::bail!("{e}: the daemon failed: {d}"),
        (Err(e), Ok(())) => return Err(e).context("daemon bench"),
    };
    add_pipeline_times(&Store::open(&state_dir)?, &mut samples)
        .context("reading the pipeline timings from the audit log")?;

    let broker = match private_broker {
        Some(_) => format!("{host}:{port} (private mosquitto)"),
        None => format!("{host}:{port}"),
    };
    let camera = format!(
        "folder camera, {}×{} at {} fps, playing {}",
        FRAME.0,
        FRAME.1,
        args.fps,
        photo_path.display()
    );
    let mut report = DaemonBenchReport::new(samples, args.warmup, broker, camera);
    report.inference_threads = args.inference_threads.unwrap_or(1);
    if let Some(plot) = &args.plot {
        plot_daemon(plot, &report)?;
    }
    emit(global.json, &report, print_daemon)
}

/// 32 random bytes, mode 0600 from the start.
fn write_kek(path: &Path) -> anyhow::Result<()> {
    use ring::rand::SecureRandom;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| anyhow::anyhow!("random number generator failed"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes.as_ref()))
        .with_context(|| format!("writing the bench KEK {}", path.display()))
}

fn parse_broker(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("--broker {text}: expected HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("--broker {text}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "--broker {text}: expected HOST:PORT");
    Ok((host.to_owned(), port))
}

/// The daemon's config as an operator would write it. A still photo shows
/// no liveness, so `[liveness] mode = "off"` goes in whenever this edgeid's
/// config has that section.
fn daemon_config(
    dir: &Path,
    kek: &Path,
    device_id: &str,
    camera: &Path,
    host: &str,
    port: u16,
    fps: f64,
) -> anyhow::Result<Config> {
    let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let base = format!(
        "kek_file = {}\ndevice_id = {}\n\n[camera]\nsource = \"folder\"\npath = {}\nfps = {fps:?}\n\n\
         [mqtt]\nenabled = true\nhost = {}\nport = {port}\n\n[daemon]\nshutdown_grace_ms = 2000\n",
        s(&kek.to_string_lossy()),
        s(device_id),
        s(&camera.to_string_lossy()),
        s(host),
    );
    let with_liveness = format!("{base}\n[liveness]\nmode = \"off\"\n");
    let path = dir.join("edgeid.toml");
    let mut refused = None;
    for text in [with_liveness, base] {
        std::fs::write(&path, &text)?;
        match Config::load(Some(&path)) {
            Ok(config) => return Ok(config),
            Err(e) => refused = Some(e),
        }
    }
    Err(anyhow::Error::new(
        refused.context("no daemon config was tried")?,
    ))
    .context("the bench's daemon config")
}

/// Segments with p50 bars and p99 whiskers, then the two end-to-end figures.
fn plot_daemon(path: &Path, r: &DaemonBenchReport) -> anyhow::Result<()> {
    let mut names: Vec<&str> = r.breakdown.iter().map(|s| short_label(s.name)).collect();
    let mut points: Vec<(f64, f64)> = r
        .breakdown
        .iter()
        .map(|s| (s.stats.p50_ms, s.stats.p99_ms))
        .collect();
    names.extend(["FRAME→BUS", "request→verdict"]);
    points.extend([
        (r.frame_to_bus.p50_ms, r.frame_to_bus.p99_ms),
        (r.request_to_verdict.p50_ms, r.request_to_verdict.p99_ms),
    ]);
    let points = points
        .into_iter()
        .map(|(a, b)| (finite(a), finite(b)))
        .collect();
    latency_chart(
        path,
        &format!(
            "edgeid daemon: frame → verdict on MQTT ({} requests)",
            r.requests
        ),
        &names,
        &[Series {
            label: format!("{} verify requests", r.requests),
            points,
        }],
    )?;
    Ok(())
}

/// Axis labels short enough not to run into each other.
fn short_label(segment: &str) -> &str {
    match segment {
        "request_to_frame" => "request→frame",
        "engine_other" => "engine rest",
        "sink_to_socket" => "sink→socket",
        "sink_to_disk" => "queue fsync",
        "broker_to_subscriber" => "broker→bench",
        other => other,
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn print_daemon(r: &DaemonBenchReport) {
    println!("broker: {}", r.broker);
    println!("camera: {}", r.camera);
    println!("inference threads per model run: {}", r.inference_threads);
    let decisions: Vec<String> = r
        .decisions
        .iter()
        .map(|(d, n)| format!("{n} {d}"))
        .collect();
    println!(
        "{} verify requests (after {} warm-up), {} verdicts verified (signature, nonce): {}",
        r.requests,
        r.warmup,
        r.verified,
        decisions.join(", ")
    );
    println!(
        "  {:<22} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p99", "max", "mean"
    );
    let row = |name: &str, s: &edgeid::eval::daemon_bench::Stats| {
        println!(
            "  {:<22} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6.2} ms",
            name, s.p50_ms, s.p99_ms, s.max_ms, s.mean_ms
        );
    };
    row("frame → bus", &r.frame_to_bus);
    row("request → verdict", &r.request_to_verdict);
    println!("  where the time goes:");
    for s in &r.breakdown {
        row(s.name, &s.stats);
    }
    println!(
        "target: frame → bus p99 ≤ {:.0} ms: {} (p99 {:.1} ms)",
        r.target_p99_ms,
        if r.meets_target { "met" } else { "NOT met" },
        r.frame_to_bus.p99_ms
    );
}
