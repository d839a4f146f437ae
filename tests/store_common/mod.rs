//! Shared by the store/verdict integration tests: a temporary state
//! directory with its own KEK and config, and the sample photos and models
//! when present.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Env {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub state: PathBuf,
    pub kek: PathBuf,
    pub config: PathBuf,
}

pub fn env_with_config(config_text: &str) -> Env {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_owned();
    let kek = dir.join("kek");
    std::fs::write(&kek, [42u8; 32]).expect("kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let config = dir.join("edgeid.toml");
    std::fs::write(&config, config_text).expect("config");
    Env {
        state: dir.join("state"),
        _tmp: tmp,
        dir,
        kek,
        config,
    }
}

impl Env {
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("edgeid").expect("binary");
        c.env("EDGEID_STATE_DIR", &self.state)
            .env("EDGEID_KEK_FILE", &self.kek)
            .env("EDGEID_CONFIG", &self.config)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("EDGEID_LOG")
            .env_remove("RUST_LOG");
        c
    }

    pub fn init(&self) {
        self.cmd()
            .args(["keys", "init", "--device-id", "door-1"])
            .assert()
            .success();
    }

    pub fn db(&self) -> PathBuf {
        self.state.join("edgeid.db")
    }

    /// Runs `edgeid ARGS` (with `--json` among them), which must succeed,
    /// and parses what it printed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        stdout_json(&out)
    }

    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).expect("open db")
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample photos, or `None` (with a loud message) when absent.
pub fn samples() -> Option<PathBuf> {
    let dir = std::env::var_os("EDGEID_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            repo().join(".cache/test-data/face_recognition-1.3.0/tests/test_images")
        });
    if dir.join("obama.jpg").is_file() && dir.join("biden.jpg").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: sample photos missing in {}: run scripts/fetch-test-data",
            dir.display()
        );
        None
    }
}

/// Sample photos and the face models both present.
pub fn face_ready() -> Option<PathBuf> {
    if !repo().join("models/manifest.toml").is_file() {
        eprintln!(
            "SKIPPED: models/manifest.toml is missing: the face models are not converted yet"
        );
        return None;
    }
    samples()
}

pub fn stdout_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}
