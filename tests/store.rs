//! The sealed store: sealing, tamper detection, keys, schema, sequence,
//! lockout and queue, without any model.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use edgeid::config::LockoutConfig;
use edgeid::decision::Gallery;
use edgeid::decision::lockout::{LockState, Lockout};
use edgeid::store::keys::{self, KekSource, KeyError};
use edgeid::store::templates::{self, NewTemplate};
use edgeid::store::{Kek, Store, StoreError, device, queue, schema};

fn kek_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write kek");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

fn kek(dir: &Path, name: &str, byte: u8) -> Kek {
    let p = kek_file(dir, name, &[byte; 32], 0o600);
    Kek::read(&p, KekSource::File(p.clone()), true).expect("kek")
}

fn vector(seed: f32, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|i| ((i as f32 + 1.0) * seed).sin()).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn template(v: &[f32]) -> NewTemplate<'_> {
    NewTemplate {
        modality: "face",
        model_id: "m1",
        model_sha256: "abc",
        vector: v,
        quality: serde_json::json!({"sharpness": 100.0}),
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    state: PathBuf,
    dir: PathBuf,
    store: Store,
    kek: Kek,
    vectors: Vec<Vec<f32>>,
}

/// alice: 2 templates, bob: 1 template.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_owned();
    let state = dir.join("state");
    let kek = kek(&dir, "kek", 7);
    let mut store = Store::create(&state).expect("create");
    let ring = keys::init(&mut store, &kek, "dev-1", false).expect("init");
    let vectors = vec![vector(0.3, 128), vector(0.31, 128), vector(1.7, 128)];
    templates::enroll(
        &mut store,
        &ring.dek,
        "alice",
        &[template(&vectors[0]), template(&vectors[1])],
        false,
        None,
    )
    .expect("alice");
    templates::enroll(
        &mut store,
        &ring.dek,
        "bob",
        &[template(&vectors[2])],
        false,
        None,
    )
    .expect("bob");
    Fixture {
        _tmp: tmp,
        state,
        dir,
        store,
        kek,
        vectors,
    }
}

fn row_of(store: &Store, subject: &str) -> i64 {
    store
        .conn()
        .query_row(
            "SELECT id FROM templates WHERE subject = ?1 ORDER BY id LIMIT 1",
            [subject],
            |r| r.get(0),
        )
        .expect("row")
}

#[test]
fn templates_round_trip_through_the_gallery() {
    let f = fixture();
    let ring = keys::unlock(&f.store, &f.kek).expect("unlock");
    let load = Gallery::open(&f.store, &ring.dek, "face", "m1", None).expect("open");
    assert!(load.tampered.is_empty());
    assert_eq!(load.gallery.len(), 3);
    let s = load
        .gallery
        .score_subject("alice", &f.vectors[1])
        .expect("alice");
    assert!((s - 1.0).abs() < 1e-5);
    let top = load.gallery.top_subjects(&f.vectors[2], 2);
    assert_eq!(top[0].subject, "bob");
}

#[test]
fn flipping_any_byte_of_a_sealed_template_is_detected_for_that_subject_only() {
    let f = fixture();
    let ring = keys::unlock(&f.store, &f.kek).expect("unlock");
    let row = row_of(&f.store, "alice");
    let blob: Vec<u8> = f
        .store
        .conn()
        .query_row("SELECT sealed FROM templates WHERE id = ?1", [row], |r| {
            r.get(0)
        })
        .expect("blob");
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x80;
        f.store
            .conn()
            .execute(
                "UPDATE templates SET sealed = ?1 WHERE id = ?2",
                (&bad, row),
            )
            .expect("tamper");
        let load = Gallery::open(&f.store, &ring.dek, "face", "m1", None).expect("no crash");
        assert_eq!(load.tampered.len(), 1, "byte {i}");
        assert_eq!(load.tampered[0].row, row);
        assert_eq!(load.tampered[0].subject, "alice");
        assert!(
            !load.gallery.contains("alice"),
            "a subject with a bad row is withdrawn"
        );
        assert!(load.gallery.contains("bob"));
    }
}

#[test]
fn a_blob_moved_to_another_row_fails_to_open() {
    let f = fixture();
    let ring = keys::unlock(&f.store, &f.kek).expect("unlock");
    let (a, b) = (row_of(&f.store, "alice"), row_of(&f.store, "bob"));
    f.store
        .conn()
        .execute("UPDATE templates SET sealed = (SELECT sealed FROM templates WHERE id = ?1) WHERE id = ?2", (a, b))
        .expect("move");
    let load = Gallery::open(&f.store, &ring.dek, "face", "m1", None).expect("open");
    assert_eq!(
        load.tampered.iter().map(|t| t.row).collect::<Vec<_>>(),
        vec![b]
    );
    assert!(load.gallery.contains("alice"));
    // Relabelling a row to another subject or model also breaks it.
    f.store
        .conn()
        .execute("UPDATE templates SET subject = 'bob' WHERE id = ?1", [a])
        .expect("relabel");
    let load = Gallery::open(&f.store, &ring.dek, "face", "m1", None).expect("open");
    assert!(load.tampered.iter().any(|t| t.row == a));
}

#[test]
fn templates_of_another_model_are_never_compared() {
    let f = fixture();
    let ring = keys::unlock(&f.store, &f.kek).expect("unlock");
    let load = Gallery::open(&f.store, &ring.dek, "face", "m2", None).expect("open");
    assert!(load.gallery.is_empty());
    assert_eq!(
        load.needs_reenrolment(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

#[test]
fn database_and_wal_hold_no_plaintext_embedding() {
    let f = fixture();
    let db = f.state.join("edgeid.db");
    let mut haystack = file_bytes(&db);
    haystack.extend(file_bytes(&f.state.join("edgeid.db-wal")));
    assert!(haystack.len() > 4096);
    for v in &f.vectors {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        // Any 16-byte window (4 floats) of the vector would be a leak.
        for w in bytes.chunks(16) {
            assert!(
                !haystack.windows(w.len()).any(|h| h == w),
                "plaintext embedding bytes found on disk"
            );
        }
    }
}

#[test]
fn wrong_kek_is_refused_and_nothing_is_modified() {
    let f = fixture();
    drop(f.store);
    let db = f.state.join("edgeid.db");
    let before = (file_bytes(&db), file_bytes(&f.state.join("edgeid.db-wal")));
    let store = Store::open(&f.state).expect("open");
    let wrong = kek(&f.dir, "wrong", 8);
    match keys::unlock(&store, &wrong) {
        Err(StoreError::Key(KeyError::WrongKek(_))) => {}
        other => panic!("expected WrongKek, got {:?}", other.err()),
    }
    drop(store);
    assert_eq!(
        before,
        (file_bytes(&db), file_bytes(&f.state.join("edgeid.db-wal")))
    );
}

#[test]
fn kek_files_are_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let short = kek_file(tmp.path(), "short", &[1; 31], 0o600);
    assert!(matches!(
        Kek::read(&short, KekSource::File(short.clone()), true),
        Err(KeyError::WrongLength { len: 31, .. })
    ));
    let loose = kek_file(tmp.path(), "loose", &[1; 32], 0o644);
    let err = Kek::locate(Some(&loose)).err().expect("loose refused");
    assert!(
        matches!(err, KeyError::LoosePermissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"));
    let hex = kek_file(
        tmp.path(),
        "hex",
        format!("{}\n", "0f".repeat(32)).as_bytes(),
        0o600,
    );
    assert!(Kek::locate(Some(&hex)).is_ok());
    let missing = tmp.path().join("absent");
    assert!(matches!(
        Kek::locate(Some(&missing)),
        Err(KeyError::Read { .. })
    ));
}

#[test]
fn a_newer_schema_is_refused_without_modification() {
    let f = fixture();
    f.store
        .conn()
        .execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, 0)",
            [schema::SCHEMA_VERSION + 1],
        )
        .expect("bump");
    drop(f.store);
    let db = f.state.join("edgeid.db");
    let before = file_bytes(&db);
    match Store::open(&f.state) {
        Err(e @ StoreError::NewerSchema { .. }) => {
            assert!(e.to_string().contains("upgrade edgeid"))
        }
        other => panic!("expected NewerSchema, got {:?}", other.err()),
    }
    assert_eq!(before, file_bytes(&db));
}

#[test]
fn rotation_rewraps_and_optionally_reseals() {
    let mut f = fixture();
    let new = kek(&f.dir, "new", 9);
    let report = keys::rotate(&mut f.store, &f.kek, &new, false).expect("rotate");
    assert_eq!(report.templates_resealed, 0);
    assert!(keys::unlock(&f.store, &f.kek).is_err());
    let ring = keys::unlock(&f.store, &new).expect("new kek opens");
    let pk = ring.public_key();
    let newer = kek(&f.dir, "newer", 10);
    let report = keys::rotate(&mut f.store, &new, &newer, true).expect("rotate dek");
    assert_eq!(report.templates_resealed, 3);
    let ring2 = keys::unlock(&f.store, &newer).expect("newer");
    assert_ne!(ring.dek.bytes(), ring2.dek.bytes());
    assert_eq!(pk, ring2.public_key(), "the device key survives rotation");
    let load = Gallery::open(&f.store, &ring2.dek, "face", "m1", None).expect("open");
    assert_eq!(load.gallery.len(), 3);
    assert!(load.tampered.is_empty());
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let mut f = fixture();
    assert!(matches!(
        keys::init(&mut f.store, &f.kek, "dev-2", false),
        Err(StoreError::Key(KeyError::AlreadyInitialised))
    ));
    let seq = device::next_seq(&mut f.store).expect("seq");
    keys::init(&mut f.store, &f.kek, "dev-2", true).expect("force");
    assert!(templates::list_subjects(&f.store).expect("list").is_empty());
    assert!(
        device::next_seq(&mut f.store).expect("seq") > seq,
        "seq never restarts"
    );
}

#[test]
fn seq_is_monotonic_across_reopen() {
    let mut f = fixture();
    let a = device::next_seq(&mut f.store).expect("seq");
    let b = device::next_seq(&mut f.store).expect("seq");
    drop(f.store);
    let mut store = Store::open(&f.state).expect("reopen");
    let c = device::next_seq(&mut store).expect("seq");
    assert!(a < b && b < c);
}

#[test]
fn enrol_is_all_or_nothing_and_revoke_removes_everything() {
    let mut f = fixture();
    let ring = keys::unlock(&f.store, &f.kek).expect("unlock");
    assert!(matches!(
        templates::enroll(
            &mut f.store,
            &ring.dek,
            "alice",
            &[template(&f.vectors[0])],
            false,
            None
        ),
        Err(StoreError::SubjectExists(_))
    ));
    let bad = vec![f32::NAN; 3];
    assert!(
        templates::enroll(
            &mut f.store,
            &ring.dek,
            "bad id",
            &[template(&bad)],
            false,
            None
        )
        .is_err()
    );
    assert_eq!(
        templates::revoke(&mut f.store, "alice", None).expect("revoke"),
        2
    );
    let n: i64 = f
        .store
        .conn()
        .query_row(
            "SELECT count(*) FROM templates WHERE subject='alice'",
            [],
            |r| r.get(0),
        )
        .expect("n");
    assert_eq!(n, 0);
    assert!(matches!(
        templates::revoke(&mut f.store, "alice", None),
        Err(StoreError::UnknownSubject(_))
    ));
}

#[test]
fn lockout_counts_failures_and_survives_restart() {
    let mut f = fixture();
    let lock = Lockout::from(LockoutConfig {
        max_failures: 3,
        window_secs: 60,
    });
    let t0 = 1_000_000;
    for i in 0..2 {
        assert!(matches!(
            lock.record(&mut f.store, "alice", false, t0 + i)
                .expect("rec"),
            LockState::Open { .. }
        ));
    }
    assert!(matches!(
        lock.record(&mut f.store, "alice", false, t0 + 2)
            .expect("rec"),
        LockState::Locked { .. }
    ));
    drop(f.store);
    let mut store = Store::open(&f.state).expect("reopen");
    match lock.check(&store, "alice", t0 + 30_000).expect("check") {
        LockState::Locked { until_ms, .. } => assert_eq!(until_ms, t0 + 60_000),
        s => panic!("expected locked, got {s:?}"),
    }
    assert!(matches!(
        lock.check(&store, "bob", t0).expect("check"),
        LockState::Open { .. }
    ));
    assert!(matches!(
        lock.check(&store, "alice", t0 + 60_001).expect("check"),
        LockState::Open { .. }
    ));
    lock.record(&mut store, "alice", true, t0 + 60_002)
        .expect("success");
    assert_eq!(
        lock.check(&store, "alice", t0 + 60_003).expect("check"),
        LockState::Open { recent_failures: 0 }
    );
}

#[test]
fn verdict_queue_is_bounded() {
    let mut f = fixture();
    for i in 0..5 {
        queue::push(&mut f.store, &format!("v{i}"), 3).expect("push");
    }
    assert_eq!(queue::len(&f.store).expect("len"), 3);
    let first = queue::peek(&f.store).expect("peek").expect("some");
    assert_eq!(first.verdict, "v2");
    assert!(queue::remove(&f.store, first.id).expect("remove"));
    assert_eq!(
        queue::peek(&f.store).expect("peek").expect("some").verdict,
        "v3"
    );
}

#[test]
fn a_verdict_number_and_its_audit_record_commit_together() {
    use edgeid::decision::{Mode, Outcome, Reason};
    use edgeid::store::audit;
    use edgeid::verdict::{IssueRequest, issue};
    let mut f = fixture();
    let ring = keys::unlock(&f.store, &f.kek).expect("unlock");
    let outcome = Outcome::reject(Mode::Verify, Reason::NoMatch, Some("alice"));
    let request = || IssueRequest {
        outcome: &outcome,
        nonce: Some("n-1"),
        modalities: &["face"],
        lifetime_secs: 30,
        detail: serde_json::json!({}),
    };
    let first = issue(&mut f.store, &ring, request()).expect("issue");
    let records = audit::export(&f.store).expect("export").len();

    // The audit insert fails (as on a full disk): no number may be spent.
    f.store
        .conn()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit \
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .expect("trigger");
    assert!(issue(&mut f.store, &ring, request()).is_err());
    assert_eq!(
        device::current_seq(f.store.conn()).expect("seq"),
        first.claims.seq,
        "a verdict that was never issued spent a sequence number"
    );
    assert_eq!(audit::export(&f.store).expect("export").len(), records);

    f.store
        .conn()
        .execute_batch("DROP TRIGGER refuse;")
        .expect("drop trigger");
    let next = issue(&mut f.store, &ring, request()).expect("issue");
    assert_eq!(next.claims.seq, first.claims.seq + 1, "no gap in seq");
    let last = audit::export(&f.store)
        .expect("export")
        .pop()
        .expect("record");
    assert_eq!(last.detail["seq"], next.claims.seq);
    assert!(audit::verify(&f.store).expect("verify").broken.is_none());
}
