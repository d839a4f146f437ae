//! The `[dbus]` section of `edgeid.toml`. Unknown keys are refused and
//! every value has a documented default (`edgeid.toml.example`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbusConfig {
    pub enabled: bool,
    /// "system", "session", or a D-Bus address ("unix:path=/run/x/bus").
    pub bus: String,
    /// Callers in this group (or root) may enrol, revoke and list subjects
    /// (checked by `auth` on every admin call, besides the bus policy).
    pub admin_group: String,
    /// Verify / Identify calls a minute per caller uid (in bursts of as
    /// many); more are refused `Busy`.
    pub requests_per_minute: u32,
}

/// A `[dbus]` value edgeid cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbusConfigError {
    #[error("dbus.requests_per_minute must be 1..=6000 (it is {0})")]
    RequestsPerMinute(u32),
}

impl DbusConfig {
    pub fn validate(&self) -> Result<(), DbusConfigError> {
        if !(1..=6000).contains(&self.requests_per_minute) {
            return Err(DbusConfigError::RequestsPerMinute(self.requests_per_minute));
        }
        Ok(())
    }
}

impl Default for DbusConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bus: "system".into(),
            admin_group: "edgeid-admin".into(),
            requests_per_minute: 30,
        }
    }
}
