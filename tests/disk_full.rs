//! A full disk, for real: the state directory on a small tmpfs mounted in a
//! mount namespace of the test's own (`unshare -rm`, no privilege needed),
//! every edgeid command run inside it with `nsenter`. With the filesystem
//! filled, a write says "disk full" (not "disk I/O error ... 4874") and
//! changes nothing; the read-only verbs (`subjects list`, `audit verify`,
//! `audit export`, `keys show`) still work; once space is freed the store
//! holds exactly what it held, verifies, and takes writes again.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{Device, Guard, samples, tools, wait_until};

/// A mount namespace holding a tmpfs of `size` at `at`, alive while the
/// guard is.
struct SmallDisk {
    guard: Guard,
    at: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size: &str, marker: &Path) -> SmallDisk {
        std::fs::create_dir_all(at).expect("mount point");
        let child = Command::new("unshare")
            .args(["-rm", "--propagation", "private", "--", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={size},mode=0700 tmpfs '{}' && echo mounted > '{}' && exec sleep 600",
                at.display(),
                marker.display()
            ))
            .stdout(Stdio::null())
            .spawn()
            .expect("unshare");
        let guard = Guard::new(child, "mount namespace");
        assert!(
            wait_until(Duration::from_secs(10), || marker.exists()),
            "the tmpfs was not mounted (unshare -rm refused?)"
        );
        SmallDisk {
            guard,
            at: at.to_owned(),
        }
    }

    /// `program args` inside the namespace, with `env`.
    fn run(&self, program: &str, args: &[&str], env: &[(String, String)]) -> Output {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.guard.child.id().to_string(), "-U", "-m"])
            .arg("--preserve-credentials")
            .arg("--")
            .arg(program)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        c.output().expect("nsenter")
    }
}

/// `edgeid` on `d`'s KEK and config, with its state on the small disk.
struct Edgeid<'a> {
    disk: &'a SmallDisk,
    env: Vec<(String, String)>,
}

impl Edgeid<'_> {
    fn run(&self, args: &[&str]) -> Output {
        self.disk.run(support::BIN, args, &self.env)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "edgeid {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn audit_records(&self) -> usize {
        let out = self.ok(&["--json", "audit", "export"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .expect("records")
            .len()
    }
}

#[test]
fn a_full_disk_is_named_loses_nothing_and_reading_still_works() {
    let samples = require!(samples());
    require!(tools(&["unshare", "nsenter", "mount", "sh", "cat"]));
    let d = Device::new("");
    let disk = SmallDisk::mount(&d.dir.join("small"), "3m", &d.dir.join("mounted"));
    let state = disk.at.join("state");
    let mut env: Vec<(String, String)> = d
        .command(&d.config)
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .filter(|(k, _)| k != "EDGEID_STATE_DIR")
        .collect();
    env.push(("EDGEID_STATE_DIR".into(), state.display().to_string()));
    env.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    let edgeid = Edgeid { disk: &disk, env };

    edgeid.ok(&["keys", "init", "--device-id", "door-1"]);
    let photo = samples.join("obama.jpg");
    edgeid.ok(&[
        "enroll",
        "--subject",
        "obama",
        photo.to_str().expect("utf8"),
    ]);
    let subjects = edgeid.ok(&["subjects", "list"]);
    let records = edgeid.audit_records();
    let jwk = edgeid.ok(&["keys", "show", "--jwk"]);

    // Fill it (cat stops at ENOSPC).
    let fill = disk.at.join("fill");
    disk.run(
        "sh",
        &["-c", &format!("cat /dev/zero > '{}'", fill.display())],
        &edgeid.env,
    );

    // A write: named, and nothing changes.
    for write in [
        &["subjects", "revoke", "obama"][..],
        &[
            "enroll",
            "--subject",
            "biden",
            photo.to_str().expect("utf8"),
        ],
    ] {
        let out = edgeid.run(write);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{write:?} succeeded on a full disk");
        assert!(stderr.contains("disk full"), "{write:?}: {stderr}");
    }
    // Reading still works, and sees what was there.
    assert_eq!(edgeid.ok(&["subjects", "list"]), subjects);
    assert!(
        edgeid
            .ok(&["audit", "verify"])
            .contains("audit chain intact")
    );
    assert_eq!(edgeid.audit_records(), records);
    assert_eq!(edgeid.ok(&["keys", "show", "--jwk"]), jwk);

    // Space back: the same store, intact, writable.
    disk.run("rm", &["-f", fill.to_str().expect("utf8")], &edgeid.env);
    assert_eq!(edgeid.ok(&["subjects", "list"]), subjects);
    assert!(
        edgeid
            .ok(&["audit", "verify"])
            .contains("audit chain intact")
    );
    assert_eq!(edgeid.audit_records(), records);
    edgeid.ok(&["subjects", "revoke", "obama"]);
    assert!(edgeid.ok(&["subjects", "list"]).contains("no subjects"));
}
