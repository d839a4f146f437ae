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
