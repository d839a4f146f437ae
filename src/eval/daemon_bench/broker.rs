//! A private Mosquitto on an ephemeral loopback port and a private scratch
//! directory, both removed when dropped.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{DaemonBenchError, random_tag};

/// A Mosquitto on an ephemeral loopback port, killed on drop.
pub struct PrivateBroker {
    child: Child,
    pub port: u16,
}

impl PrivateBroker {
    /// Starts `mosquitto` with its config in `dir` (which must exist).
    pub fn start(dir: &Path) -> Result<Self, DaemonBenchError> {
        let binary = find_program("mosquitto").ok_or(DaemonBenchError::NoMosquitto)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.join("mosquitto.conf");
        // Nagle off on the broker's sockets too: a site broker tuned for
        // latency sets the same.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n\
                 persistence false\nuser root\n"
            ),
        )?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DaemonBenchError::Broker(format!("{}: {e}", binary.display())))?;
        let mut broker = Self { child, port };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(DaemonBenchError::Broker(format!(
                    "mosquitto exited ({status}) before listening on port {port}"
                )));
            }
            if Instant::now() >= until {
                return Err(DaemonBenchError::Broker(format!(
                    "nothing listens on 127.0.0.1:{port} after 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!(port, "private mosquitto started");
        Ok(broker)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on PATH, else in the sbin folders Debian keeps daemons in.
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
/// Whether `mosquitto` can be found (for callers choosing a broker).
pub fn mosquitto_available() -> bool {
    find_program("mosquitto").is_some()
}

/// Creates a private (0700) scratch directory, removed on drop.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(prefix: &str) -> Result<Self, DaemonBenchError> {
        use std::os::unix::fs::DirBuilderExt;
        for _ in 0..8 {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", random_tag()?));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DaemonBenchError::Io(std::io::Error::new(
            ErrorKind::AlreadyExists,
            "no free scratch directory name",
        )))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dir_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let d = ScratchDir::new("edgeid-test").expect("scratch");
        let path = d.path().to_owned();
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(d);
        assert!(!path.exists());
    }
}
