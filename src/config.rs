//! The TOML configuration (`/etc/edgeid/edgeid.toml` by default, when
//! present). Unknown keys are refused so a typo is not silently ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_CONFIG: &str = "/etc/edgeid/edgeid.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
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
    /// Daemon sections (`edgeid run`); see `daemon::config`.
    pub camera: crate::daemon::config::CameraConfig,
    pub mqtt: crate::daemon::config::MqttConfig,
    pub dbus: crate::daemon::config::DbusConfig,
    pub daemon: crate::daemon::config::DaemonConfig,
    /// `[liveness]`: what the daemon must see before it scores a face.
    pub liveness: crate::decision::liveness::LivenessPolicy,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failed verifications of one subject that trigger a lockout.
    pub max_failures: u32,
    /// Window in which they are counted, and how long the lockout lasts, seconds.
    pub window_secs: u64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 60,
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
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|message| ConfigError::Invalid { path, message })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.verdict_lifetime_secs == 0 || self.verdict_lifetime_secs > 3600 {
            return Err("verdict_lifetime_secs must be 1..=3600".into());
        }
        if self.lockout.max_failures == 0 {
            return Err("lockout.max_failures must be at least 1".into());
        }
        crate::daemon::config::validate(self)?;
        self.liveness.validate()?;
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
        assert_eq!(c.lockout.window_secs, 60);
        assert_eq!(c.verdict_lifetime_secs, 30);
        assert!(toml::from_str::<Config>("kek_fiel = \"x\"").is_err());
    }
}
