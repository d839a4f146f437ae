//! Audit retention: the oldest records pruned behind a checkpoint signed by
//! the device key. Through the library: what is kept still verifies, and
//! editing a kept record, removing more of the oldest, or removing or
//! forging the checkpoint is still named; a broken prefix is not pruned;
//! ages and batches; an enrolment whose record was pruned is still
//! checked; a pruned store whose anchor and checkpoint were deleted is not
//! taken for one never anchored. Through the binary: `audit prune`,
//! `audit verify`, and a signed export that carries the checkpoint.

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgeid::store::audit::{self, AuditError, Break, EnrolmentTampering, RetentionConfig};
use edgeid::store::{Store, StoreError, keys};
use predicates::prelude::*;
use support::chain::{
    Fixture, attacker, enrol, first_break, fixture, newest, rechain, rotate_event,
};
use support::{Device, edgeid, stdout_json};

fn keep(max_rows: u64) -> RetentionConfig {
    RetentionConfig {
        retain_days: 36_500,
        max_rows,
    }
}

fn prune(f: &mut Fixture, limits: &RetentionConfig) -> audit::Pruned {
    audit::prune(&mut f.store, &f.ring, limits, None, "test").expect("prune")
}

fn oldest(store: &Store) -> i64 {
    store
        .conn()
        .query_row("SELECT MIN(id) FROM audit", [], |r| r.get(0))
        .expect("oldest")
}

#[test]
fn the_records_kept_still_verify_and_say_what_was_pruned() {
    let mut f = fixture(30);
    let pruned = prune(&mut f, &keep(10));
    assert_eq!((pruned.records, pruned.through_record), (21, 21));
    // 22..=30 and the `audit_pruned` record: ten.
    assert_eq!(
        (oldest(&f.store), newest(&f.store), pruned.kept),
        (22, 31, 10)
    );
    let report = audit::verify(&f.store).expect("verify");
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.records, 10);
    assert_eq!(report.macs.checked, 10);
    let checkpoint = report.checkpoint.expect("checkpoint reported");
    assert_eq!((checkpoint.through_record, checkpoint.pruned), (21, 21));
    let last = audit::export(&f.store)
        .expect("export")
        .pop()
        .expect("record");
    assert_eq!(last.event, "audit_pruned");
    assert_eq!(last.detail["through_record"], 21);
    assert_eq!(last.detail["by"], "test");
    // Without the keys, hashes, links and the checkpoint's signature.
    let plain = Store::open(&f.dir.join("state")).expect("open");
    assert!(audit::verify(&plain).expect("verify").broken.is_none());
    // A second pruning moves the checkpoint on and counts both.
    for _ in 0..5 {
        audit::append(&mut f.store, &rotate_event()).expect("append");
    }
    let again = prune(&mut f, &keep(10));
    assert_eq!((again.through_record, again.total), (27, 27));
    assert!(audit::verify(&f.store).expect("verify").broken.is_none());
    // Nothing due: nothing pruned, nothing appended.
    let before = newest(&f.store);
    assert_eq!(prune(&mut f, &keep(10)).records, 0);
    assert_eq!(newest(&f.store), before);
}

#[test]
fn tampering_with_what_is_kept_is_still_found() {
    // An edited kept record, the chain recomputed: its MAC fails.
    let mut f = fixture(30);
    prune(&mut f, &keep(10));
    let c = attacker(&f);
    c.execute("UPDATE audit SET at = 'yesterday' WHERE id = 25", [])
        .expect("edit");
    rechain(&c, 25);
    assert_eq!(first_break(&f.store), Some(25));

    // More of the oldest removed: the first left does not follow the
    // checkpoint.
    let mut f = fixture(30);
    prune(&mut f, &keep(10));
    attacker(&f)
        .execute("DELETE FROM audit WHERE id <= 23", [])
        .expect("delete");
    assert!(matches!(
        audit::verify(&f.store).expect("verify").broken,
        Some(Break::BrokenLink {
            record: 24,
            previous: Some(21)
        })
    ));

    // The checkpoint removed: the log starts past record 1.
    let mut f = fixture(30);
    prune(&mut f, &keep(10));
    attacker(&f)
        .execute("DELETE FROM audit_checkpoint", [])
        .expect("delete");
    assert_eq!(first_break(&f.store), Some(22));
}

/// The stored checkpoint token with its payload edited (the signature kept).
fn forge_checkpoint(f: &Fixture, edit: impl FnOnce(&mut serde_json::Value)) {
    let c = attacker(f);
    let token: String = c
        .query_row("SELECT token FROM audit_checkpoint", [], |r| r.get(0))
        .expect("token");
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("json");
    edit(&mut payload);
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    c.execute(
        "UPDATE audit_checkpoint SET token = ?1",
        [format!("{}.{body}.{}", parts[0], parts[2])],
    )
    .expect("forge");
}

#[test]
fn a_checkpoint_moved_forward_over_deleted_records_is_forged() {
    let mut f = fixture(30);
    prune(&mut f, &keep(10));
    // Hide records 21..=23 by moving the checkpoint to record 23.
    let hash23: String = attacker(&f)
        .query_row("SELECT hash FROM audit WHERE id = 23", [], |r| r.get(0))
        .expect("hash");
    attacker(&f)
        .execute("DELETE FROM audit WHERE id <= 23", [])
        .expect("delete");
    forge_checkpoint(&f, |p| {
        p["record"] = 23.into();
        p["hash"] = hash23.into();
    });
    assert!(matches!(
        audit::verify(&f.store).expect("verify").broken,
        Some(Break::CheckpointForged { record: 24 })
    ));
    // And nothing more is pruned behind it.
    match audit::prune(&mut f.store, &f.ring, &keep(5), None, "test") {
        Err(StoreError::Audit(AuditError::CheckpointForged)) => {}
        other => panic!("pruned behind a forged checkpoint: {other:?}"),
    }
}

#[test]
fn a_prefix_that_does_not_verify_is_not_pruned() {
    let mut f = fixture(30);
    let c = attacker(&f);
    c.execute("UPDATE audit SET at = 'yesterday' WHERE id = 5", [])
        .expect("edit");
    rechain(&c, 5);
    match audit::prune(&mut f.store, &f.ring, &keep(10), None, "test") {
        Err(StoreError::Audit(AuditError::PruneBroken { broken: b })) => {
            assert_eq!(b.first_broken_record(), 5)
        }
        other => panic!("pruned a broken prefix: {other:?}"),
    }
    assert_eq!(oldest(&f.store), 1);
}

#[test]
fn records_older_than_retain_days_go_in_batches() {
    let mut f = fixture(12);
    let limits = RetentionConfig {
        retain_days: 1,
        max_rows: 1000,
    };
    // Today nothing is a day old.
    assert_eq!(prune(&mut f, &limits).records, 0);
    let in_two_days = edgeid::store::unix_now_ms() + 2 * 86_400_000;
    let first = audit::prune_at(&mut f.store, &f.ring, &limits, Some(5), "test", in_two_days)
        .expect("prune");
    assert_eq!((first.records, first.through_record), (5, 5));
    assert!(first.more_due);
    // The rest, but never the newest record (the rollback anchor names it).
    let before = newest(&f.store);
    let rest =
        audit::prune_at(&mut f.store, &f.ring, &limits, None, "test", in_two_days).expect("prune");
    assert!(!rest.more_due);
    assert_eq!(rest.through_record, before - 1);
    assert!(audit::verify(&f.store).expect("verify").broken.is_none());
}

#[test]
fn an_enrolment_whose_record_was_pruned_is_still_checked() {
    let mut f = fixture(1);
    let rows = enrol(&mut f, "alice", 2);
    enrol(&mut f, "bob", 1);
    templates_revoke(&mut f, "bob");
    for _ in 0..20 {
        audit::append(&mut f.store, &rotate_event()).expect("append");
    }
    prune(&mut f, &keep(5));
    let check = |f: &Fixture, s: &str| audit::enrolment_tampering(&f.store, s).expect("check");
    assert_eq!(check(&f, "alice"), None);
    assert_eq!(check(&f, "bob"), None);
    attacker(&f)
        .execute("DELETE FROM templates WHERE id = ?1", [rows[0]])
        .expect("delete");
    assert!(matches!(
        check(&f, "alice"),
        Some(EnrolmentTampering::Deleted { subject_row_deleted: false, ref template_rows_deleted, .. })
            if *template_rows_deleted == vec![rows[0]]
    ));
}

fn templates_revoke(f: &mut Fixture, subject: &str) {
    let event = audit::Event::Revoke {
        subject,
        detail: serde_json::json!({}),
    };
    edgeid::store::templates::revoke(&mut f.store, subject, Some(&event)).expect("revoke");
}

#[test]
fn a_pruned_store_without_its_anchor_is_not_taken_for_a_new_one() {
    let mut f = fixture(30);
    prune(&mut f, &keep(10));
    let state = f.dir.join("state");
    std::fs::remove_file(state.join(edgeid::store::anchor::ANCHOR_FILE)).expect("rm anchor");
    // With the checkpoint, and with the checkpoint deleted too.
    for sql in ["SELECT 1", "DELETE FROM audit_checkpoint"] {
        attacker(&f).execute_batch(sql).expect("sql");
        let mut store = Store::open(&state).expect("open");
        match keys::unlock(&mut store, &f.kek) {
            Err(StoreError::AnchorMissing { .. }) => {}
            other => panic!(
                "a pruned store re-anchored silently: {:?}",
                other.map(|_| ())
            ),
        }
    }
}

/// A device with `n` audit records (appended through the library, unsynced
/// for speed).
fn device_with(n: i64) -> Device {
    let d = Device::new("");
    d.init();
    let kek = edgeid::store::Kek::read(&d.kek, edgeid::store::KekSource::File(d.kek.clone()), true)
        .expect("kek");
    let mut store = Store::open(&d.state).expect("open");
    keys::unlock(&mut store, &kek).expect("unlock");
    store
        .conn()
        .pragma_update(None, "synchronous", "OFF")
        .expect("pragma");
    while newest(&store) < n {
        audit::append(&mut store, &rotate_event()).expect("append");
    }
    d
}

#[test]
fn audit_prune_then_verify_and_a_signed_export_that_carries_the_checkpoint() {
    let d = device_with(1010);
    // Below the bound config check enforces: refused, nothing pruned.
    d.cmd()
        .args(["audit", "prune", "--max-rows", "10"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("audit.max_rows"));
    let out = d
        .cmd()
        .args(["--json", "audit", "prune", "--max-rows", "1000"])
        .assert()
        .success()
        .get_output()
        .clone();
    let pruned = stdout_json(&out);
    assert_eq!(pruned["records"], 11);
    assert_eq!(pruned["through_record"], 11);
    d.cmd()
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "audit chain intact: 1000 record(s)",
        ))
        .stdout(predicate::str::contains(
            "records 1-11 (11 in all) were pruned",
        ));

    let export = d.dir.join("audit.jws");
    let jwk = d.dir.join("device.jwk");
    std::fs::write(&jwk, d.jwk()).expect("jwk");
    d.cmd()
        .args(["audit", "export", "--out"])
        .arg(&export)
        .assert()
        .success();
    let check = || {
        assert_cmd::Command::from_std(edgeid())
            .args(["--json", "audit", "verify", "--export"])
            .arg(&export)
            .arg("--key")
            .arg(&jwk)
            .assert()
    };
    let report = stdout_json(&check().success().get_output().clone());
    assert_eq!(report["records"], 1000);
    assert_eq!(report["device_check"]["checkpoint"]["through_record"], 11);

    // The export without its checkpoint (re-signing is not possible): the
    // signature fails, and the chain names the first record kept.
    let token = std::fs::read_to_string(&export).expect("export");
    let parts: Vec<&str> = token.trim().split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("json");
    payload
        .as_object_mut()
        .expect("object")
        .remove("checkpoint");
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    std::fs::write(&export, format!("{}.{body}.{}", parts[0], parts[2])).expect("write");
    let out = check().failure().get_output().clone();
    assert_eq!(stdout_json(&out)["first_bad_record"], 12);
}
