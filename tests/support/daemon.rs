//! `edgeid run` under a NOTIFY_SOCKET the test reads, as systemd would.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::broker::Mosquitto;
use super::device::Device;
use super::process::{Guard, wait_until};

/// The daemon, with the notify socket the test reads.
pub struct Daemon {
    pub guard: Guard,
    pub notify: UnixDatagram,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `edgeid run` on `device` with `config` and extra `env`, and
    /// waits for READY=1. Its log goes to `daemon.log` at
    /// `$EDGEID_TEST_DAEMON_LOG` (default `info`).
    pub fn start(device: &Device, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let sock_path = device
            .dir
            .join(format!("notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock_path);
        let notify = UnixDatagram::bind(&sock_path).expect("notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let log = device.dir.join("daemon.log");
        let mut cmd = device.command(config);
        cmd.arg("run")
            .env("NOTIFY_SOCKET", &sock_path)
            .env(
                "EDGEID_LOG",
                std::env::var("EDGEID_TEST_DAEMON_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start edgeid run");
        let mut d = Daemon {
            guard: Guard::new(child, "edgeid"),
            notify,
            log,
        };
        let ready = d.wait_for("READY=1", Duration::from_secs(120));
        assert!(ready, "no READY=1 from the daemon; log:\n{}", d.log_text());
        d
    }

    /// Reads notifications until one contains `what`.
    pub fn wait_for(&mut self, what: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = self.notify.recv(&mut buf)
                && String::from_utf8_lossy(&buf[..n]).contains(what)
            {
                return true;
            }
            if let Ok(Some(_)) = self.guard.child.try_wait() {
                return false;
            }
        }
        false
    }

    /// Discards the notifications already queued on the socket, so a count
    /// that follows sees only what the daemon sends from now on.
    pub fn discard_pending(&mut self) {
        let mut buf = [0u8; 4096];
        self.notify.set_nonblocking(true).expect("nonblocking");
        while self.notify.recv(&mut buf).is_ok() {}
        self.notify.set_nonblocking(false).expect("blocking");
    }

    /// Counts notifications containing `what` within `window`.
    pub fn count(&mut self, what: &str, window: Duration) -> usize {
        let until = Instant::now() + window;
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while Instant::now() < until {
            if let Ok(len) = self.notify.recv(&mut buf)
                && String::from_utf8_lossy(&buf[..len]).contains(what)
            {
                n += 1;
            }
        }
        n
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls the log until it holds `what`.
    pub fn log_shows(&self, what: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_text().contains(what))
    }

    /// Waits (20 s at most) for `online` on the retained status topic of
    /// `device_id` on `broker`: the daemon has subscribed to its request
    /// topic by then, so a request published now is heard.
    pub fn wait_online(&self, broker: &Mosquitto, device_id: &str) {
        let topic = format!("edgeid/{device_id}/status");
        let (_sub, status) = broker.subscribe(&topic, "test-online", false);
        let until = Instant::now() + Duration::from_secs(20);
        while !status
            .recv_timeout(Duration::from_millis(200))
            .is_ok_and(|l| l.ends_with("|online"))
        {
            assert!(
                Instant::now() < until,
                "no online status on {topic}; log:\n{}",
                self.log_text()
            );
        }
    }

    /// SIGTERM; the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        self.guard.signal(libc::SIGTERM);
        self.guard.wait_exit(timeout)
    }

    /// SIGTERM, which must end the daemon with exit code 0 within 20 s.
    pub fn stop(mut self) {
        let code = self.terminate(Duration::from_secs(20));
        assert_eq!(
            code,
            Some(0),
            "the daemon did not stop cleanly; log:\n{}",
            self.log_text()
        );
    }
}
