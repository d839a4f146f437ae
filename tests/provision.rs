//! `scripts/provision --root DIR` in a scratch root, twice: the service user
//! and groups in DIR/etc (useradd --prefix), the state directory, the KEK
//! file (0600, root) with its systemd drop-in, the keys, the enabled unit;
//! the second run changes nothing and keeps the keys; a KEK that does not
//! open the store stops it before it touches anything.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::prerequisites::Missing;
use support::{BIN, repo, tools};

fn root_user() -> Result<(), Missing> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Missing::setup(
            "root (provisioning creates users and root-only files)",
            "run the tests as root, as CI does",
        ))
    }
}

/// A minimal root file system: the account files a Debian image has, the
/// video and audio groups, and the package's unit.
fn scratch_root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = tmp.path();
    for dir in ["etc", "var/lib", "lib/systemd/system"] {
        std::fs::create_dir_all(r.join(dir)).expect("dir");
    }
    let write = |p: &str, text: &str| std::fs::write(r.join(p), text).expect("write");
    write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    write("etc/shadow", "root:*:19000:0:99999:7:::\n");
    write("etc/group", "root:x:0:\naudio:x:29:\nvideo:x:44:\n");
    write("etc/gshadow", "root:*::\naudio:*::\nvideo:*::\n");
    std::fs::copy(
        repo().join("systemd/edgeid.service"),
        r.join("lib/systemd/system/edgeid.service"),
    )
    .expect("unit");
    tmp
}

fn provision(root: &Path) -> Output {
    let out = Command::new(repo().join("scripts/provision"))
        .args(["--root".as_ref(), root.as_os_str()])
        .args(["--edgeid", BIN, "--device-id", "door-prov"])
        .env_remove("EDGEID_KEK_FILE")
        .env_remove("EDGEID_STATE_DIR")
        .env_remove("EDGEID_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run scripts/provision");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `root`: mode, owner and content (symlink target),
/// leaving out SQLite's transient WAL and shared-memory files.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let name = path.to_string_lossy();
            if name.ends_with("-wal") || name.ends_with("-shm") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            let content = if meta.file_type().is_symlink() {
                std::fs::read_link(&path)
                    .expect("link")
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).expect("read")
            };
            let rel = path.strip_prefix(root).expect("under root").to_owned();
            out.insert(rel, (meta.mode() & 0o7777, meta.uid(), meta.gid(), content));
        }
    }
    out
}

/// The field `index` of `name`'s line in the colon-separated `file`.
fn entry(root: &Path, file: &str, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root.join(file)).expect("account file");
    text.lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {file}:\n{text}"))
        .split(':')
        .map(str::to_owned)
        .collect()
}

/// `edgeid keys show --json` on the scratch root's store with its KEK.
fn kid(root: &Path, kek: &Path) -> Result<String, String> {
    let out = Command::new(BIN)
        .env("EDGEID_KEK_FILE", kek)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("EDGEID_MODELS_DIR", repo().join("models"))
        .args(["--json", "--state-dir"])
        .arg(root.join("var/lib/edgeid"))
        .args(["--config"])
        .arg(root.join("etc/edgeid/edgeid.toml"))
        .args(["keys", "show"])
        .output()
        .expect("keys show");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["device_id"], "door-prov");
    Ok(v["kid"].as_str().expect("kid").to_owned())
}

#[test]
fn provisioning_twice_in_a_scratch_root_changes_nothing_the_second_time() {
    require!(root_user());
    require!(tools(&[
        "useradd",
        "groupadd",
        "usermod",
        "systemctl",
        "shred"
    ]));
    let tmp = scratch_root();
    let root = tmp.path();

    let first = provision(root);
    assert!(first.status.success(), "first run failed");
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("created system user edgeid"), "{said}");
    assert!(said.contains("created the device keys"), "{said}");

    // The accounts, as packaging/debian/postinst makes them.
    let user = entry(root, "etc/passwd", "edgeid");
    let (uid, gid): (u32, u32) = (user[2].parse().expect("uid"), user[3].parse().expect("gid"));
    assert!(uid > 0 && uid < 1000, "a system uid: {user:?}");
    assert_eq!(user[5], "/var/lib/edgeid");
    assert_eq!(user[6], "/usr/sbin/nologin");
    assert_eq!(entry(root, "etc/group", "edgeid")[2], gid.to_string());
    entry(root, "etc/group", "edgeid-admin");
    for g in ["video", "audio"] {
        let members = entry(root, "etc/group", g)[3].clone();
        assert!(members.split(',').any(|m| m == "edgeid"), "{g}: {members}");
    }

    // The state directory and the store belong to the service user.
    let state = root.join("var/lib/edgeid");
    let meta = std::fs::metadata(&state).expect("state dir");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o700, uid, gid)
    );
    for f in std::fs::read_dir(&state).expect("state") {
        let f = f.expect("entry").path();
        let m = std::fs::metadata(&f).expect("meta");
        assert_eq!((m.uid(), m.mode() & 0o077), (uid, 0), "{}", f.display());
    }
    assert!(state.join("edgeid.db").is_file());

    // The KEK: 32 bytes, root's alone; handed to the service as a credential.
    let kek = root.join("etc/credstore/edgeid.kek");
    let m = std::fs::metadata(&kek).expect("KEK");
    assert_eq!((m.len(), m.mode() & 0o7777, m.uid()), (32, 0o600, 0));
    let dropin = std::fs::read_to_string(root.join("etc/systemd/system/edgeid.service.d/kek.conf"))
        .expect("drop-in");
    assert!(
        dropin.contains("LoadCredential=edgeid.kek:/etc/credstore/edgeid.kek"),
        "{dropin}"
    );
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/edgeid.service")
            .symlink_metadata()
            .is_ok(),
        "the unit is not enabled"
    );
    assert!(
        root.join("etc/dbus-1/system.d/org.edgeid.Auth1.conf")
            .is_file()
    );
    let kid_before = kid(root, &kek).expect("the KEK opens the store");

    // Again: nothing changes, the keys stay.
    let before = snapshot(root);
    let second = provision(root);
    assert!(second.status.success(), "second run failed");
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(said.contains("nothing to do"), "{said}");
    let after = snapshot(root);
    for (path, was) in &before {
        assert_eq!(after.get(path), Some(was), "{} changed", path.display());
    }
    assert_eq!(before.len(), after.len(), "files appeared or vanished");
    assert_eq!(kid(root, &kek).expect("keys"), kid_before);

    // Another KEK in place of the right one: refused, store untouched.
    let saved = std::fs::read(&kek).expect("KEK");
    std::fs::write(&kek, [7u8; 32]).expect("wrong KEK");
    let third = provision(root);
    assert!(
        !third.status.success(),
        "a KEK that does not open the store was accepted"
    );
    assert!(
        String::from_utf8_lossy(&third.stderr).contains("does not open"),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    std::fs::write(&kek, &saved).expect("restore KEK");
    assert_eq!(kid(root, &kek).expect("keys"), kid_before);
    assert_eq!(
        std::fs::read(state.join("edgeid.db")).expect("db"),
        before[&PathBuf::from("var/lib/edgeid/edgeid.db")].3
    );
}
