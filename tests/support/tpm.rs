//! A software TPM 2.0 (swtpm) on loopback ports, and tpm2-tools pointed
//! at it: what a Jetson's fTPM or a discrete TPM is to the rollback
//! anchor's hardware counter.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::broker::free_port;
use super::process::{Guard, wait_until};

pub struct SoftTpm {
    pub port: u16,
    guard: Option<Guard>,
    state: std::path::PathBuf,
}

impl SoftTpm {
    /// A fresh TPM whose state lives in `dir`.
    pub fn start(dir: &Path) -> SoftTpm {
        std::fs::create_dir_all(dir).expect("tpm dir");
        let mut tpm = SoftTpm {
            port: free_port(),
            guard: None,
            state: dir.to_owned(),
        };
        tpm.restart();
        tpm
    }

    /// Starts it again on the same state (after [`SoftTpm::stop`]).
    pub fn restart(&mut self) {
        let server = format!("type=tcp,port={},bindaddr=127.0.0.1", self.port);
        // The TCTI reaches the control channel on the next port.
        let ctrl = format!("type=tcp,port={},bindaddr=127.0.0.1", self.port + 1);
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", self.state.display()))
            .args(["--server", &server, "--ctrl", &ctrl])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start swtpm");
        self.guard = Some(Guard::new(child, "swtpm"));
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "swtpm did not listen on port {port}"
        );
    }

    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// The TCTI string of `[anchor] tpm_tcti`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The value of NV counter `index`, read with tpm2-tools.
    pub fn counter(&self, index: u32) -> u64 {
        let out = Command::new("tpm2_nvread")
            .args(["-T", &self.tcti(), "-C", "o", "-s", "8"])
            .arg(format!("{index:#010x}"))
            .output()
            .expect("run tpm2_nvread");
        assert!(
            out.status.success(),
            "tpm2_nvread: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        u64::from_be_bytes(out.stdout.as_slice().try_into().expect("8 bytes"))
    }
}
