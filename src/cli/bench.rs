//! `edgeid bench`: per-stage and whole-pipeline latency on a 640×480 frame
//! with one face, on 1 and 2 inference threads, and 1:N matching speed.
//!
//! `edgeid bench --daemon`: frame arrival → verdict on MQTT through the
//! real daemon, run in-process on a scratch state directory with a folder
//! camera playing the sample photo (see `edgeid::eval::daemon_bench`).
//! `edgeid bench --daemon --voice`: the same for voice verify requests,
//! the probe's last audio → verdict, with a synthetic speaker (espeak-ng)
//! talking in real time into a FIFO microphone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use edgeid::config::{Config, FaceConfig};
use edgeid::daemon::{self, RunHooks, RunOptions};
use edgeid::decision::threshold::DEFAULT_OPERATING_POINT;
use edgeid::eval::bench::{PipelineBench, bench_pipeline, camera_frame};
use edgeid::eval::daemon_bench::speaker::{self, Speaker, Speech, VoiceFeed};
use edgeid::eval::daemon_bench::{
    BenchModality, DaemonBenchReport, Feed, Marks, NoFeed, Plan, PrivateBroker, ScratchDir, Target,
    add_pipeline_times, run_requests,
};
use edgeid::eval::gallery_bench::{GalleryBenchReport, bench_gallery};
use edgeid::eval::plot::{Series, latency_chart};
use edgeid::infer::tract::set_inference_threads;
use edgeid::infer::{BackendChoice, BackendInfo, InferenceConfig, Provider};
use edgeid::pipeline::EmbedderChoice;
use edgeid::sinks::mqtt::LatencyObserver;
use edgeid::sources::load_image;
use edgeid::store::{Kek, KekSource, KeyRing, Store, keys};

use super::GlobalArgs;
use super::flow;
use super::output::emit;
use super::pipeline::{inference_backend, load_pipeline, load_pipeline_on, load_voice};
use super::progress::counter;
use super::samples::default_sample;
use super::voice_flow;

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
    /// the real daemon run in-process (scratch state, folder camera); with
    /// --voice, voice verify requests (FIFO microphone, espeak-ng speaker).
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
    /// Measure the voice stages instead (VAD, mel, embedding) for a 3 s
    /// probe; with --daemon, voice verify requests through the daemon.
    #[arg(long)]
    pub voice: bool,
    /// With --voice: the audio whose first 3 s are the probe (default: the
    /// committed golden clip).
    #[arg(long, requires = "voice", conflicts_with = "daemon")]
    pub audio: Option<PathBuf>,
    /// The face embedder(s) measured: dlib, mobilefacenet or fused
    /// (default: the config's `[face] embedder`).
    #[arg(long, conflicts_with_all = ["voice", "daemon"])]
    pub embedder: Option<EmbedderChoice>,
    /// Test-time flip augmentation on or off (default: the config's
    /// `[face] flip_tta`, else the manifest's for each embedder); with
    /// --daemon, the daemon's.
    #[arg(long, conflicts_with = "voice")]
    pub flip_tta: Option<bool>,
    /// With --voice: partial utterances embedded side by side (default:
    /// the config's `[inference] voice_partial_threads`, 2).
    #[arg(long, requires = "voice")]
    pub voice_partial_threads: Option<usize>,
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
        if let Some(n) = self.voice_partial_threads {
            inference.voice_partial_threads = n;
        }
        inference.validate()?;
        Ok(inference)
    }
}

/// The daemon bench's subject, camera frame size and enrolment photos.
const SUBJECT: &str = "obama";
const FRAME: (u32, u32) = (640, 480);
const ENROL_PHOTOS: [&str; 2] = ["obama2.jpg", "obama3.jpg"];
/// The voice bench's subject (the espeak-ng voice enrolled).
const VOICE_SUBJECT: &str = "speaker";
/// Longest wait for a voice verdict: the probe takes 3-4 s to say.
const VOICE_VERDICT_TIMEOUT: Duration = Duration::from_secs(20);
/// The voice requests' `timeout_ms`: the probe starts 0.2 s after the
/// request and needs 2.7 s of speech, checked every 0.5 s of audio, so the
/// daemon's default of 3 s would cut most probes off at the deadline.
const VOICE_REQUEST_TIMEOUT_MS: u32 = 8000;
/// The voice bench's random pause before a request: one microphone chunk.
const VOICE_MAX_PAUSE: Duration = Duration::from_millis(100);

#[derive(Serialize)]
struct BenchReport {
    image: PathBuf,
    /// The face embedders run on each frame.
    embedders: Vec<EmbedderRun>,
    pipeline: Vec<BackendRun>,
    gallery: Vec<GalleryBenchReport>,
}

/// A face embedder of the measured pipeline.
#[derive(Serialize)]
struct EmbedderRun {
    model: String,
    flip_tta: bool,
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
    let site = Config::load(global.config.as_deref())?.face;
    let face = FaceConfig {
        embedder: args.embedder.unwrap_or(site.embedder),
        flip_tta: args.flip_tta.or(site.flip_tta),
    };
    let mut report = BenchReport {
        image: image_path,
        embedders: Vec::new(),
        pipeline: Vec::new(),
        gallery: Vec::new(),
    };
    for &threads in &args.threads {
        anyhow::ensure!(threads >= 1, "--threads must be at least 1");
        set_inference_threads(threads);
        // ONNX Runtime fixes its thread count when a session is built.
        let backend = inference_backend(global, &inference, threads)?;
        let pipeline = load_pipeline_on(global, backend.as_ref(), &face)?;
        report.embedders = pipeline
            .embedders()
            .iter()
            .map(|e| EmbedderRun {
                model: e.embedder.spec().id.clone(),
                flip_tta: e.embedder.flip(),
            })
            .collect();
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
        let embedders: Vec<String> = r
            .embedders
            .iter()
            .map(|e| {
                format!(
                    "{} (flip {})",
                    e.model,
                    if e.flip_tta { "on" } else { "off" }
                )
            })
            .collect();
        println!("embedders: {}", embedders.join(" + "));
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
    let modality = if args.voice {
        BenchModality::Voice
    } else {
        BenchModality::Face
    };
    if modality == BenchModality::Voice && !speaker::espeak_available() {
        return Err(edgeid::eval::daemon_bench::DaemonBenchError::NoEspeak.into());
    }
    let photo_path = match (modality, args.image.clone()) {
        (_, Some(p)) => Some(p),
        (BenchModality::Face, None) => Some(default_sample("obama.jpg")?),
        // The camera runs but is not asked: a blank frame will do.
        (BenchModality::Voice, None) => None,
    };
    let scratch = ScratchDir::new("edgeid-bench").context("creating a scratch directory")?;
    let dir = scratch.path();

    // Keys, the enrolled subject and the camera frame, as an operator would set them up.
    let kek_path = dir.join("kek");
    write_kek(&kek_path)?;
    let kek = Kek::read(&kek_path, KekSource::ConfigFile(kek_path.clone()), true)?;
    let state_dir = dir.join("state");
    let device_id = keys::random_device_id()?;
    let mut speech = None;
    let (public_key, kid) = {
        let mut store = Store::create(&state_dir)?;
        let ring = keys::init(&mut store, &kek, &device_id, false)?;
        match modality {
            BenchModality::Face => enrol_face(global, &mut store, &ring)?,
            BenchModality::Voice => {
                speech = Some(enrol_voice(global, args, dir, &mut store, &ring)?);
            }
        }
        (ring.public_key(), ring.kid.clone())
    };
    let camera_dir = dir.join("camera");
    std::fs::create_dir(&camera_dir)?;
    let frame = match &photo_path {
        Some(p) => camera_frame(&load_image(p)?, FRAME.0, FRAME.1),
        None => image::RgbImage::from_pixel(FRAME.0, FRAME.1, image::Rgb([96, 96, 96])),
    };
    frame
        .save(camera_dir.join("frame.png"))
        .context("writing the camera frame")?;
    let fifo = dir.join("mic.pcm");
    let mut extra = String::new();
    if modality == BenchModality::Voice {
        use nix::sys::stat::Mode;
        nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR)
            .with_context(|| format!("creating the microphone FIFO {}", fifo.display()))?;
        extra = format!(
            "\n[decision]\nmodalities = \"voice\"\n\n[microphone]\nfifo = {}\n",
            toml::Value::String(fifo.to_string_lossy().into_owned())
        );
    }

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
        &extra,
    )?;
    config.inference = args.inference(global)?;
    // Flip on or off as asked, else as the site's config says.
    config.face.flip_tta = args
        .flip_tta
        .or(Config::load(global.config.as_deref())?.face.flip_tta);
    let voice_partial_threads = config.inference.voice_partial_threads;
    let topic_prefix = config.mqtt.topic_prefix.clone();

    if let Some(n) = args.inference_threads {
        anyhow::ensure!(n >= 1, "--inference-threads must be at least 1");
        set_inference_threads(n);
    }
    // The speaker waits for the daemon to open the microphone.
    let feed: Box<dyn Feed> = match &speech {
        Some(speech) => Box::new(VoiceFeed {
            speaker: Speaker::start(&fifo)?,
            probes: speech
                .probes
                .iter()
                .map(|p| Arc::new(speaker::s16le(p)))
                .collect(),
        }),
        None => Box::new(NoFeed),
    };
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
        subject: match modality {
            BenchModality::Face => SUBJECT,
            BenchModality::Voice => VOICE_SUBJECT,
        }
        .to_owned(),
        timeout_ms: (modality == BenchModality::Voice).then_some(VOICE_REQUEST_TIMEOUT_MS),
        public_key,
        kid,
    };
    let plan = Plan {
        requests: args.requests,
        warmup: args.warmup,
        verdict_timeout: match modality {
            BenchModality::Face => Duration::from_secs(10),
            BenchModality::Voice => VOICE_VERDICT_TIMEOUT,
        },
        ready_timeout: Duration::from_secs(120),
        max_pause: match modality {
            BenchModality::Face => Duration::try_from_secs_f64(1.0 / args.fps).unwrap_or_default(),
            BenchModality::Voice => VOICE_MAX_PAUSE,
        },
    };
    let bar = counter(args.requests as u64, "verify requests", global.json);
    let measured = run_requests(
        &target,
        &plan,
        &marks,
        feed.as_ref(),
        &|| !daemon.is_finished(),
        &|| bar.inc(1),
    );
    bar.finish_and_clear();
    let _ = stop_tx.send(());
    let stopped = daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))?;
    drop(feed);
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
        photo_path
            .as_ref()
            .map_or_else(|| "a blank frame".to_owned(), |p| p.display().to_string())
    );
    let mut report = DaemonBenchReport::new(modality, samples, args.warmup, broker, camera);
    report.inference_threads = args.inference_threads.unwrap_or(1);
    if let Some(speech) = &speech {
        report.microphone = Some(format!(
            "FIFO of 16 kHz S16LE written in real time, 20 ms at a time; each probe starts {} ms after its request (timeout_ms {VOICE_REQUEST_TIMEOUT_MS}); {}",
            speaker::SPEAK_AFTER.as_millis(),
            speech.describe()
        ));
        report.voice_partial_threads = Some(voice_partial_threads);
    }
    if let Some(plot) = &args.plot {
        plot_daemon(plot, &report)?;
    }
    emit(global.json, &report, print_daemon)
}

/// Enrols the face bench's subject from the sample photos.
fn enrol_face(global: &GlobalArgs, store: &mut Store, ring: &KeyRing) -> anyhow::Result<()> {
    let enrol: Vec<PathBuf> = ENROL_PHOTOS
        .iter()
        .map(|p| default_sample(p))
        .collect::<anyhow::Result<_>>()?;
    let pipeline = load_pipeline(global)?;
    let request = flow::EnrollRequest {
        subject: SUBJECT,
        files: &enrol,
        replace: false,
        pad: None,
    };
    let enrolled = flow::enroll(store, ring, &pipeline, &request, true)
        .context("enrolling the bench subject")?;
    tracing::info!(accepted = enrolled.accepted, "bench subject enrolled");
    Ok(())
}

/// Synthesises the voice bench's speech, enrols its subject's voice from
/// the enrolment clips as `edgeid enroll --voice` does, and returns the
/// probes.
fn enrol_voice(
    global: &GlobalArgs,
    args: &BenchArgs,
    dir: &Path,
    store: &mut Store,
    ring: &KeyRing,
) -> anyhow::Result<Speech> {
    let voice = load_voice(global)?;
    let spec = voice.embedder().spec();
    let threshold = spec
        .thresholds
        .get(DEFAULT_OPERATING_POINT)
        .map(|t| t.value)
        .with_context(|| format!("{} has no {DEFAULT_OPERATING_POINT} threshold", spec.id))?;
    let want = speaker::probes_wanted(args.requests + args.warmup);
    let bar = counter(want as u64, "probe sentences", global.json);
    let speech =
        speaker::prepare_speech(&dir.join("speech"), &voice, threshold, want, &|| bar.inc(1))
            .context("synthesising the bench speaker")?;
    bar.finish_and_clear();
    anyhow::ensure!(
        !speech.probes.is_empty(),
        "none of {} synthesised sentences made a usable probe",
        speech.tried
    );
    if speech.probes.len() < want {
        tracing::warn!(
            probes = speech.probes.len(),
            wanted = want,
            "fewer distinct probes than requests: the daemon will call some repeats replays"
        );
    }
    let clips = voice_flow::read_clips(&voice, VOICE_SUBJECT, &speech.enrol_files, true)
        .context("reading the bench speaker's enrolment clips")?;
    voice_flow::enroll_voice(store, ring, &voice, VOICE_SUBJECT, clips, false)
        .context("enrolling the bench speaker")?;
    Ok(speech)
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

/// The bench sends requests back to back, faster than a door would: the
/// default limit (120 a minute) would refuse them after the first hundred
/// or so, so the bench's daemon allows the most the config does.
const BENCH_REQUESTS_PER_MINUTE: u32 = 6000;

/// The daemon's config as an operator would write it. A still photo shows
/// no liveness, so `[liveness] mode = "off"` goes in whenever this edgeid's
/// config has that section.
#[allow(clippy::too_many_arguments)]
fn daemon_config(
    dir: &Path,
    kek: &Path,
    device_id: &str,
    camera: &Path,
    host: &str,
    port: u16,
    fps: f64,
    extra: &str,
) -> anyhow::Result<Config> {
    let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let base = format!(
        "kek_file = {}\ndevice_id = {}\n\n[camera]\nsource = \"folder\"\npath = {}\nfps = {fps:?}\n\n\
         [mqtt]\nenabled = true\nhost = {}\nport = {port}\nrequests_per_minute = {BENCH_REQUESTS_PER_MINUTE}\n\n[daemon]\nshutdown_grace_ms = 2000\n{extra}",
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

/// Segments with p50 bars and p99 whiskers, then the two end-to-end
/// figures. For voice, the seconds spent listening to the speaker (and so
/// request → verdict) are left out: they would flatten every other bar.
fn plot_daemon(path: &Path, r: &DaemonBenchReport) -> anyhow::Result<()> {
    let voice = r.modality == BenchModality::Voice;
    let shown = r
        .breakdown
        .iter()
        .filter(|s| !(voice && s.name == "request_to_frame"));
    let mut names: Vec<&str> = shown
        .clone()
        .map(|s| short_label(s.name, r.modality))
        .collect();
    let mut points: Vec<(f64, f64)> = shown.map(|s| (s.stats.p50_ms, s.stats.p99_ms)).collect();
    let (end_to_end, what) = match r.modality {
        BenchModality::Face => ("FRAME→BUS", "frame"),
        BenchModality::Voice => ("AUDIO→BUS", "voice probe's last audio"),
    };
    names.push(end_to_end);
    points.push((r.frame_to_bus.p50_ms, r.frame_to_bus.p99_ms));
    if !voice {
        names.push("request→verdict");
        points.push((r.request_to_verdict.p50_ms, r.request_to_verdict.p99_ms));
    }
    let points = points
        .into_iter()
        .map(|(a, b)| (finite(a), finite(b)))
        .collect();
    latency_chart(
        path,
        &format!(
            "edgeid daemon: {what} → verdict on MQTT ({} requests)",
            r.requests
        ),
        &names,
        &[Series {
            label: format!("{} {} verify requests", r.requests, modality_word(r)),
            points,
        }],
    )?;
    Ok(())
}

fn modality_word(r: &DaemonBenchReport) -> &'static str {
    match r.modality {
        BenchModality::Face => "face",
        BenchModality::Voice => "voice",
    }
}

/// Axis labels short enough not to run into each other.
fn short_label(segment: &str, modality: BenchModality) -> &str {
    match segment {
        "pipeline" if modality == BenchModality::Voice => "voice stages",
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
    if let Some(m) = &r.microphone {
        println!("microphone: {m}");
    }
    println!("inference threads per model run: {}", r.inference_threads);
    if let Some(n) = r.voice_partial_threads {
        println!("voice partials embedded side by side: {n}");
    }
    let decisions: Vec<String> = r
        .decisions
        .iter()
        .map(|(d, n)| format!("{n} {d}"))
        .collect();
    println!(
        "{} {} verify requests (after {} warm-up), {} verdicts verified (signature, nonce): {}",
        r.requests,
        modality_word(r),
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
    let end_to_end = match r.modality {
        BenchModality::Face => "frame → bus",
        BenchModality::Voice => "probe's audio → bus",
    };
    row(end_to_end, &r.frame_to_bus);
    row("request → verdict", &r.request_to_verdict);
    println!("  where the time goes:");
    for s in &r.breakdown {
        row(s.name, &s.stats);
    }
    println!(
        "target: {end_to_end} p99 ≤ {:.0} ms: {} (p99 {:.1} ms)",
        r.target_p99_ms,
        if r.meets_target { "met" } else { "NOT met" },
        r.frame_to_bus.p99_ms
    );
}
