//! The sealed store: sealing, tamper detection, keys, schema, sequence,
//! lockout and queue, without any model.

mod support;

use std::path::{Path, PathBuf};

use edgeid::decision::Gallery;
use edgeid::decision::Provenance;
use edgeid::decision::lockout::{LockState, Lockout, LockoutConfig};
use edgeid::store::keys::{self, KekSource, KeyError};
use edgeid::store::templates::{self, ModelLabel, NewTemplate};
use edgeid::store::{Kek, Store, StoreError, device, queue, schema};
use support::device::{DB_FILES, copy_files, database_bytes, write_mode};

fn kek_file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    write_mode(&p, bytes, mode);
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

/// The model `template` labels its templates with, and another file of it.
const M1: ModelLabel<'static> = ModelLabel {
    id: "m1",
    sha256: "abc",
};
const M2: ModelLabel<'static> = ModelLabel {
    id: "m2",
    sha256: "abc",
};

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

fn blob_of(store: &Store, row: i64) -> Vec<u8> {
    store
        .conn()
        .query_row("SELECT sealed FROM templates WHERE id = ?1", [row], |r| {
            r.get(0)
        })
        .expect("blob")
}

/// The `M1` gallery, all three templates opened, `subject` matching `probe`.
fn whole_gallery_matching(
    store: &Store,
    ring: &keys::KeyRing,
    subject: &str,
    probe: &[f32],
) -> edgeid::decision::GalleryLoad {
    let load = Gallery::open(store, &ring.dek, "face", M1, None).expect("open");
    assert!(load.tampered.is_empty(), "{:?}", load.tampered);
    assert_eq!(load.gallery.len(), 3);
    let s = load.gallery.score_subject(subject, probe).expect(subject);
    assert!((s - 1.0).abs() < 1e-5);
    load
}

#[test]
fn templates_round_trip_through_the_gallery() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let load = whole_gallery_matching(&f.store, &ring, "alice", &f.vectors[1]);
    let top = load.gallery.top_subjects(&f.vectors[2], 2);
    assert_eq!(top[0].subject, "bob");
}

#[test]
fn flipping_any_byte_of_a_sealed_template_is_detected_for_that_subject_only() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let row = row_of(&f.store, "alice");
    let blob = blob_of(&f.store, row);
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
        let load = Gallery::open(&f.store, &ring.dek, "face", M1, None).expect("no crash");
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
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let (a, b) = (row_of(&f.store, "alice"), row_of(&f.store, "bob"));
    f.store
        .conn()
        .execute("UPDATE templates SET sealed = (SELECT sealed FROM templates WHERE id = ?1) WHERE id = ?2", (a, b))
        .expect("move");
    let load = Gallery::open(&f.store, &ring.dek, "face", M1, None).expect("open");
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
    let load = Gallery::open(&f.store, &ring.dek, "face", M1, None).expect("open");
    assert!(load.tampered.iter().any(|t| t.row == a));
}

#[test]
fn templates_of_another_model_are_never_compared() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let load = Gallery::open(&f.store, &ring.dek, "face", M2, None).expect("open");
    assert!(load.gallery.is_empty());
    assert_eq!(
        load.needs_reenrolment(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
}

#[test]
fn database_and_wal_hold_no_plaintext_embedding() {
    let f = fixture();
    let (mut haystack, wal) = database_bytes(&f.state);
    haystack.extend(wal);
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
    let before = database_bytes(&f.state);
    let mut store = Store::open(&f.state).expect("open");
    let wrong = kek(&f.dir, "wrong", 8);
    match keys::unlock(&mut store, &wrong) {
        Err(StoreError::Key(KeyError::WrongKek(_))) => {}
        other => panic!("expected WrongKek, got {:?}", other.err()),
    }
    drop(store);
    assert_eq!(before, database_bytes(&f.state));
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
    let before = database_bytes(&f.state).0;
    match Store::open(&f.state) {
        Err(e @ StoreError::NewerSchema { .. }) => {
            assert!(e.to_string().contains("upgrade edgeid"))
        }
        other => panic!("expected NewerSchema, got {:?}", other.err()),
    }
    assert_eq!(before, database_bytes(&f.state).0);
}

#[test]
fn rotation_rewraps_and_optionally_reseals() {
    let mut f = fixture();
    let new = kek(&f.dir, "new", 9);
    let report = keys::rotate(&mut f.store, &f.kek, &new, false).expect("rotate");
    assert_eq!(report.templates_resealed, 0);
    assert!(keys::unlock(&mut f.store, &f.kek).is_err());
    let ring = keys::unlock(&mut f.store, &new).expect("new kek opens");
    let pk = ring.public_key();
    let newer = kek(&f.dir, "newer", 10);
    let report = keys::rotate(&mut f.store, &new, &newer, true).expect("rotate dek");
    assert_eq!(report.templates_resealed, 3);
    let ring2 = keys::unlock(&mut f.store, &newer).expect("newer");
    assert_ne!(ring.dek.bytes(), ring2.dek.bytes());
    assert_eq!(pk, ring2.public_key(), "the device key survives rotation");
    let load = Gallery::open(&f.store, &ring2.dek, "face", M1, None).expect("open");
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
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
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
        backoff_initial_secs: 60,
        backoff_max_secs: 60,
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
        // The wait runs from the latest failure.
        LockState::Locked { until_ms, .. } => assert_eq!(until_ms, t0 + 2 + 60_000),
        s => panic!("expected locked, got {s:?}"),
    }
    assert!(matches!(
        lock.check(&store, "bob", t0).expect("check"),
        LockState::Open { .. }
    ));
    assert!(matches!(
        lock.check(&store, "alice", t0 + 60_002).expect("check"),
        LockState::Open { .. }
    ));
    lock.record(&mut store, "alice", true, t0 + 60_003)
        .expect("success");
    assert_eq!(
        lock.check(&store, "alice", t0 + 60_004).expect("check"),
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
    use edgeid::decision::IssueRequest;
    use edgeid::decision::issue::issue;
    use edgeid::decision::{Mode, Outcome, Reason};
    use edgeid::store::audit;
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let outcome = Outcome::reject(Mode::Verify, Reason::NoMatch, Some("alice"));
    let request = || IssueRequest {
        outcome: &outcome,
        nonce: Some("n-1"),
        modalities: &["face"],
        provenance: Provenance::PHOTOS,
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

// ---- The rollback anchor (issue 9, item 4) ----

/// Issues one reject verdict; its sequence number.
fn issue_seq(store: &mut Store, ring: &keys::KeyRing) -> u64 {
    use edgeid::decision::issue::issue;
    use edgeid::decision::{IssueRequest, Mode, Outcome, Reason};
    let outcome = Outcome::reject(Mode::Verify, Reason::NoMatch, Some("alice"));
    let request = IssueRequest {
        outcome: &outcome,
        nonce: None,
        modalities: &["face"],
        provenance: Provenance::PHOTOS,
        lifetime_secs: 30,
        detail: serde_json::json!({}),
    };
    issue(store, ring, request).expect("issue").claims.seq
}

fn events(store: &Store, name: &str) -> Vec<edgeid::store::audit::Record> {
    edgeid::store::audit::export(store)
        .expect("export")
        .into_iter()
        .filter(|r| r.event == name)
        .collect()
}

fn reopen(state: &Path) -> Store {
    Store::open(state).expect("open")
}

#[test]
fn a_restored_older_database_is_refused_and_no_seq_is_issued_twice() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    assert_eq!(issue_seq(&mut f.store, &ring), 1);
    drop(f.store);
    let backup = f.dir.join("backup");
    copy_files(&f.state, &backup, &DB_FILES);

    let mut store = reopen(&f.state);
    let ring = keys::unlock(&mut store, &f.kek).expect("unlock");
    assert_eq!(issue_seq(&mut store, &ring), 2);
    assert_eq!(issue_seq(&mut store, &ring), 3);
    templates::revoke(&mut store, "bob", None).expect("revoke");
    drop(store);

    // The older copy goes back: bob is in it again, its seq is 1.
    copy_files(&backup, &f.state, &DB_FILES);
    let mut store = reopen(&f.state);
    assert!(templates::subject_exists(&store, "bob").expect("bob"));
    for _ in 0..2 {
        match keys::unlock(&mut store, &f.kek) {
            Err(e @ StoreError::RolledBack { .. }) => {
                let StoreError::RolledBack {
                    db_seq, anchor_seq, ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!((db_seq, anchor_seq), (1, 3));
                assert!(
                    e.to_string()
                        .contains("keys reanchor --i-restored-a-backup")
                );
            }
            other => panic!("expected RolledBack, got {:?}", other.err()),
        }
    }
    assert!(!store.is_anchored());
    // Recorded once, however often it is refused.
    let refusals = events(&store, "rollback_detected");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].detail["problem"], "behind");
    assert_eq!(refusals[0].detail["anchor"]["seq"], 3);
    drop(store);

    // An administrator accepts the copy: the numbers issued meanwhile stay spent.
    let mut store = reopen(&f.state);
    let report = keys::reanchor(&mut store, &f.kek).expect("reanchor");
    assert_eq!(report.database_before.seq, 1);
    assert_eq!(report.now.seq, 3);
    assert_eq!(
        events(&store, "anchor_reset").last().expect("reset").detail["cause"],
        "admin_reanchor"
    );
    drop(store);
    let mut store = reopen(&f.state);
    let ring = keys::unlock(&mut store, &f.kek).expect("unlock after reanchor");
    assert_eq!(
        issue_seq(&mut store, &ring),
        4,
        "a sequence number was issued twice"
    );
}

/// A fixture's files after one verdict, its store closed.
struct Closed {
    _tmp: tempfile::TempDir,
    state: PathBuf,
    dir: PathBuf,
    kek: Kek,
}

fn closed_after_one_verdict() -> Closed {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    issue_seq(&mut f.store, &ring);
    let Fixture {
        _tmp,
        state,
        dir,
        kek,
        ..
    } = f;
    Closed {
        _tmp,
        state,
        dir,
        kek,
    }
}

#[test]
fn a_deleted_or_forged_anchor_is_refused() {
    let f = closed_after_one_verdict();
    let anchor = f.state.join(edgeid::store::anchor::ANCHOR_FILE);
    let genuine = std::fs::read_to_string(&anchor).expect("anchor");

    std::fs::remove_file(&anchor).expect("delete");
    let mut store = reopen(&f.state);
    assert!(matches!(
        keys::unlock(&mut store, &f.kek),
        Err(StoreError::AnchorMissing { db_seq: 1, .. })
    ));
    drop(store);

    // Same MAC, a lower seq (to make room for an older copy): refused.
    let forged = genuine.replace("\"seq\":1,", "\"seq\":0,");
    assert_ne!(forged, genuine);
    std::fs::write(&anchor, forged).expect("forge");
    let mut store = reopen(&f.state);
    assert!(matches!(
        keys::unlock(&mut store, &f.kek),
        Err(StoreError::AnchorUnauthentic { .. })
    ));
    let problems: Vec<_> = events(&store, "rollback_detected")
        .iter()
        .map(|r| r.detail["problem"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(problems, ["anchor_missing", "anchor_unauthentic"]);
    drop(store);

    std::fs::write(&anchor, genuine).expect("restore");
    let mut store = reopen(&f.state);
    keys::unlock(&mut store, &f.kek).expect("the genuine anchor opens again");
}

#[test]
fn a_database_that_went_another_way_is_refused() {
    let f = closed_after_one_verdict();
    let anchor = edgeid::store::anchor::ANCHOR_FILE;
    let mut with_anchor = DB_FILES.to_vec();
    with_anchor.push(anchor);
    let first = f.dir.join("first");
    copy_files(&f.state, &first, &with_anchor);

    let mut store = reopen(&f.state);
    let ring = keys::unlock(&mut store, &f.kek).expect("unlock");
    issue_seq(&mut store, &ring);
    drop(store);
    let later = f.dir.join("later");
    copy_files(&f.state, &later, &[anchor]);

    // The first state, anchor and all, goes back and issues another verdict:
    // the same counts as the later anchor's, another history.
    copy_files(&first, &f.state, &with_anchor);
    let mut store = reopen(&f.state);
    let ring = keys::unlock(&mut store, &f.kek).expect("a consistent pair opens");
    issue_seq(&mut store, &ring);
    drop(store);
    copy_files(&later, &f.state, &[anchor]);
    let mut store = reopen(&f.state);
    assert!(matches!(
        keys::unlock(&mut store, &f.kek),
        Err(StoreError::Diverged { .. })
    ));
}

#[test]
fn the_anchor_follows_every_commit_and_a_store_never_anchored_is_adopted() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let anchor = f.state.join(edgeid::store::anchor::ANCHOR_FILE);
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&anchor).expect("anchor")).expect("json")
    };
    issue_seq(&mut f.store, &ring);
    let position = edgeid::store::anchor::Position::read(f.store.conn()).expect("position");
    assert_eq!(read()["seq"], 1);
    assert_eq!(read()["audit_record"], position.audit_record);
    assert_eq!(read()["audit_head"], position.audit_head);
    templates::revoke(&mut f.store, "bob", None).expect("revoke");
    let position = edgeid::store::anchor::Position::read(f.store.conn()).expect("position");
    assert_eq!(read()["audit_record"], position.audit_record);
    drop(f.store);

    // A store from before anchors: no anchor, no anchor_reset record, and
    // its log still starting at record 1 (one starting later reads as
    // pruned, so anchored: deleting the checkpoint and the anchor must not
    // pass for a store never anchored). The record is renamed, not deleted.
    std::fs::remove_file(&anchor).expect("delete");
    let conn = rusqlite::Connection::open(f.state.join("edgeid.db")).expect("db");
    conn.execute(
        "UPDATE audit SET event = 'keys_init' WHERE event = 'anchor_reset'",
        [],
    )
    .expect("forget");
    drop(conn);
    let mut store = reopen(&f.state);
    keys::unlock(&mut store, &f.kek).expect("a store never anchored is adopted");
    assert!(anchor.exists());
    assert_eq!(
        events(&store, "anchor_reset")
            .last()
            .expect("record")
            .detail["cause"],
        "legacy_store"
    );
}

// ---- The stored public key (item 5) ----

#[test]
fn a_stored_public_key_that_is_not_the_signing_keys_is_refused() {
    let mut f = fixture();
    let other = fixture();
    let (public_key, kid): (Vec<u8>, String) = other
        .store
        .conn()
        .query_row("SELECT public_key, kid FROM keys", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("other key");
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let genuine = (ring.public_key().to_vec(), ring.kid.clone());
    let set = |store: &Store, key: &[u8], kid: &str| {
        store
            .conn()
            .execute("UPDATE keys SET public_key = ?1, kid = ?2", (key, kid))
            .expect("swap");
    };
    set(&f.store, &public_key, &kid);
    match keys::unlock(&mut f.store, &f.kek) {
        Err(StoreError::Key(e @ KeyError::PublicKeyMismatch { .. })) => {
            let KeyError::PublicKeyMismatch {
                stored_kid,
                derived_kid,
            } = &e
            else {
                unreachable!()
            };
            assert_eq!((stored_kid, derived_kid), (&kid, &genuine.1));
            assert!(e.to_string().contains("tampered"));
        }
        other => panic!("expected PublicKeyMismatch, got {:?}", other.err()),
    }
    // The refusal is in the audit log, once for repeated attempts.
    assert!(keys::unlock(&mut f.store, &f.kek).is_err());
    let recorded = events(&f.store, "key_substituted");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].detail["stored_kid"], kid.as_str());
    assert_eq!(recorded[0].detail["derived_kid"], genuine.1.as_str());
    // The key with another kid, or the kid with another key: refused too.
    set(&f.store, &genuine.0, &kid);
    assert!(keys::unlock(&mut f.store, &f.kek).is_err());
    set(&f.store, &public_key, &genuine.1);
    assert!(keys::unlock(&mut f.store, &f.kek).is_err());
    set(&f.store, &genuine.0, &genuine.1);
    keys::unlock(&mut f.store, &f.kek).expect("the genuine key opens");
    assert_eq!(events(&f.store, "key_substituted").len(), 3);
    let verified = edgeid::store::audit::verify(&f.store).expect("audit verify");
    assert!(verified.broken.is_none(), "{verified:?}");
}

// ---- Templates bound to the model file (item 7) ----

#[test]
fn templates_of_another_file_of_the_same_model_are_never_compared() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let swapped = ModelLabel {
        id: "m1",
        sha256: "0123456789abcdef0123",
    };
    let load = Gallery::open(&f.store, &ring.dek, "face", swapped, None).expect("open");
    assert!(load.gallery.is_empty());
    assert!(load.tampered.is_empty());
    assert_eq!(
        load.needs_reenrolment(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
    assert_eq!(
        load.other_models["alice"].iter().collect::<Vec<_>>(),
        ["m1@sha256:abc"]
    );
}

#[test]
fn relabelling_a_templates_model_file_is_tampering() {
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    f.store
        .conn()
        .execute(
            "UPDATE templates SET model_sha256 = 'def' WHERE subject = 'alice'",
            [],
        )
        .expect("relabel");
    let relabelled = ModelLabel {
        id: "m1",
        sha256: "def",
    };
    let load = Gallery::open(&f.store, &ring.dek, "face", relabelled, None).expect("open");
    assert_eq!(load.tampered.len(), 2);
    assert!(load.tampered.iter().all(|t| t.subject == "alice"));
    assert!(load.gallery.is_empty());
}

#[test]
fn templates_sealed_before_the_model_file_was_bound_still_open_until_resealed() {
    use edgeid::store::seal::{legacy_template_aad, template_aad};
    let mut f = fixture();
    let ring = keys::unlock(&mut f.store, &f.kek).expect("unlock");
    let row = row_of(&f.store, "alice");
    let plain: Vec<u8> = f.vectors[0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let legacy = ring
        .dek
        .seal(&legacy_template_aad(row, "alice", "face", "m1"), &plain)
        .expect("seal");
    f.store
        .conn()
        .execute(
            "UPDATE templates SET sealed = ?1 WHERE id = ?2",
            (&legacy, row),
        )
        .expect("legacy blob");
    whole_gallery_matching(&f.store, &ring, "alice", &f.vectors[0]);
    // Under another file of the model it is not compared either.
    let swapped = ModelLabel {
        id: "m1",
        sha256: "def",
    };
    let load = Gallery::open(&f.store, &ring.dek, "face", swapped, None).expect("open");
    assert!(!load.gallery.contains("alice"));

    // `keys rotate --dek` re-seals it with the sha256 bound.
    let new = kek(&f.dir, "new", 9);
    keys::rotate(&mut f.store, &f.kek, &new, true).expect("rotate");
    let ring = keys::unlock(&mut f.store, &new).expect("unlock");
    let blob = blob_of(&f.store, row);
    let bound = template_aad(row, "alice", "face", "m1", "abc");
    assert!(ring.dek.open(&bound, &blob).is_ok());
}

#[test]
fn a_store_initialised_again_beside_its_old_anchor_continues_its_seq() {
    let f = closed_after_one_verdict();
    // The database goes (say, deleted to start over); its anchor stays.
    for name in DB_FILES {
        let _ = std::fs::remove_file(f.state.join(name));
    }
    let mut store = Store::create(&f.state).expect("create");
    let ring = keys::init(&mut store, &f.kek, "dev-1", false).expect("init");
    assert_eq!(
        issue_seq(&mut store, &ring),
        2,
        "the new store issued number 1 again"
    );
    drop(store);
    let mut store = reopen(&f.state);
    keys::unlock(&mut store, &f.kek).expect("the new anchor is the new store's");
}
