//! The state directory and the store's files are private whatever the
//! umask: directory 0700; database, WAL, shared memory and rollback anchor
//! 0600; a loose directory or database left by someone else is tightened.
//!
//! One test per binary: the umask is the process's.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use edgeid::store::keys::{self, KekSource};
use edgeid::store::templates::{self, NewTemplate};
use edgeid::store::{Kek, Store};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn store_files(state: &Path) -> Vec<(String, u32)> {
    [
        "edgeid.db",
        "edgeid.db-wal",
        "edgeid.db-shm",
        "edgeid.anchor",
    ]
    .iter()
    .map(|name| (name.to_string(), mode(&state.join(name))))
    .collect()
}

fn private(state: &Path) -> Vec<(String, u32)> {
    store_files(state)
        .into_iter()
        .map(|(name, _)| (name, 0o600))
        .collect()
}

#[test]
fn store_files_are_private_under_umask_022_and_a_loose_dir_is_tightened() {
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe { libc::umask(0o022) };
    let tmp = tempfile::tempdir().expect("tmp");
    let kek = Kek::from_bytes(&[5; 32], KekSource::File("test".into()));
    let vector = vec![0.5f32; 8];
    let template = || NewTemplate {
        modality: "face",
        model_id: "m1",
        model_sha256: "abc",
        vector: &vector,
        quality: serde_json::json!({}),
    };

    // A state directory someone created 0755 beforehand.
    let state = tmp.path().join("state");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&state)
        .expect("mkdir");
    assert_eq!(mode(&state), 0o755);
    let mut store = Store::create(&state).expect("create");
    assert_eq!(mode(&state), 0o700, "the state directory was not tightened");
    let ring = keys::init(&mut store, &kek, "dev-1", false).expect("init");
    templates::enroll(&mut store, &ring.dek, "alice", &[template()], false, None).expect("enrol");
    assert_eq!(store_files(&state), private(&state));
    drop(store);

    // A new directory, created by edgeid itself.
    let fresh = tmp.path().join("a/b/state");
    let store = Store::create(&fresh).expect("create");
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("edgeid.db")), 0o600);
    drop(store);

    // A store an older edgeid left loose: tightened when opened.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for name in ["edgeid.db", "edgeid.anchor"] {
        std::fs::set_permissions(state.join(name), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let mut store = Store::open(&state).expect("open");
    let ring = keys::unlock(&mut store, &kek).expect("unlock");
    templates::enroll(&mut store, &ring.dek, "bob", &[template()], false, None).expect("enrol");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(store_files(&state), private(&state));
}
