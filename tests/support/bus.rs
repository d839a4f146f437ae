//! A private dbus-daemon: a system-like bus that allows anyone to connect;
//! edgeid's own check is what refuses unprivileged admin calls.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::{Guard, spawn_lines};

pub struct DbusDaemon {
    pub address: String,
    pub guard: Guard,
}

/// The default policy of Debian's system bus (/usr/share/dbus-1/system.conf):
/// nothing may be owned or called unless a service's file allows it.
const SYSTEM_DEFAULTS: &str = r#"
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>"#;

/// A permissive policy: anyone may own and call anything.
const OPEN: &str = r#"
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>"#;

impl DbusDaemon {
    /// A bus where anyone may call anything: edgeid's own checks are what
    /// is tested.
    pub fn start(dir: &Path) -> DbusDaemon {
        Self::with_policy(dir, OPEN)
    }

    /// A bus with the system bus's defaults and edgeid's shipped policy
    /// file (systemd/org.edgeid.Auth1.conf) included, as installed.
    pub fn with_shipped_policy(dir: &Path) -> DbusDaemon {
        let shipped = super::repo().join("systemd/org.edgeid.Auth1.conf");
        Self::with_policy(
            dir,
            &format!(
                "{SYSTEM_DEFAULTS}\n  <include>{}</include>",
                shipped.display()
            ),
        )
    }

    fn with_policy(dir: &Path, policy: &str) -> DbusDaemon {
        let socket = dir.join("bus");
        let conf = dir.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>{policy}
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("bus config");
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"]);
        let (guard, rx) = spawn_lines(cmd, "dbus-daemon");
        let address = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("bus address");
        DbusDaemon {
            address: address.trim().to_owned(),
            guard,
        }
    }
}

/// `gdbus`, as root or (`as_nobody`) as uid/gid 65534 with no groups: an
/// unprivileged local user, outside every edgeid group.
pub fn gdbus(as_nobody: bool) -> Command {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "gdbus"]);
        c
    } else {
        Command::new("gdbus")
    };
    c.env("HOME", "/tmp");
    c
}
