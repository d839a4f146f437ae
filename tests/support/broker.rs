//! A private Mosquitto on an ephemeral loopback port, and its command-line
//! clients.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::process::{Guard, spawn_lines, wait_until};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("ephemeral port")
}

pub struct Mosquitto {
    pub port: u16,
    pub dir: PathBuf,
    pub guard: Option<Guard>,
}

impl Mosquitto {
    /// Plain MQTT with persistence, so a restart keeps sessions (as a site
    /// broker would).
    pub fn start(dir: &Path) -> Mosquitto {
        std::fs::create_dir_all(dir.join("data")).expect("broker dir");
        let persistence = format!(
            "persistence true\npersistence_location {}/\n",
            dir.join("data").display()
        );
        Mosquitto::with_options(dir, &persistence)
    }

    /// A broker in `dir` whose one listener also has `options` (mosquitto.conf
    /// lines, e.g. TLS files).
    pub fn with_options(dir: &Path, options: &str) -> Mosquitto {
        std::fs::create_dir_all(dir).expect("broker dir");
        let port = free_port();
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n\
                 log_dest file {}\n{options}",
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
        self.guard = Some(Guard::new(child, "mosquitto"));
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(up, "mosquitto did not start; see {}", self.dir.display());
    }

    /// Stops the broker cleanly (it saves its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.signal(libc::SIGTERM);
            g.wait_exit(Duration::from_secs(10));
        }
    }

    fn address(&self) -> [String; 4] {
        ["-h", "127.0.0.1", "-p", &self.port.to_string()].map(str::to_owned)
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        let ok = Command::new("mosquitto_pub")
            .args(self.address())
            .args(["-q", "1", "-t", topic, "-m", payload])
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
        cmd.args(self.address())
            .args(["-V", "mqttv5", "-q", "1", "-i", client_id])
            .args(["-t", topic, "-F", "%t|%E|%p"]);
        if persistent {
            cmd.args(["-c", "-x", "3600"]);
        }
        spawn_lines(cmd, "mosquitto_sub")
    }
}
