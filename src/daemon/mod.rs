//! The long-running service (`edgeid run`): a capture thread feeding an
//! engine thread (pipeline, decisions, store), and the sinks (D-Bus, MQTT)
//! on a tokio runtime carrying requests in and verdicts out.
//!
//! - `config`: the `[camera]`, `[mqtt]`, `[dbus]` and `[daemon]` sections.
//! - `api`: jobs the sinks submit, the errors they get back.
//! - `engine`, `enroll`, `decide`: the engine thread and its decisions.
//! - `source`: the capture source the config names.
//! - `notify`: sd_notify (READY, STATUS, WATCHDOG, STOPPING).
//!
//! Start-up order: models and gallery first, then the sinks, then
//! `READY=1`. SIGTERM/SIGINT: stop taking requests, answer those already
//! taken (with `timeout` verdicts if need be), flush the MQTT queue, exit 0.

pub mod api;
pub mod config;
pub mod decide;
pub mod engine;
pub mod enroll;
pub mod notify;
pub mod source;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::infer::{Manifest, default_backend};
use crate::pipeline::{FacePipeline, PipelineConfig};
use crate::sources::Capture;
use crate::store::{Kek, Store, keys};
use crate::verdict::Jwk;

use api::{EngineHandle, EngineInfo, Limits, Origin, VerdictOut};
use decide::Decider;
use engine::Engine;
use notify::Notifier;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("start-up failed: {0}")]
    Setup(String),
    #[error("D-Bus: {0}")]
    Dbus(String),
    #[error("MQTT: {0}")]
    Mqtt(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct RunOptions {
    pub config: Config,
    pub state_dir: PathBuf,
    pub models_dir: PathBuf,
}

/// Env var naming the wedge file (test hook; see `Engine::turn`).
pub const WEDGE_ENV: &str = "EDGEID_TEST_WEDGE_FILE";

/// Told the moments each verdict passed on its way to a bus, on the
/// daemon's own monotonic clock (`edgeid bench --daemon` runs the daemon
/// in-process and lines these up with what its subscriber receives).
/// Called on the sink's task after the socket write: keep it short.
pub trait LatencyObserver: Send + Sync {
    fn verdict_published(&self, mark: &PublishMark);
}

/// One verdict's way out through the MQTT sink.
#[derive(Debug, Clone)]
pub struct PublishMark {
    /// The compact JWS, as published.
    pub verdict: String,
    pub origin: Origin,
    /// When the frame the decision used was captured (None: no frame, e.g. a timeout).
    pub frame_captured_at: Option<Instant>,
    /// The sink took the verdict from the engine.
    pub at_sink: Instant,
    /// The verdict was in the on-disk queue.
    pub queued: Instant,
    /// The PUBLISH was written to the broker's socket.
    pub published: Instant,
}

/// Optional extras for running the daemon inside another program; `run`
/// uses none of them.
#[derive(Default)]
pub struct RunHooks {
    /// Told when each verdict is handed to the MQTT socket.
    pub observer: Option<Arc<dyn LatencyObserver>>,
    /// Resolving (or dropping the sender) stops the daemon as SIGTERM does.
    pub stop: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// Runs the daemon until SIGTERM / SIGINT; Ok means a clean stop.
pub fn run(opts: RunOptions) -> Result<(), DaemonError> {
    run_with(opts, RunHooks::default())
}

/// [`run`] with a latency observer and / or a stop channel.
pub fn run_with(opts: RunOptions, hooks: RunHooks) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("edgeid-io")
        .build()?;
    runtime.block_on(run_async(opts, hooks))
}

async fn run_async(opts: RunOptions, hooks: RunHooks) -> Result<(), DaemonError> {
    let notifier = Arc::new(Notifier::from_env());
    let shutdown = Arc::new(AtomicBool::new(false));
    notifier.status("loading models and opening the gallery");
    let mut outlets = Vec::new();
    let (mqtt_tx, mqtt_rx) = mpsc::unbounded_channel::<VerdictOut>();
    if opts.config.mqtt.enabled {
        outlets.push(mqtt_tx.clone());
    }
    let (dbus_tx, dbus_rx) = mpsc::unbounded_channel::<VerdictOut>();
    if opts.config.dbus.enabled {
        outlets.push(dbus_tx);
    }
    let (handle, engine_thread) =
        start_engine(&opts, Arc::clone(&notifier), Arc::clone(&shutdown), outlets).await?;

    let dbus = if opts.config.dbus.enabled {
        Some(crate::sinks::dbus::serve(&opts.config.dbus, handle.clone(), dbus_rx).await?)
    } else {
        None
    };
    let mqtt = if opts.config.mqtt.enabled {
        let queue_store =
            Store::open(&opts.state_dir).map_err(|e| DaemonError::Setup(e.to_string()))?;
        Some(crate::sinks::mqtt::start_observed(
            &opts.config,
            handle.clone(),
            queue_store,
            mqtt_tx,
            mqtt_rx,
            hooks.observer.clone(),
        )?)
    } else {
        None
    };
    notifier.ready(&format!("serving as {}", handle.info.device_id));
    tracing::info!(device = %handle.info.device_id, "edgeid ready");
    let camera_watch = handle.info.camera.clone().map(|probe| {
        tokio::spawn(status::watch_camera(
            probe,
            Arc::clone(&notifier),
            handle.info.device_id.clone(),
        ))
    });

    wait_for_stop(hooks.stop).await?;
    tracing::info!("stopping: answering requests already taken, then flushing the verdict queue");
    if let Some(watch) = camera_watch {
        watch.abort();
    }
    notifier.stopping();
    handle.stop_accepting();
    shutdown.store(true, Ordering::Relaxed);
    // The engine answers what it holds, then exits; the sinks deliver those answers.
    let joined = tokio::task::spawn_blocking(move || engine_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the engine thread did not stop cleanly");
    }
    if let Some(mqtt) = mqtt {
        mqtt.shutdown(Duration::from_millis(opts.config.daemon.shutdown_grace_ms))
            .await;
    }
    drop(dbus);
    tracing::info!("edgeid stopped");
    Ok(())
}

/// SIGTERM, SIGINT, or the embedding program's stop channel.
async fn wait_for_stop(
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stopped = async {
        match stop {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = stopped => tracing::info!("stop requested by the embedding program"),
    }
    Ok(())
}

/// Loads everything on the engine thread (the store connection lives and
/// dies there) and waits until it reports ready or failed.
async fn start_engine(
    opts: &RunOptions,
    notifier: Arc<Notifier>,
    shutdown: Arc<AtomicBool>,
    outlets: Vec<mpsc::UnboundedSender<VerdictOut>>,
) -> Result<(EngineHandle, std::thread::JoinHandle<()>), DaemonError> {
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel(opts.config.daemon.max_pending_requests);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<EngineInfo, DaemonError>>();
    let config = opts.config.clone();
    let state_dir = opts.state_dir.clone();
    let models_dir = opts.models_dir.clone();
    let wedge_file = std::env::var_os(WEDGE_ENV).map(PathBuf::from);
    let thread = std::thread::Builder::new()
        .name("edgeid-engine".into())
        .spawn(move || {
            let (decider, capture, info) = match load(&config, &state_dir, &models_dir) {
                Ok(parts) => parts,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(info));
            Engine::new(
                decider, capture, config, job_rx, notifier, shutdown, outlets, wedge_file,
            )
            .run();
        })?;
    let info = ready_rx
        .await
        .map_err(|_| DaemonError::Setup("the engine thread died while starting".into()))??;
    let limits = Limits {
        default_timeout: Duration::from_millis(u64::from(opts.config.daemon.default_timeout_ms)),
        max_timeout: Duration::from_millis(u64::from(opts.config.daemon.max_timeout_ms)),
    };
    Ok((EngineHandle::new(job_tx, info, limits), thread))
}

fn load(
    config: &Config,
    state_dir: &std::path::Path,
    models_dir: &std::path::Path,
) -> Result<(Decider, Capture, EngineInfo), DaemonError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| DaemonError::Setup(format!("{what}: {e}"));
    let kek =
        Kek::locate(config.kek_file.as_deref()).map_err(|e| setup("key-encryption key", &e))?;
    let store = Store::open(state_dir).map_err(|e| setup("store", &e))?;
    let ring = keys::unlock(&store, &kek).map_err(|e| setup("device keys", &e))?;
    let manifest = Manifest::open(models_dir).map_err(|e| setup("models", &e))?;
    let mut pipeline_config = PipelineConfig::default();
    pipeline_config.detector.range = config.daemon.detector;
    let pipeline = FacePipeline::load(&manifest, default_backend().as_ref(), pipeline_config)
        .map_err(|e| setup("face models (run `edgeid models check`)", &e))?;
    let models = manifest
        .models()
        .iter()
        .map(|s| format!("{} {} {}", role_name(s.role), s.id, s.sha256))
        .collect();
    let info = EngineInfo {
        version: crate::build_info::LONG_VERSION.to_owned(),
        device_id: ring.device_id.clone(),
        device_key_jwk: serde_json::to_string(&Jwk::from_public_key(&ring.public_key()))
            .unwrap_or_default(),
        models,
        identify_enabled: config.identify_enabled,
        camera: None,
    };
    let decider = Decider::new(store, ring, pipeline, config)?;
    tracing::info!(
        templates = decider.gallery().len(),
        subjects = decider.gallery().subject_count(),
        "gallery open"
    );
    let capture = Capture::spawn(
        source::factory(&config.camera),
        source::backoff(&config.camera),
    )?;
    let info = EngineInfo {
        camera: Some(capture.probe()),
        ..info
    };
    Ok((decider, capture, info))
}

fn role_name(role: crate::infer::ModelRole) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
