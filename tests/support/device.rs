//! A device under test: a temporary state directory with its own KEK, a
//! config file and a folder camera, and the `edgeid` binary pointed at them
//! with nothing inherited from the caller's environment.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::models::models_dir;
use super::output::stdout_json;
use super::process::run_ok;

pub const BIN: &str = env!("CARGO_BIN_EXE_edgeid");
/// The device id of [`Device::with_obama`] (and of its MQTT topics).
pub const DEVICE: &str = "door-test";

/// Variables of the caller's shell that would change what edgeid does.
const CALLER_ENV: [&str; 11] = [
    "EDGEID_STATE_DIR",
    "EDGEID_CONFIG",
    "EDGEID_KEK_FILE",
    "EDGEID_DETECTOR",
    "EDGEID_SAMPLES_DIR",
    "EDGEID_LOG",
    "RUST_LOG",
    "CREDENTIALS_DIRECTORY",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    edgeid::daemon::WEDGE_ENV,
];

/// `edgeid` with the repository's models and none of the caller's edgeid
/// settings.
pub fn edgeid() -> Command {
    let mut c = Command::new(BIN);
    for var in CALLER_ENV {
        c.env_remove(var);
    }
    c.env("EDGEID_MODELS_DIR", models_dir());
    c
}

/// Writes `bytes` to `path` with permissions `mode` (KEK files).
pub fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The database file and the two SQLite keeps beside it in WAL mode.
pub const DB_FILES: [&str; 3] = ["edgeid.db", "edgeid.db-wal", "edgeid.db-shm"];

/// Copies `names` from directory `from` to `to` (a backup of a state
/// directory, or putting one back), removing from `to` those `from` lacks.
pub fn copy_files(from: &Path, to: &Path, names: &[&str]) {
    std::fs::create_dir_all(to).expect("dir");
    for name in names {
        let (src, dst) = (from.join(name), to.join(name));
        if src.exists() {
            std::fs::copy(&src, &dst).expect("copy");
        } else {
            let _ = std::fs::remove_file(&dst);
        }
    }
}

/// The database and its WAL as they are on disk (empty when absent).
pub fn database_bytes(state: &Path) -> (Vec<u8>, Vec<u8>) {
    let read = |name: &str| std::fs::read(state.join(name)).unwrap_or_default();
    (read("edgeid.db"), read("edgeid.db-wal"))
}

pub struct Device {
    pub tmp: tempfile::TempDir,
    /// `tmp`'s path: scratch space for the test (PKI, broker, bus, JWKs).
    pub dir: PathBuf,
    pub state: PathBuf,
    pub kek: PathBuf,
    /// `edgeid.toml`, what [`Device::cmd`] uses.
    pub config: PathBuf,
    /// An empty folder a `[camera] source = "folder"` config can play.
    pub camera: PathBuf,
}

impl Device {
    /// No keys yet; `config` is the text of `edgeid.toml`.
    pub fn new(config: &str) -> Device {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().to_owned();
        // dbus-daemon and unprivileged clients must reach sockets in here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let kek = dir.join("kek");
        write_mode(&kek, &[42u8; 32], 0o600);
        let config_path = dir.join("edgeid.toml");
        std::fs::write(&config_path, config).expect("config");
        let camera = dir.join("camera");
        std::fs::create_dir(&camera).expect("camera dir");
        Device {
            state: dir.join("state"),
            tmp,
            dir,
            kek,
            config: config_path,
            camera,
        }
    }

    /// Keys for [`DEVICE`], `obama` enrolled from obama.jpg and obama3.jpg,
    /// and the camera folder holding `camera_photos`.
    pub fn with_obama(samples: &Path, camera_photos: &[&str]) -> Device {
        let d = Device::new(&format!("device_id = \"{DEVICE}\"\n"));
        for p in camera_photos {
            std::fs::copy(samples.join(p), d.camera.join(p)).expect("copy photo");
        }
        d.init_with_obama(samples);
        d
    }

    /// `keys init` and `obama` enrolled from obama.jpg and obama3.jpg, with
    /// the device's config as it is.
    pub fn init_with_obama(&self, samples: &Path) {
        self.cli(&self.config, &["keys", "init"]);
        let photos = [samples.join("obama.jpg"), samples.join("obama3.jpg")];
        let mut enroll = vec!["enroll", "--subject", "obama"];
        enroll.extend(photos.iter().map(|p| p.to_str().expect("utf8")));
        self.cli(&self.config, &enroll);
    }

    /// `edgeid` on this device's state and KEK with `config`.
    pub fn command(&self, config: &Path) -> Command {
        let mut c = edgeid();
        c.env("EDGEID_STATE_DIR", &self.state)
            .env("EDGEID_KEK_FILE", &self.kek)
            .env("EDGEID_CONFIG", config);
        c
    }

    /// `edgeid` with `edgeid.toml`, for assertions on its output.
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command(&self.config))
    }

    /// `keys init` for device `door-1`.
    pub fn init(&self) {
        self.cmd()
            .args(["keys", "init", "--device-id", "door-1"])
            .assert()
            .success();
    }

    /// Writes `<name>.toml` beside `edgeid.toml`.
    pub fn write_config(&self, name: &str, body: &str) -> PathBuf {
        let p = self.dir.join(format!("{name}.toml"));
        std::fs::write(&p, body).expect("config");
        p
    }

    /// Runs `edgeid ARGS` with `config`, which must succeed; its stdout.
    pub fn cli(&self, config: &Path, args: &[&str]) -> String {
        let out = run_ok(self.command(config).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
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

    /// `keys show --jwk`: the device's public key as a JWK.
    pub fn jwk(&self) -> String {
        self.cli(&self.config, &["keys", "show", "--jwk"])
    }

    /// Every audit record, as `audit export --json` prints them.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        match self.json(&["audit", "export", "--json"]) {
            serde_json::Value::Array(records) => records,
            other => panic!("audit export printed no array: {other}"),
        }
    }

    /// `edgeid verdict verify` against this device's key: genuine,
    /// unexpired, for `nonce` (any with `None`), whatever its decision.
    pub fn verdict_verifies(&self, config: &Path, verdict: &str, nonce: Option<&str>) -> bool {
        let mut c = self.command(config);
        c.args(["verdict", "verify", "--any-decision"]);
        match nonce {
            Some(n) => c.args(["--nonce", n]),
            None => c.arg("--any-nonce"),
        };
        c.arg(verdict).output().is_ok_and(|o| o.status.success())
    }

    pub fn db(&self) -> PathBuf {
        self.state.join("edgeid.db")
    }

    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).expect("open db")
    }
}
