//! The daemon's two ways out: the D-Bus name and the MQTT broker.

use std::path::Path;
use std::time::Duration;

use edgeid::config::Config;
use edgeid::sinks::dbus::probe::{name_owner, policy_files};
use edgeid::sinks::dbus::{BUS_NAME, DbusConfig};
use edgeid::sinks::mqtt::probe::probe;

use super::report::{Check, chain};

pub async fn dbus(c: &DbusConfig, timeout: Duration) -> Check {
    const NAME: &str = "dbus";
    if !c.enabled {
        return Check::ok(NAME, "off ([dbus] enabled = false)");
    }
    // Only the system bus reads the installed policy files.
    let policy = (c.bus == "system").then(|| policy_files(Path::new("/")));
    if let Some(files) = &policy
        && files.is_empty()
    {
        return Check::fail(
            NAME,
            format!(
                "the bus policy for {BUS_NAME} is not installed: the system bus will not let the daemon own its name"
            ),
            "install systemd/org.edgeid.Auth1.conf into /usr/share/dbus-1/system.d/ (the .deb does) and `systemctl reload dbus`",
        );
    }
    let policy_text = match &policy {
        Some(files) => format!("policy {}", files[0].display()),
        None => "policy: not checked (not the system bus)".to_owned(),
    };
    match tokio::time::timeout(timeout, name_owner(c)).await {
        Err(_) => Check::fail(
            NAME,
            format!("the bus {:?} did not answer within {timeout:?}", c.bus),
            "check that dbus-daemon runs (systemctl status dbus)",
        ),
        Ok(Err(e)) => Check::fail(NAME, chain(&e), "check [dbus] bus and that the bus runs"),
        Ok(Ok(Some(owner))) => Check::ok(
            NAME,
            format!("{BUS_NAME} owned by {owner} on {}; {policy_text}", c.bus),
        ),
        Ok(Ok(None)) => Check::warn(
            NAME,
            format!("nobody owns {BUS_NAME} on {}; {policy_text}", c.bus),
            "the daemon is not running: systemctl start edgeid, then journalctl -u edgeid",
        ),
    }
}

pub async fn mqtt(config: &Config, timeout: Duration) -> Check {
    const NAME: &str = "mqtt";
    let c = &config.mqtt;
    if !c.enabled {
        return Check::ok(NAME, "off ([mqtt] enabled = false)");
    }
    let device = config.device_id.as_deref().unwrap_or("device");
    let address = format!("{}:{}", c.host, c.port);
    match probe(c, device, timeout).await {
        Ok(p) => Check::ok(
            NAME,
            format!(
                "broker {address} accepted a connection in {:.0} ms{}",
                p.connect_ms,
                if p.tls {
                    " over TLS (handshake ok)"
                } else {
                    " (plain TCP, no TLS)"
                }
            ),
        )
        .with_detail(p),
        Err(e) => Check::fail(
            NAME,
            format!("broker {address}: {}", chain(&e)),
            if c.tls.ca_file.is_some() {
                "check the broker runs, [mqtt] host/port, the firewall, and that [mqtt.tls] files match the broker's certificate"
            } else {
                "check the broker runs (systemctl status mosquitto), [mqtt] host/port and the firewall"
            },
        ),
    }
}
