//! Frame arrival → verdict on the bus, through the real daemon
//! (`edgeid bench --daemon`), and for voice requests the probe's last
//! audio → verdict (`edgeid bench --daemon --voice`: a synthetic speaker
//! on a FIFO microphone, `speaker`).
//!
//! The daemon runs in the same process as the measuring client, so every
//! moment is read from one monotonic clock: the capture time of the frame
//! the engine decided on, the moments the MQTT sink took the verdict and
//! wrote it to the socket (a [`LatencyObserver`]), and the moment the
//! bench's own subscriber received it. Requests go out one after another,
//! each with a fresh nonce; every verdict's signature and nonce are checked.
//!
//! The bench uses two broker connections, one to publish requests and one
//! to receive verdicts, as a controller with separate request and listen
//! paths would; neither waits on the other's TCP acknowledgements.
//!
//! - `broker`: a private Mosquitto and a private scratch directory.
//! - `client`: the measuring MQTT client and the sink's latency marks.
//! - `report`: statistics and the breakdown of where the time goes.
//! - `speaker`: the voice bench's speech and its real-time FIFO writer.

mod broker;
mod client;
mod report;
pub mod speaker;

use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

pub use broker::{PrivateBroker, ScratchDir, mosquitto_available};
pub use client::Marks;
pub use report::{BenchModality, DaemonBenchReport, Segment, Stats, add_pipeline_times};

use crate::store::StoreError;
use crate::verdict::jws::VerdictError;
use client::BenchClient;

/// The acceptance target for frame arrival → verdict on the bus, p99
/// (the voice bench's probe end → verdict is held to the same).
pub const TARGET_P99_MS: f64 = 50.0;

#[derive(Debug, thiserror::Error)]
pub enum DaemonBenchError {
    #[error(
        "mosquitto was not found (looked on PATH, /usr/sbin, /usr/local/sbin): install it \
         (Debian / Ubuntu: `apt-get install mosquitto`) or pass --broker HOST:PORT"
    )]
    NoMosquitto,
    #[error("the private mosquitto did not start: {0}")]
    Broker(String),
    #[error("MQTT client: {0}")]
    Mqtt(String),
    #[error("the daemon was not on the bus within {0} s (no retained `online` status)")]
    NotReady(u64),
    #[error("the daemon stopped while the bench was running")]
    DaemonStopped,
    #[error("no verdict for request {nonce} within {secs} s")]
    NoVerdict { nonce: String, secs: u64 },
    #[error("request {nonce} was refused: {message}")]
    Refused { nonce: String, message: String },
    #[error("the verdict for request {nonce} does not verify: {source}")]
    BadVerdict { nonce: String, source: VerdictError },
    #[error("random number generator failed")]
    Random,
    #[error(
        "espeak-ng was not found: the voice bench's speaker is synthesised with it \
         (Debian / Ubuntu: `apt-get install espeak-ng`)"
    )]
    NoEspeak,
    #[error("the bench's speech: {0}")]
    Speech(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where and whom the bench asks.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub topic_prefix: String,
    pub device_id: String,
    pub subject: String,
    /// The request's `timeout_ms` (None: the daemon's default, 3 s, which
    /// a voice probe of 2.7 s of speech said after the request overruns).
    pub timeout_ms: Option<u32>,
    /// The device's Ed25519 public key and its key id, to verify verdicts.
    pub public_key: [u8; 32],
    pub kid: String,
}

pub struct Plan {
    /// Measured requests.
    pub requests: usize,
    /// Unmeasured requests first (first-run allocations, caches).
    pub warmup: usize,
    /// Longest wait for one verdict.
    pub verdict_timeout: Duration,
    /// Longest wait for the daemon to come on the bus.
    pub ready_timeout: Duration,
    /// A random pause of up to this before each request (one frame period,
    /// or one microphone chunk), so requests fall at random phases of the
    /// camera's frame clock as a person's would, not locked to it by the
    /// previous verdict.
    pub max_pause: Duration,
}

/// What the bench does around each request besides asking: the face
/// bench's camera plays on its own; the voice bench's speaker says a probe.
pub trait Feed {
    /// Request `index` (warm-up ones counted) was published at `at`.
    fn request_sent(&self, _index: usize, _at: Instant) {}
    /// Its verdict is in (or the request failed).
    fn request_done(&self, _index: usize) {}
}

/// Nothing to feed: the camera plays on its own.
pub struct NoFeed;

impl Feed for NoFeed {}

/// One verdict, measured. All times in milliseconds on one clock.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub nonce: String,
    pub seq: u64,
    pub decision: String,
    pub reason: String,
    /// Request published → verdict received by the bench's subscriber.
    pub request_to_verdict_ms: f64,
    /// Frame captured → verdict received (None: no frame was used). For
    /// a voice request the "frame" is the probe's last audio chunk: the
    /// moment the daemon had heard all it decided on.
    pub frame_to_bus_ms: Option<f64>,
    /// Request published → the frame used was captured (request transit
    /// and the wait for a frame captured after the request; for voice,
    /// listening until 2.7 s of speech were held).
    pub request_to_frame_ms: Option<f64>,
    /// Frame captured → the MQTT sink has the verdict (engine).
    pub frame_to_sink_ms: Option<f64>,
    /// Of the engine time: the face pipeline, or the voice stages (from
    /// the audit record).
    pub pipeline_ms: Option<f64>,
    /// The sink has it → the PUBLISH is written to the socket.
    pub sink_to_socket_ms: Option<f64>,
    /// The sink has it → it is in the on-disk queue (overlaps the above
    /// when the verdict goes out ahead of its disk write).
    pub sink_to_disk_ms: Option<f64>,
    /// Socket → the bench's subscriber (broker and client).
    pub socket_to_subscriber_ms: Option<f64>,
}

fn ms(later: Instant, earlier: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64() * 1e3
}

/// Sends the plan's requests one after another and measures each verdict.
/// `daemon_alive` is polled while waiting so a daemon that died ends the
/// run at once; `progress` is called after each measured verdict.
pub fn run_requests(
    target: &Target,
    plan: &Plan,
    marks: &Marks,
    feed: &dyn Feed,
    daemon_alive: &dyn Fn() -> bool,
    progress: &dyn Fn(),
) -> Result<Vec<Sample>, DaemonBenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = BenchClient::connect(target).await?;
        client.wait_online(plan.ready_timeout, daemon_alive).await?;
        let tag = random_tag()?;
        let mut samples = Vec::with_capacity(plan.requests);
        let random = SystemRandom::new();
        for i in 0..plan.warmup + plan.requests {
            let nonce = format!("bench-{tag}-{i}");
            let mut bytes = [0u8; 4];
            random
                .fill(&mut bytes)
                .map_err(|_| DaemonBenchError::Random)?;
            let fraction = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
            tokio::time::sleep(plan.max_pause.mul_f64(fraction)).await;
            let sample = client
                .request(
                    target,
                    &nonce,
                    plan.verdict_timeout,
                    marks,
                    daemon_alive,
                    &|at| {
                        feed.request_sent(i, at);
                    },
                )
                .await;
            feed.request_done(i);
            let sample = sample?;
            if i >= plan.warmup {
                samples.push(sample);
                progress();
            }
        }
        client.close().await;
        Ok(samples)
    })
}

fn random_tag() -> Result<String, DaemonBenchError> {
    let mut bytes = [0u8; 6];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DaemonBenchError::Random)?;
    Ok(hex::encode(bytes))
}
