//! Who owns `org.edgeid.Auth1` on the configured bus, and whether the
//! shipped bus policy is installed, for `edgeid doctor`. Connects without
//! claiming anything, so it can run beside the daemon.

use std::path::PathBuf;

use super::config::DbusConfig;
use super::service::BUS_NAME;

/// The policy file the package installs, and where the system bus reads
/// such files (administrator's copy first).
pub const POLICY_FILE: &str = "org.edgeid.Auth1.conf";
pub const POLICY_DIRS: [&str; 2] = ["/etc/dbus-1/system.d", "/usr/share/dbus-1/system.d"];

#[derive(Debug, thiserror::Error)]
pub enum BusProbeError {
    #[error("cannot connect to the D-Bus bus {bus:?}")]
    Connect {
        bus: String,
        #[source]
        source: zbus::Error,
    },
    #[error("the D-Bus bus {bus:?} did not answer GetNameOwner({BUS_NAME})")]
    Query {
        bus: String,
        #[source]
        source: zbus::fdo::Error,
    },
}

/// The unique name owning [`BUS_NAME`] on the configured bus, if any.
pub async fn name_owner(c: &DbusConfig) -> Result<Option<String>, BusProbeError> {
    let connect = |source| BusProbeError::Connect {
        bus: c.bus.clone(),
        source,
    };
    let builder = match c.bus.as_str() {
        "system" => zbus::connection::Builder::system(),
        "session" => zbus::connection::Builder::session(),
        address => zbus::connection::Builder::address(address),
    }
    .map_err(connect)?;
    let conn = builder.build().await.map_err(connect)?;
    let proxy = zbus::fdo::DBusProxy::new(&conn).await.map_err(connect)?;
    let name = zbus::names::BusName::try_from(BUS_NAME).map_err(|e| connect(e.into()))?;
    match proxy.get_name_owner(name).await {
        Ok(owner) => Ok(Some(owner.to_string())),
        Err(zbus::fdo::Error::NameHasNoOwner(_)) => Ok(None),
        Err(source) => Err(BusProbeError::Query {
            bus: c.bus.clone(),
            source,
        }),
    }
}

/// The installed copies of the policy file under `root` ("/" on a device).
pub fn policy_files(root: &std::path::Path) -> Vec<PathBuf> {
    POLICY_DIRS
        .iter()
        .map(|dir| root.join(dir.trim_start_matches('/')).join(POLICY_FILE))
        .filter(|p| p.is_file())
        .collect()
}
