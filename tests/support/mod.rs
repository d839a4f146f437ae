//! Helpers for the daemon integration tests: a store with an enrolled
//! subject, a folder camera, the daemon itself with a NOTIFY_SOCKET the test
//! reads, and private Mosquitto / dbus-daemon instances. Every child process
//! is killed when its guard drops, also when a test fails.

#![allow(dead_code)]

pub mod auth1;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_edgeid");
pub const DEVICE: &str = "door-test";

/// The sample photos (scripts/fetch-test-data), or None with a loud skip.
pub fn samples() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("EDGEID_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/test-data"))
        .join("face_recognition-1.3.0/tests/test_images");
    if dir.join("obama.jpg").is_file() && root.join("models/manifest.toml").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: sample photos or models missing; run scripts/fetch-test-data");
        None
    }
}

pub fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: {name} is not installed (scripts/setup-system installs it)");
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("ephemeral port")
}

/// A state directory with keys and `obama` enrolled, and a camera folder.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub state: PathBuf,
    pub kek: PathBuf,
    pub camera: PathBuf,
    pub samples: PathBuf,
}

impl Fixture {
    pub fn new(samples: &Path, camera_photos: &[&str]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        // dbus-daemon and unprivileged clients must reach sockets in here.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let state = tmp.path().join("state");
        let kek = tmp.path().join("kek");
        std::fs::write(&kek, [7u8; 32]).expect("kek");
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let camera = tmp.path().join("camera");
        std::fs::create_dir(&camera).expect("camera dir");
        for p in camera_photos {
            std::fs::copy(samples.join(p), camera.join(p)).expect("copy photo");
        }
        let f = Self {
            tmp,
            state,
            kek,
            camera,
            samples: samples.to_owned(),
        };
        let cfg = f.write_config("base", &format!("device_id = \"{DEVICE}\"\n"));
        f.cli(&cfg, &["keys", "init"]);
        let obama = samples.join("obama.jpg");
        let obama3 = samples.join("obama3.jpg");
        f.cli(
            &cfg,
            &[
                "enroll",
                "--subject",
                "obama",
                obama.to_str().expect("utf8"),
                obama3.to_str().expect("utf8"),
            ],
        );
        f
    }

    pub fn write_config(&self, name: &str, body: &str) -> PathBuf {
        let p = self.tmp.path().join(format!("{name}.toml"));
        std::fs::write(&p, body).expect("config");
        p
    }

    pub fn cmd(&self, config: &Path) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--state-dir")
            .arg(&self.state)
            .arg("--config")
            .arg(config)
            .env("EDGEID_KEK_FILE", &self.kek)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        c
    }

    pub fn cli(&self, config: &Path, args: &[&str]) -> String {
        let out = self.cmd(config).args(args).output().expect("run edgeid");
        assert!(
            out.status.success(),
            "edgeid {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `edgeid verdict verify` against this device's key.
    pub fn verdict_verifies(&self, config: &Path, verdict: &str, nonce: Option<&str>) -> bool {
        let mut c = self.cmd(config);
        c.args(["verdict", "verify"]);
        if let Some(n) = nonce {
            c.args(["--nonce", n]);
        }
        c.arg(verdict).output().is_ok_and(|o| o.status.success())
    }
}

/// The claims of a compact JWS (not verified: callers verify separately).
pub fn claims(verdict: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = verdict.split('.').nth(1).expect("JWS payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

/// A child killed on drop.
pub struct Guard {
    pub child: Child,
    pub name: &'static str,
}

impl Guard {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for exit up to `timeout`; the exit code if it exited.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines a child prints, read on a thread.
pub fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The daemon, with the notify socket the test reads.
pub struct Daemon {
    pub guard: Guard,
    pub notify: UnixDatagram,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(f: &Fixture, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let sock_path = f
            .tmp
            .path()
            .join(format!("notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock_path);
        let notify = UnixDatagram::bind(&sock_path).expect("notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let log = f.tmp.path().join("daemon.log");
        let mut cmd = f.cmd(config);
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
            guard: Guard {
                child,
                name: "edgeid",
            },
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

    /// SIGTERM; the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        self.guard.signal(libc::SIGTERM);
        self.guard.wait_exit(timeout)
    }
}

/// A private Mosquitto on an ephemeral loopback port, with persistence so
/// a restart keeps sessions (as a site broker would).
pub struct Mosquitto {
    pub port: u16,
    pub dir: PathBuf,
    pub guard: Option<Guard>,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        let port = free_port();
        std::fs::create_dir_all(dir.join("data")).expect("broker dir");
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\nlog_dest file {}\n",
                dir.join("data").display(),
                dir.join("broker.log").display()
            ),
        )
        .expect("broker config");
        let mut m = Mosquitto {
            port,
            dir: dir.to_owned(),
            guard: None,
        };
        m.restart();
        m
    }

    pub fn restart(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.guard = Some(Guard {
            child,
            name: "mosquitto",
        });
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker cleanly (it saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.signal(libc::SIGTERM);
            g.wait_exit(Duration::from_secs(10));
        }
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                payload,
            ])
            .status()
            .expect("mosquitto_pub");
        assert!(ok.success(), "mosquitto_pub failed");
    }

    /// A subscriber printing `topic|expiry|payload` lines; `persistent`
    /// keeps its session (and queued QoS 1 messages) across broker restarts.
    pub fn subscribe(
        &self,
        topic: &str,
        client_id: &str,
        persistent: bool,
    ) -> (Guard, mpsc::Receiver<String>) {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-i",
            client_id,
        ])
        .args(["-t", topic, "-F", "%t|%E|%p"]);
        if persistent {
            cmd.args(["-c", "-x", "3600"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub");
        let rx = lines(child.stdout.take().expect("stdout"));
        (
            Guard {
                child,
                name: "mosquitto_sub",
            },
            rx,
        )
    }
}

/// A private dbus-daemon (a system-like bus that allows anyone to connect;
/// edgeid's own check is what refuses unprivileged admin calls).
pub struct DbusDaemon {
    pub address: String,
    pub guard: Guard,
}

impl DbusDaemon {
    pub fn start(dir: &Path) -> DbusDaemon {
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
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("bus config");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let rx = lines(child.stdout.take().expect("stdout"));
        let address = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("bus address");
        DbusDaemon {
            address: address.trim().to_owned(),
            guard: Guard {
                child,
                name: "dbus-daemon",
            },
        }
    }
}
