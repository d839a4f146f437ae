//! The `[mqtt]` section of `edgeid.toml` and its `[mqtt.tls]` table.
//! Unknown keys are refused (serde names the key) and every value has a
//! documented default (`edgeid.toml.example`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// Requests a minute on the request topic, all publishers together (in
    /// bursts of as many); more are refused on the error topic.
    pub requests_per_minute: u32,
    /// Undelivered verdicts kept on disk; beyond it the oldest are dropped.
    pub queue_capacity: usize,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_ms: u64,
    pub tls: TlsConfig,
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
            requests_per_minute: 120,
            queue_capacity: 10_000,
            reconnect_max_ms: 5000,
            tls: TlsConfig::default(),
        }
    }
}

/// A value in `[mqtt]` the sink cannot work with; each names its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttConfigError {
    #[error(
        "mqtt.host and mqtt.topic_prefix must be set; the prefix's levels are non-empty, printable, without wildcards"
    )]
    HostOrPrefix,
    #[error("mqtt.max_request_bytes must be 64..=65536 (it is {0})")]
    MaxRequestBytes(usize),
    #[error("mqtt.requests_per_minute must be 1..=6000 (it is {0})")]
    RequestsPerMinute(u32),
    #[error("mqtt.queue_capacity must be at least 1")]
    QueueCapacity,
    #[error("mqtt.tls.cert_file and mqtt.tls.key_file go together")]
    ClientCertWithoutKey,
    #[error("mqtt.tls.cert_file needs mqtt.tls.ca_file")]
    ClientCertWithoutCa,
}

impl MqttConfig {
    /// Checks the section; a disabled sink's values are not looked at.
    pub fn validate(&self) -> Result<(), MqttConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.host.is_empty()
            || self.topic_prefix.is_empty()
            || !self.topic_prefix.split('/').all(is_topic_level)
        {
            return Err(MqttConfigError::HostOrPrefix);
        }
        if !(64..=65_536).contains(&self.max_request_bytes) {
            return Err(MqttConfigError::MaxRequestBytes(self.max_request_bytes));
        }
        if !(1..=6000).contains(&self.requests_per_minute) {
            return Err(MqttConfigError::RequestsPerMinute(self.requests_per_minute));
        }
        if self.queue_capacity == 0 {
            return Err(MqttConfigError::QueueCapacity);
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(MqttConfigError::ClientCertWithoutKey);
        }
        if self.tls.cert_file.is_some() && self.tls.ca_file.is_none() {
            return Err(MqttConfigError::ClientCertWithoutCa);
        }
        Ok(())
    }
}

/// One level of an MQTT topic name edgeid publishes or subscribes under:
/// non-empty, printable, no wildcard (`#`, `+`), no NUL or control
/// character (a device id or prefix is spliced into topics).
pub fn is_topic_level(level: &str) -> bool {
    !level.is_empty()
        && level.len() <= 128
        && level
            .chars()
            .all(|c| !c.is_control() && c != '#' && c != '+' && c != '/')
}
