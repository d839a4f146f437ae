//! The TOML configuration (`/etc/edgeid/edgeid.toml` by default, when
//! present). Unknown keys are refused so a typo is not silently ignored.
//!
//! Each component owns its section and checks its own values: `[camera]`
//! in `sources::config`, `[mqtt]` in `sinks::mqtt::config`, `[dbus]` in
//! `sinks::dbus::config`, `[inference]` in `infer::config`, `[lockout]` and `[liveness]` in `decision`, and
//! `[daemon]` in `daemon` here (the daemon sits above the config, so its
//! section cannot live in it). This module only assembles the sections,
//! holds the top-level keys, and checks the rules that span sections.

mod daemon;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use daemon::{DaemonConfig, DaemonConfigError};

use crate::decision::Policy;
use crate::decision::liveness::LivenessPolicy;
use crate::decision::lockout::LockoutConfig;
use crate::infer::{InferenceConfig, InferenceConfigError};
use crate::sinks::dbus::DbusConfig;
use crate::sinks::mqtt::{MqttConfig, MqttConfigError};
use crate::sources::{CameraConfig, CameraConfigError};
use crate::store::audit::{RetentionConfig, RetentionConfigError};

pub const DEFAULT_CONFIG: &str = "/etc/edgeid/edgeid.toml";

/// Why the configuration cannot be used. The cause (the I/O error, the
/// TOML error with its line, the rule broken) is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid config {path}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: SectionError,
    },
}

/// A rule a parsed configuration breaks, within a section or across them.
/// Each message names the key to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SectionError {
    #[error("verdict_lifetime_secs must be 1..=3600 (it is {0})")]
    VerdictLifetime(u64),
    #[error(transparent)]
    Lockout(#[from] crate::decision::lockout::LockoutConfigError),
    #[error(
        "device_id {0:?} must be 1-128 printable characters without '/', '#', '+' (it names MQTT topics)"
    )]
    DeviceId(String),
    #[error("daemon.walk_up identifies people 1:N: it needs identify_enabled = true")]
    WalkUpNeedsIdentify,
    #[error(
        "decision.modalities = {0:?} listens for a voice: set microphone.device or microphone.fifo (edgeid doctor lists the devices)"
    )]
    VoiceNeedsMicrophone(String),
    #[error(
        "daemon.walk_up identifies people 1:N, by face only: it cannot meet decision.modalities = {0:?}"
    )]
    WalkUpNeedsFace(String),
    #[error(transparent)]
    Camera(#[from] CameraConfigError),
    #[error(transparent)]
    Mqtt(#[from] MqttConfigError),
    #[error(transparent)]
    Dbus(#[from] crate::sinks::dbus::DbusConfigError),
    #[error(transparent)]
    Daemon(#[from] DaemonConfigError),
    #[error(transparent)]
    Liveness(#[from] crate::decision::liveness::LivenessConfigError),
    #[error(transparent)]
    Inference(#[from] InferenceConfigError),
    #[error(transparent)]
    Microphone(#[from] crate::sources::audio::MicrophoneConfigError),
    #[error(transparent)]
    Audit(#[from] RetentionConfigError),
    #[error(transparent)]
    Anchor(#[from] crate::store::anchor::counter::CounterConfigError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// File holding the key-encryption key (must be mode 0600, owned by the service user).
    pub kek_file: Option<PathBuf>,
    /// Device id used by `keys init` (default: random).
    pub device_id: Option<String>,
    pub lockout: LockoutConfig,
    /// How long a verdict stays valid (`exp − iat`), seconds.
    pub verdict_lifetime_secs: u64,
    /// 1:N identification is opt-in: it is high-risk under the EU AI Act,
    /// so a deployer turns it on knowingly and the audit log records it.
    pub identify_enabled: bool,
    /// Daemon sections (`edgeid run`).
    pub camera: CameraConfig,
    pub mqtt: MqttConfig,
    pub dbus: DbusConfig,
    pub daemon: DaemonConfig,
    /// `[liveness]`: what the daemon must see before it scores a face.
    pub liveness: LivenessPolicy,
    /// `[inference]`: the backend and execution providers that run the models.
    pub inference: InferenceConfig,
    /// `[face]`: which embedder(s) the daemon and the verbs run.
    pub face: FaceConfig,
    /// `[decision]`: the modalities a decision needs.
    pub decision: crate::decision::DecisionConfig,
    /// `[microphone]`: the daemon's voice input.
    pub microphone: crate::sources::audio::MicrophoneConfig,
    /// `[audit]`: how long and how much of the audit log is kept.
    pub audit: RetentionConfig,
    /// `[anchor]`: whether the rollback anchor is also bound to a TPM counter.
    pub anchor: crate::store::anchor::counter::CounterConfig,
}

/// `[face]`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaceConfig {
    /// `dlib`, `mobilefacenet` or `fused` (docs/config.md).
    pub embedder: crate::pipeline::EmbedderChoice,
    /// Test-time flip augmentation; absent: as the manifest declares each
    /// embedder (its thresholds were measured that way). Off saves the
    /// mirror's model run and keeps the thresholds, which then accept
    /// fewer impostors and fewer genuine faces (docs/config.md).
    pub flip_tta: Option<bool>,
}

impl FaceConfig {
    /// The face pipeline's settings this section asks for (the rest at
    /// their defaults): the one place `[face]` reaches the pipeline, for
    /// the daemon, the verbs and `bench`.
    pub fn pipeline(&self) -> crate::pipeline::PipelineConfig {
        crate::pipeline::PipelineConfig {
            embedder: self.embedder,
            flip_tta: self.flip_tta,
            ..Default::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            kek_file: None,
            device_id: None,
            lockout: LockoutConfig::default(),
            verdict_lifetime_secs: 30,
            identify_enabled: false,
            camera: Default::default(),
            mqtt: Default::default(),
            dbus: Default::default(),
            daemon: Default::default(),
            liveness: Default::default(),
            face: Default::default(),
            inference: Default::default(),
            decision: Default::default(),
            microphone: Default::default(),
            audit: Default::default(),
            anchor: Default::default(),
        }
    }
}

impl Config {
    /// Loads `path`, or the default file when present, or the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match path {
            Some(p) => p.to_owned(),
            None if Path::new(DEFAULT_CONFIG).is_file() => PathBuf::from(DEFAULT_CONFIG),
            None => return Ok(Self::default()),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let config: Self = match toml::from_str(&text) {
            Ok(config) => config,
            Err(source) => return Err(ConfigError::Parse { path, source }),
        };
        match config.validate() {
            Ok(()) => Ok(config),
            Err(source) => Err(ConfigError::Invalid { path, source }),
        }
    }

    /// The decision path's settings (the CLI verbs replace the threshold
    /// with `--threshold` or the manifest's).
    pub fn decision_policy(&self) -> Policy {
        Policy {
            threshold: self.daemon.threshold,
            threshold_source: "daemon.threshold in the config",
            lockout: self.lockout,
            verdict_lifetime_secs: self.verdict_lifetime_secs,
            identify_enabled: self.identify_enabled,
        }
    }

    /// Checks the top-level keys, each section, and the rules across sections.
    pub fn validate(&self) -> Result<(), SectionError> {
        if self.verdict_lifetime_secs == 0 || self.verdict_lifetime_secs > 3600 {
            return Err(SectionError::VerdictLifetime(self.verdict_lifetime_secs));
        }
        if let Some(id) = &self.device_id
            && !crate::sinks::mqtt::is_topic_level(id)
        {
            return Err(SectionError::DeviceId(id.escape_debug().take(64).collect()));
        }
        self.lockout.validate()?;
        self.camera.validate()?;
        self.mqtt.validate()?;
        self.dbus.validate()?;
        self.daemon.validate()?;
        if self.daemon.walk_up && !self.identify_enabled {
            return Err(SectionError::WalkUpNeedsIdentify);
        }
        self.liveness.validate()?;
        self.inference.validate()?;
        self.microphone.validate()?;
        let modalities = self.decision.modalities;
        if modalities.uses_voice() && !self.microphone.configured() {
            return Err(SectionError::VoiceNeedsMicrophone(modalities.to_string()));
        }
        if self.daemon.walk_up && modalities.check_identify().is_err() {
            return Err(SectionError::WalkUpNeedsFace(modalities.to_string()));
        }
        self.audit.validate()?;
        self.anchor.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_and_defaults_apply() {
        let c: Config = toml::from_str("identify_enabled = true\n[lockout]\nmax_failures = 3\n")
            .expect("parse");
        assert!(c.identify_enabled);
        assert_eq!(c.lockout.max_failures, 3);
        assert_eq!(c.lockout.window_secs, 900);
        assert_eq!(c.verdict_lifetime_secs, 30);
        assert!(toml::from_str::<Config>("kek_fiel = \"x\"").is_err());
    }

    #[test]
    fn the_face_flip_switch_is_the_manifests_unless_set() {
        let c: Config = toml::from_str("[face]\nembedder = \"fused\"\n").expect("parse");
        assert_eq!(c.face.flip_tta, None);
        let c: Config = toml::from_str("[face]\nflip_tta = false\n").expect("parse");
        assert_eq!(c.face.flip_tta, Some(false));
        assert!(toml::from_str::<Config>("[face]\nflip = false\n").is_err());
    }

    #[test]
    fn the_example_file_shows_the_defaults() {
        let example: Config =
            toml::from_str(include_str!("../../edgeid.toml.example")).expect("parse");
        let json = |c: &Config| serde_json::to_value(c).expect("json");
        assert_eq!(json(&example), json(&Config::default()));
        assert_eq!(example.validate(), Ok(()));
    }

    #[test]
    fn each_broken_rule_names_its_key() {
        let parse = |text: &str| toml::from_str::<Config>(text).expect("parse");
        for (text, key) in [
            ("verdict_lifetime_secs = 0", "verdict_lifetime_secs"),
            ("[lockout]\nmax_failures = 0", "lockout.max_failures"),
            ("[lockout]\nwindow_secs = 0", "lockout.window_secs"),
            ("[liveness]\nmin_turn = nan", "liveness.min_turn"),
            ("[camera]\nsource = \"folder\"", "camera.path"),
            (
                "[mqtt]\nenabled = true\nqueue_capacity = 0",
                "mqtt.queue_capacity",
            ),
            ("[daemon]\nenroll_samples = 0", "daemon.enroll_samples"),
            ("[daemon]\nwalk_up = true", "identify_enabled"),
            ("[camera]\nfps = 1e-300", "camera.fps"),
            (
                "[daemon]\nmax_pending_requests = 9223372036854775807",
                "daemon.max_pending_requests",
            ),
            (
                "[daemon]\nmax_pending_requests = 100000000000",
                "daemon.max_pending_requests",
            ),
            ("[daemon]\nthreshold = -1.5", "daemon.threshold"),
            ("[daemon]\nthreshold = nan", "daemon.threshold"),
            ("[daemon]\nthreshold = inf", "daemon.threshold"),
            (
                "[daemon]\nmax_timeout_ms = 4000000",
                "daemon.max_timeout_ms",
            ),
            // A few callers asking for 30 s each held the camera that long.
            ("[daemon]\nmax_timeout_ms = 30000", "daemon.max_timeout_ms"),
            (
                "[daemon]\ndefault_voice_timeout_ms = 0",
                "daemon.default_voice_timeout_ms",
            ),
            ("device_id = \"door/#\"", "device_id"),
            ("[microphone]\nring_secs = 0", "microphone.ring_secs"),
            ("[decision]\nmodalities = \"voice\"", "microphone.device"),
            (
                "identify_enabled = true\n[daemon]\nwalk_up = true\n[decision]\nmodalities = \"face+voice\"\n[microphone]\ndevice = \"default\"",
                "decision.modalities",
            ),
            ("[microphone]\ndevice = \"\"", "microphone.device"),
            ("[inference]\nproviders = []", "inference.providers"),
            ("[audit]\nretain_days = 0", "audit.retain_days"),
            ("[audit]\nmax_rows = 10", "audit.max_rows"),
            ("[audit]\nmax_rows = 1000000000", "audit.max_rows"),
            ("[anchor]\ntpm_nv_index = 0x81000001", "anchor.tpm_nv_index"),
            ("[anchor]\nbump_every = 0", "anchor.bump_every"),
            (
                "[mqtt]\nenabled = true\ntopic_prefix = \"a\\u0000b\"",
                "mqtt.topic_prefix",
            ),
        ] {
            let e = parse(text).validate().expect_err(text);
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_load_error_keeps_its_cause() {
        let dir = std::env::temp_dir().join(format!("edgeid-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("edgeid.toml");
        std::fs::write(&path, "[camera]\nfps = 0.0\n").expect("write");
        let e = Config::load(Some(&path)).expect_err("fps 0");
        assert!(matches!(
            &e,
            ConfigError::Invalid {
                source: SectionError::Camera(CameraConfigError::Fps(_)),
                ..
            }
        ));
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(cause.to_string().contains("camera.fps"), "{cause}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
