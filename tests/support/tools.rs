//! Programs the tests drive (Mosquitto, dbus-daemon, openssl, busctl,
//! gdbus) and the Python venv of the JOSE cross-check.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::prerequisites::Missing;
use super::repo;

/// All of `names` are on PATH, or which are not.
pub fn tools(names: &[&str]) -> Result<(), Missing> {
    let absent: Vec<&str> = names.iter().copied().filter(|n| !on_path(n)).collect();
    if absent.is_empty() {
        return Ok(());
    }
    Err(Missing::setup(
        format!("{} on PATH", absent.join(", ")),
        "run scripts/setup-system",
    ))
}

fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| executable(&dir.join(name)))
}

fn executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The venv's python with PyJWT (`$EDGEID_PYVENV`, default
/// `<repo>/.cache/pyvenv`, as `scripts/test-python-setup` makes it).
pub fn python_venv() -> Result<PathBuf, Missing> {
    let venv = std::env::var_os("EDGEID_PYVENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/pyvenv"));
    let python = venv.join("bin/python");
    if executable(&python) {
        return Ok(python);
    }
    Err(Missing::setup(
        format!("the PyJWT venv ({})", python.display()),
        "run scripts/test-python-setup",
    ))
}
