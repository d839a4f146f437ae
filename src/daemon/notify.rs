//! systemd's notification protocol (sd_notify(3)): `READY=1`, `STATUS=`,
//! `STOPPING=1` and `WATCHDOG=1` as datagrams to `$NOTIFY_SOCKET`. A dozen
//! lines over std rather than a crate; without `NOTIFY_SOCKET` every call
//! is a no-op, so the daemon runs the same outside systemd.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises.
    watchdog_every: Option<Duration>,
    last_ping: Mutex<Option<Instant>>,
}

impl Notifier {
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let bytes = path.as_encoded_bytes();
            let addr = if let Some(name) = bytes.strip_prefix(b"@") {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            } else {
                SocketAddr::from_pathname(std::path::Path::new(&path))
            };
            let pair = addr.and_then(|a| UnixDatagram::unbound().map(|s| (s, a)));
            pair.map_err(|e| tracing::warn!(error = %e, "NOTIFY_SOCKET is unusable"))
                .ok()
        });
        // WATCHDOG_PID, when set, names the process systemd expects pings from.
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog_every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(|u| Duration::from_micros(u / 2));
        Self {
            socket,
            watchdog_every,
            last_ping: Mutex::new(None),
        }
    }

    pub fn watchdog_enabled(&self) -> bool {
        self.socket.is_some() && self.watchdog_every.is_some()
    }

    pub fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            tracing::warn!(error = %e, state, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    /// Called from the pipeline loop on every turn; sends `WATCHDOG=1` at
    /// most every half watchdog period, so a loop that stops turning stops
    /// the pings and systemd restarts the service.
    pub fn watchdog(&self) {
        let Some(every) = self.watchdog_every else {
            return;
        };
        let mut last = self.last_ping.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= every) {
            *last = Some(Instant::now());
            drop(last);
            self.send("WATCHDOG=1");
        }
    }
}
