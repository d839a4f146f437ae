//! The daemon's sections of `edgeid.toml`: `[camera]`, `[mqtt]`, `[dbus]`
//! and `[daemon]`. Like the rest of the file, unknown keys are refused
//! (serde names the key) and every value has a documented default
//! (`edgeid.toml.example`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sources::camera::PixelFormat;
use crate::sources::raw::RawFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A V4L2 (UVC) camera.
    V4l2,
    /// YUV4MPEG2 frames from a file, FIFO or stdin ("-").
    Y4m,
    /// Raw RGB24 / YUYV / I420 frames of `width`×`height` from a file, FIFO or stdin.
    Raw,
    /// An image folder played at `fps`, looping.
    Folder,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    pub source: SourceKind,
    /// Device (v4l2), file / FIFO / "-" (y4m, raw) or directory (folder).
    pub path: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    /// Frames per second asked of a camera, or the folder's playback rate.
    pub fps: f64,
    /// Camera pixel format: "mjpeg" or "yuyv".
    pub pixel_format: PixelFormat,
    /// Raw stream layout: "rgb24", "yuyv" or "i420".
    pub raw_format: RawFormat,
    /// First wait before reopening a failed source; doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::V4l2,
            path: None,
            width: 640,
            height: 480,
            fps: 15.0,
            pixel_format: PixelFormat::Mjpeg,
            raw_format: RawFormat::I420,
            retry_initial_ms: 100,
            retry_max_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificate(s) that sign the broker's certificate (PEM). Setting it turns TLS on.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for brokers that require one; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM, PKCS#8 or RSA).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Default: "edgeid-<device id>".
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// Prefer `password_file` (mode 0600) to a password in this file.
    pub password_file: Option<PathBuf>,
    pub keep_alive_secs: u64,
    /// Topics are `<topic_prefix>/<device id>/{verdict,status,request,error}`.
    pub topic_prefix: String,
    /// Requests larger than this are refused unread.
    pub max_request_bytes: usize,
    /// Undelivered verdicts kept on disk; beyond it the oldest are dropped.
    pub queue_capacity: usize,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_ms: u64,
    pub tls: TlsConfig,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            username: None,
            password_file: None,
            keep_alive_secs: 15,
            topic_prefix: "edgeid".into(),
            max_request_bytes: 1024,
            queue_capacity: 10_000,
            reconnect_max_ms: 5000,
            tls: TlsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbusConfig {
    pub enabled: bool,
    /// "system", "session", or a D-Bus address ("unix:path=/run/x/bus").
    pub bus: String,
    /// Callers in this group (or root) may enrol, revoke and list subjects.
    pub admin_group: String,
}

impl Default for DbusConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bus: "system".into(),
            admin_group: "edgeid-admin".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Used when a request gives timeout 0.
    pub default_timeout_ms: u32,
    /// Longer timeouts are clamped to this.
    pub max_timeout_ms: u32,
    /// Identify whoever stands in front of the camera and publish each
    /// verdict (needs `identify_enabled`: it is 1:N identification).
    pub walk_up: bool,
    /// Walk-up: the same outcome for the same subject is not repeated within this window.
    pub debounce_secs: u64,
    /// Usable face samples an enrollment collects.
    pub enroll_samples: u32,
    pub enroll_timeout_ms: u32,
    /// Similarity threshold; default the manifest's value at FAR 1e-3.
    pub threshold: Option<f32>,
    /// Requests waiting for the pipeline beyond this are answered `busy`.
    pub max_pending_requests: usize,
    /// On SIGTERM, how long to keep trying to deliver queued verdicts.
    pub shutdown_grace_ms: u64,
    /// Face detector: "short" (128×128, faces within ~2 m) or "full"
    /// (256×256, smaller faces, four times the cost).
    pub detector: crate::vision::detect::DetectorRange,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            default_timeout_ms: 3000,
            max_timeout_ms: 30_000,
            walk_up: false,
            debounce_secs: 10,
            enroll_samples: 5,
            enroll_timeout_ms: 30_000,
            threshold: None,
            max_pending_requests: 16,
            shutdown_grace_ms: 5000,
            detector: Default::default(),
        }
    }
}

/// Checks across sections; called by `Config::load`.
pub fn validate(config: &crate::config::Config) -> Result<(), String> {
    let cam = &config.camera;
    match cam.source {
        SourceKind::Folder | SourceKind::Y4m | SourceKind::Raw if cam.path.is_none() => {
            return Err(format!(
                "camera.path is required for camera.source = {:?}",
                cam.source
            )
            .to_lowercase());
        }
        _ => {}
    }
    if cam.width == 0 || cam.height == 0 || cam.width > 8192 || cam.height > 8192 {
        return Err("camera.width and camera.height must be 1..=8192".into());
    }
    if !(cam.fps > 0.0 && cam.fps <= 240.0) {
        return Err("camera.fps must be in (0, 240]".into());
    }
    if cam.retry_initial_ms == 0 || cam.retry_max_ms < cam.retry_initial_ms {
        return Err("camera.retry_initial_ms must be ≥ 1 and ≤ camera.retry_max_ms".into());
    }
    let mqtt = &config.mqtt;
    if mqtt.enabled {
        if mqtt.host.is_empty()
            || mqtt.topic_prefix.is_empty()
            || mqtt.topic_prefix.contains(['#', '+'])
        {
            return Err(
                "mqtt.host and mqtt.topic_prefix must be set (no wildcards in the prefix)".into(),
            );
        }
        if !(64..=65_536).contains(&mqtt.max_request_bytes) {
            return Err("mqtt.max_request_bytes must be 64..=65536".into());
        }
        if mqtt.queue_capacity == 0 {
            return Err("mqtt.queue_capacity must be at least 1".into());
        }
        if mqtt.tls.cert_file.is_some() != mqtt.tls.key_file.is_some() {
            return Err("mqtt.tls.cert_file and mqtt.tls.key_file go together".into());
        }
        if mqtt.tls.cert_file.is_some() && mqtt.tls.ca_file.is_none() {
            return Err("mqtt.tls.cert_file needs mqtt.tls.ca_file".into());
        }
    }
    let d = &config.daemon;
    if d.default_timeout_ms == 0 || d.max_timeout_ms < d.default_timeout_ms {
        return Err("daemon.default_timeout_ms must be ≥ 1 and ≤ daemon.max_timeout_ms".into());
    }
    if d.walk_up && !config.identify_enabled {
        return Err(
            "daemon.walk_up identifies people 1:N: it needs identify_enabled = true".into(),
        );
    }
    if !(1..=50).contains(&d.enroll_samples) {
        return Err("daemon.enroll_samples must be 1..=50".into());
    }
    if d.max_pending_requests == 0 {
        return Err("daemon.max_pending_requests must be at least 1".into());
    }
    Ok(())
}
