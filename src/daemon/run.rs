//! Start-up, serving and shutdown: the engine thread first (models, store,
//! gallery, camera), then the sinks it feeds, then `READY=1`; on SIGTERM /
//! SIGINT, stop taking requests, answer those already taken (with
//! `timeout` verdicts if need be), flush the MQTT queue, return.
//!
//! The daemon wires the sinks: each gets its own config section, the
//! engine handle and its channels (verdicts, challenge hints); none of
//! them sees the daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::api::{
    ChallengeHint, EngineHandle, EngineInfo, Limits, REPLAY_CAPACITY, ReplayGuard, VerdictOut,
};
use crate::config::Config;
use crate::decision::Modalities;
use crate::decision::factors::FactorFusion;
use crate::infer::{Backend, Manifest, ModelRole, backend_for};
use crate::pipeline::FacePipeline;
use crate::sinks::mqtt::LatencyObserver;
use crate::sinks::{dbus, mqtt};
use crate::sources::Capture;
use crate::sources::audio::{AudioSource, Microphone};
use crate::store::{Kek, Store, keys};
use crate::verdict::Jwk;
use crate::voice::{VoiceEmbedder, VoicePipeline};

use super::DaemonError;
use super::decide::Decider;
use super::engine::Engine;
use super::notify::Notifier;
use super::status;

pub struct RunOptions {
    pub config: Config,
    pub state_dir: PathBuf,
    pub models_dir: PathBuf,
}

/// Env var naming the wedge file (test hook; see `Engine::turn`). Read by
/// debug builds only (the test suite's): a release binary has no hook an
/// environment variable could use to stall the door (scripts/check-deb
/// checks the string is absent from the packaged binary).
pub const WEDGE_ENV: &str = "EDGEID_TEST_WEDGE_FILE";

#[cfg(debug_assertions)]
fn wedge_file() -> Option<PathBuf> {
    std::env::var_os(WEDGE_ENV).map(PathBuf::from)
}

#[cfg(not(debug_assertions))]
fn wedge_file() -> Option<PathBuf> {
    None
}

/// Challenge hints not yet sent as signals, beyond which the oldest are dropped.
const HINT_BACKLOG: usize = 16;

/// Optional extras for running the daemon inside another program; `run`
/// uses none of them.
#[derive(Default)]
pub struct RunHooks {
    /// Told when each verdict is handed to the MQTT socket.
    pub observer: Option<Arc<dyn LatencyObserver>>,
    /// Resolving (or dropping the sender) stops the daemon as SIGTERM does.
    pub stop: Option<oneshot::Receiver<()>>,
}

/// Runs the daemon until SIGTERM / SIGINT; Ok means a clean stop.
pub fn run(opts: RunOptions) -> Result<(), DaemonError> {
    run_with(opts, RunHooks::default())
}

/// [`run`] with a latency observer and / or a stop channel.
pub fn run_with(opts: RunOptions, hooks: RunHooks) -> Result<(), DaemonError> {
    super::memory::settle_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("edgeid-io")
        .build()
        .map_err(DaemonError::Runtime)?;
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
    let (hints, hints_rx) = broadcast::channel::<ChallengeHint>(HINT_BACKLOG);
    let engine = EngineParts {
        notifier: Arc::clone(&notifier),
        shutdown: Arc::clone(&shutdown),
        outlets,
        hints,
    };
    let (handle, engine_thread) = start_engine(&opts, engine).await?;

    let dbus = if opts.config.dbus.enabled {
        Some(dbus::serve(&opts.config.dbus, handle.clone(), dbus_rx, hints_rx).await?)
    } else {
        None
    };
    let mqtt = if opts.config.mqtt.enabled {
        let queue_store = Store::open(&opts.state_dir).map_err(DaemonError::Store)?;
        Some(mqtt::start(
            &opts.config.mqtt,
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
async fn wait_for_stop(stop: Option<oneshot::Receiver<()>>) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
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

/// What the engine thread is given besides its config.
struct EngineParts {
    notifier: Arc<Notifier>,
    shutdown: Arc<AtomicBool>,
    /// Walk-up verdicts go to each of these sinks.
    outlets: Vec<mpsc::UnboundedSender<VerdictOut>>,
    hints: broadcast::Sender<ChallengeHint>,
}

/// Loads everything on the engine thread (the store connection lives and
/// dies there) and waits until it reports ready or failed.
async fn start_engine(
    opts: &RunOptions,
    parts: EngineParts,
) -> Result<(EngineHandle, std::thread::JoinHandle<()>), DaemonError> {
    let (job_tx, job_rx) = std::sync::mpsc::sync_channel(opts.config.daemon.max_pending_requests);
    let (ready_tx, ready_rx) = oneshot::channel::<Result<EngineInfo, DaemonError>>();
    let config = opts.config.clone();
    let state_dir = opts.state_dir.clone();
    let models_dir = opts.models_dir.clone();
    let wedge_file = wedge_file();
    let thread = std::thread::Builder::new()
        .name("edgeid-engine".into())
        .spawn(move || {
            let (decider, capture, mic, info) = match load(&config, &state_dir, &models_dir) {
                Ok(loaded) => loaded,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(info));
            Engine::new(
                decider,
                capture,
                mic,
                config,
                job_rx,
                parts.notifier,
                parts.shutdown,
                parts.outlets,
                parts.hints,
                wedge_file,
            )
            .run();
        })
        .map_err(DaemonError::EngineThread)?;
    let info = ready_rx.await.map_err(|_| DaemonError::EngineDied)??;
    let limits = Limits {
        default_timeout: Duration::from_millis(u64::from(opts.config.daemon.default_timeout_ms)),
        // Cut to the maximum, as any request's timeout is.
        default_voice_timeout: Duration::from_millis(u64::from(
            opts.config
                .daemon
                .default_voice_timeout_ms
                .min(opts.config.daemon.max_timeout_ms),
        )),
        max_timeout: Duration::from_millis(u64::from(opts.config.daemon.max_timeout_ms)),
    };
    let replay = ReplayGuard::new(
        limits.max_timeout,
        Duration::from_secs(opts.config.verdict_lifetime_secs),
        REPLAY_CAPACITY,
    );
    Ok((EngineHandle::new(job_tx, info, limits, replay), thread))
}

fn load(
    config: &Config,
    state_dir: &Path,
    models_dir: &Path,
) -> Result<(Decider, Capture, Option<Microphone>, EngineInfo), DaemonError> {
    let kek = Kek::locate(config.kek_file.as_deref()).map_err(DaemonError::Kek)?;
    let mut store = Store::open(state_dir).map_err(DaemonError::Store)?;
    store.set_counter_config(config.anchor.clone());
    let ring = keys::unlock(&mut store, &kek).map_err(DaemonError::DeviceKeys)?;
    let manifest = Manifest::open(models_dir).map_err(DaemonError::Models)?;
    let mut pipeline_config = config.face.pipeline();
    pipeline_config.detector.range = config.daemon.detector;
    let backend =
        backend_for(&config.inference, Some(state_dir), 1).map_err(DaemonError::Inference)?;
    let pipeline = FacePipeline::load(&manifest, backend.as_ref(), pipeline_config)
        .map_err(DaemonError::Pipeline)?;
    tracing::info!(inference = %backend.info(), "face models loaded");
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
        modalities: config.decision.modalities,
        voice: config.microphone.configured(),
        camera: None,
    };
    let voice = load_voice(config, &manifest, backend.as_ref(), &pipeline)?;
    let decider = Decider::new(store, ring, pipeline, voice, config)?;
    tracing::info!(
        templates = decider.gallery().len(),
        subjects = decider.gallery().subject_count(),
        "gallery open"
    );
    let capture = Capture::spawn(config.camera.factory(), config.camera.backoff())
        .map_err(DaemonError::Capture)?;
    let info = EngineInfo {
        camera: Some(capture.probe()),
        ..info
    };
    Ok((decider, capture, open_microphone(config), info))
}

/// The voice stages and the face+voice fusion, when a microphone is
/// configured. A site that needs both factors cannot start without a
/// fitted fusion.
fn load_voice(
    config: &Config,
    manifest: &Manifest,
    backend: &dyn Backend,
    face: &FacePipeline,
) -> Result<Option<(VoicePipeline, Option<FactorFusion>)>, DaemonError> {
    if !config.microphone.configured() {
        return Ok(None);
    }
    let embedder = VoiceEmbedder::load(manifest, backend)
        .map_err(DaemonError::VoiceModels)?
        .with_threads(config.inference.voice_partial_threads);
    let fusion = if face.extra_specs().is_empty() {
        FactorFusion::find(manifest, face.embedder_spec(), embedder.spec())
    } else {
        None
    };
    if fusion.is_none() && config.decision.modalities == Modalities::FaceAndVoice {
        return Err(DaemonError::NoFactorFusion {
            face: face.embedder_spec().id.clone(),
            voice: embedder.spec().id.clone(),
        });
    }
    tracing::info!(
        model = %embedder.spec().id,
        partial_threads = embedder.threads(),
        "voice model loaded"
    );
    Ok(Some((VoicePipeline::new(embedder), fusion)))
}

/// The microphone; one that cannot be opened now is logged and the daemon
/// starts without it (voice requests are then answered `timeout`, cause
/// `voice_unavailable`), so a missing USB microphone never stops the face
/// door.
fn open_microphone(config: &Config) -> Option<Microphone> {
    match config.microphone.open()? {
        Ok(mic) => {
            tracing::info!(input = %mic.describe(), "microphone open");
            Some(mic)
        }
        Err(e) => {
            tracing::error!(error = %e, "the microphone could not be opened: voice requests will time out");
            None
        }
    }
}

fn role_name(role: ModelRole) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
