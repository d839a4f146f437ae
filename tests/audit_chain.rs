//! The keyed audit chain. Through the library: records MAC'd under a key
//! derived from the data key, a MAC'd head, a legacy (unkeyed) prefix, key
//! epochs after a DEK rotation, no append without the key, and the
//! enrolment rows the audit log says a subject holds. Through the binary:
//! `audit verify` on the store, and signed exports checked offline.

mod support;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgeid::store::audit::{self, AuditError, EnrolmentTampering, Event};
use edgeid::store::keys;
use edgeid::store::templates;
use edgeid::store::{Store, StoreError};
use predicates::prelude::*;
use support::chain::{
    Fixture, attacker, break_after, enrol, first_break, fixture, kek, newest, rechain, rotate_event,
};
use support::{Device, edgeid, stdout_json};

#[test]
fn an_intact_chain_is_macd_record_by_record_and_at_its_head() {
    let f = fixture(5);
    let report = audit::verify(&f.store).expect("verify");
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.records, 5);
    assert_eq!(report.macs.checked, 5);
    assert!(report.macs.head_checked);
    assert!(report.macs.key_id.is_some());
    // Without the keys (a fresh connection): hashes and links only, and
    // the report says so.
    let plain = Store::open(&f.dir.join("state")).expect("open");
    let report = audit::verify(&plain).expect("verify");
    assert!(report.broken.is_none());
    assert_eq!(report.macs.key_id, None);
    assert_eq!(report.macs.checked, 0);
}

#[test]
fn editing_a_record_and_recomputing_the_chain_fails_its_mac() {
    let f = fixture(5);
    let c = attacker(&f);
    c.execute(
        "UPDATE audit SET detail = json_set(detail, '$.templates_resealed', 99) WHERE id = 3",
        [],
    )
    .expect("edit");
    rechain(&c, 3);
    assert_eq!(first_break(&f.store), Some(3));
}

#[test]
fn a_head_rewritten_over_deleted_records_is_named() {
    let f = fixture(5);
    let truncate = "DELETE FROM audit WHERE id > 3; \
                    UPDATE audit_head SET record_id = 3, hash = (SELECT hash FROM audit WHERE id = 3);";
    assert_eq!(break_after(&f, truncate), Some(4));
    // Record 3's own MAC is no head MAC (another label).
    let copy_mac = "UPDATE audit_head SET mac = (SELECT mac FROM audit WHERE id = 3);";
    assert_eq!(break_after(&f, copy_mac), Some(4));
}

#[test]
fn stripped_or_relabelled_macs_are_named() {
    let f = fixture(5);
    let strip = "UPDATE audit SET key_id = NULL, mac = NULL WHERE id = 4;";
    assert_eq!(break_after(&f, strip), Some(4));
    let relabel = "UPDATE audit SET key_id = '0123456789abcdef' WHERE id = 4;";
    assert_eq!(break_after(&f, relabel), Some(4));
}

#[test]
fn nothing_is_appended_without_the_key() {
    let f = fixture(2);
    let mut plain = Store::open(&f.dir.join("state")).expect("open");
    match audit::append(&mut plain, &rotate_event()) {
        Err(StoreError::Audit(AuditError::Locked)) => {}
        other => panic!("appended without the audit key: {other:?}"),
    }
    assert_eq!(newest(&plain), 2);
}

/// Makes the store look like one an edgeid without keyed audit wrote:
/// schema version 1, no MAC columns.
fn make_legacy(f: &Fixture) {
    attacker(f)
        .execute_batch(
            "DROP INDEX audit_subject; DROP INDEX audit_event; \
             ALTER TABLE audit DROP COLUMN key_id; ALTER TABLE audit DROP COLUMN mac; \
             ALTER TABLE audit_head DROP COLUMN key_id; ALTER TABLE audit_head DROP COLUMN mac; \
             DROP TABLE audit_checkpoint; DELETE FROM schema_version WHERE version > 1;",
        )
        .expect("legacy");
}

#[test]
fn records_from_before_keyed_audit_verify_as_a_legacy_prefix() {
    let f = fixture(4);
    make_legacy(&f);
    let dir = f.dir.join("state");
    let mut store = Store::open(&dir).expect("open migrates");
    keys::unlock(&mut store, &f.kek).expect("unlock");
    let report = audit::verify(&store).expect("verify");
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!((report.macs.unkeyed, report.macs.checked), (4, 0));
    audit::append(&mut store, &rotate_event()).expect("append");
    let records = audit::export(&store).expect("export");
    let declaration = &records[4];
    assert_eq!(declaration.event, "audit_key");
    assert_eq!(
        declaration.detail["previous_key_id"],
        serde_json::Value::Null
    );
    assert_eq!(declaration.detail["records_before"], 4);
    let report = audit::verify(&store).expect("verify");
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!((report.macs.unkeyed, report.macs.checked), (4, 2));
    // An edit in the legacy prefix, with the chain recomputed, breaks at
    // the first MAC'd record.
    attacker(&f)
        .execute("UPDATE audit SET at = 'yesterday' WHERE id = 2", [])
        .expect("edit");
    rechain(&attacker(&f), 2);
    assert_eq!(first_break(&store), Some(5));
}

#[test]
fn a_new_data_key_starts_a_declared_key_epoch() {
    let mut f = fixture(3);
    let new = kek(&f.dir, "kek2", 9);
    keys::rotate(&mut f.store, &f.kek, &new, true).expect("rotate");
    audit::append(
        &mut f.store,
        &Event::KeysRotate {
            new_dek: true,
            templates_resealed: 0,
        },
    )
    .expect("append");
    let records = audit::export(&f.store).expect("export");
    let declaration = records
        .iter()
        .find(|r| r.event == "audit_key")
        .expect("declared");
    assert_eq!(
        declaration.detail["previous_key_id"].as_str(),
        records[0].key_id.as_deref()
    );
    assert_eq!(
        declaration.detail["key_id"].as_str(),
        declaration.key_id.as_deref()
    );
    let report = audit::verify(&f.store).expect("verify");
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.macs.earlier_key, declaration.id as usize - 1);
    assert_eq!(report.macs.checked, records.len() - report.macs.earlier_key);
    // The old key's records are still bound: an edit with the chain
    // recomputed breaks the first record under the new key.
    attacker(&f)
        .execute("UPDATE audit SET at = 'yesterday' WHERE id = 2", [])
        .expect("edit");
    rechain(&attacker(&f), 2);
    assert_eq!(first_break(&f.store), Some(declaration.id));
}

#[test]
fn a_process_holding_a_replaced_data_key_appends_nothing() {
    let mut f = fixture(2);
    let mut stale = Store::open(&f.dir.join("state")).expect("open");
    keys::unlock(&mut stale, &f.kek).expect("unlock");
    let new = kek(&f.dir, "kek2", 9);
    keys::rotate(&mut f.store, &f.kek, &new, true).expect("rotate");
    audit::append(&mut f.store, &rotate_event()).expect("append");
    match audit::append(&mut stale, &rotate_event()) {
        Err(StoreError::Audit(AuditError::StaleKey)) => {}
        other => panic!("appended under a replaced key: {other:?}"),
    }
    assert!(audit::verify(&f.store).expect("verify").broken.is_none());
}

#[test]
fn enrolment_rows_deleted_outside_revoke_are_tampering() {
    let mut f = fixture(1);
    let rows = enrol(&mut f, "alice", 2);
    enrol(&mut f, "bob", 1);
    let check = |f: &Fixture, s: &str| audit::enrolment_tampering(&f.store, s).expect("check");
    assert_eq!(check(&f, "alice"), None);
    assert_eq!(check(&f, "nobody"), None);
    attacker(&f)
        .execute("DELETE FROM templates WHERE id = ?1", [rows[1]])
        .expect("delete");
    assert!(matches!(
        check(&f, "alice"),
        Some(EnrolmentTampering::Deleted { subject_row_deleted: false, ref template_rows_deleted, .. })
            if *template_rows_deleted == vec![rows[1]]
    ));
    attacker(&f)
        .execute_batch("PRAGMA foreign_keys = ON; DELETE FROM subjects WHERE id = 'alice';")
        .expect("delete");
    assert!(matches!(
        check(&f, "alice"),
        Some(EnrolmentTampering::Deleted {
            subject_row_deleted: true,
            ..
        })
    ));
    // A revocation through edgeid is no tampering; a forged one is.
    let event = Event::Revoke {
        subject: "bob",
        detail: serde_json::json!({}),
    };
    templates::revoke(&mut f.store, "bob", Some(&event)).expect("revoke");
    assert_eq!(check(&f, "bob"), None);
    let c = attacker(&f);
    c.execute(
        "UPDATE audit SET event = 'revoke' WHERE subject = 'alice' AND event = 'enroll'",
        [],
    )
    .expect("forge");
    let enrolment = c
        .query_row(
            "SELECT id FROM audit WHERE subject = 'alice' AND event = 'revoke'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("id");
    rechain(&c, enrolment);
    assert_eq!(
        check(&f, "alice"),
        Some(EnrolmentTampering::RecordAltered { record: enrolment })
    );
}

/// Keys and at least five audit records, with no model: `keys rotate` to
/// the same KEK appends one each time.
fn device_with_records() -> Device {
    let d = Device::new("");
    d.init();
    while d
        .sql()
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, i64>(0))
        .expect("count")
        < 5
    {
        d.cmd()
            .args(["keys", "rotate", "--new-kek"])
            .arg(&d.kek)
            .assert()
            .success();
    }
    d
}

#[test]
fn audit_verify_names_a_record_edited_with_the_chain_recomputed() {
    let d = device_with_records();
    let c = d.sql();
    c.execute("UPDATE audit SET at = 'yesterday' WHERE id = 3", [])
        .expect("edit");
    rechain(&c, 3);
    // Without the KEK only the hashes can be checked, and they agree.
    d.cmd()
        .env_remove("EDGEID_KEK_FILE")
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("MACs not checked"));
    d.cmd()
        .args(["audit", "verify"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("audit chain broken at record 3:"));
}

#[test]
fn deleting_the_newest_records_and_rewriting_the_head_is_not_intact() {
    let d = device_with_records();
    d.sql()
        .execute_batch(
            "DELETE FROM audit WHERE id > 3; \
             UPDATE audit_head SET record_id = 3, hash = (SELECT hash FROM audit WHERE id = 3), \
               key_id = (SELECT key_id FROM audit WHERE id = 3), mac = (SELECT mac FROM audit WHERE id = 3);",
        )
        .expect("truncate");
    d.cmd()
        .args(["audit", "verify"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("intact").not());
}

/// A signed export of `d` and its public JWK, in files.
fn exported(d: &Device) -> (std::path::PathBuf, std::path::PathBuf) {
    let export = d.dir.join("audit.jws");
    let jwk = d.dir.join("device.jwk");
    std::fs::write(&jwk, d.jwk()).expect("jwk");
    d.cmd()
        .args(["audit", "export", "--out"])
        .arg(&export)
        .assert()
        .success();
    (export, jwk)
}

/// `edgeid audit verify --export FILE --key JWK` with no store and no KEK.
fn check_export(export: &Path, jwk: &Path) -> assert_cmd::assert::Assert {
    assert_cmd::Command::from_std(edgeid())
        .args(["--json", "audit", "verify", "--export"])
        .arg(export)
        .arg("--key")
        .arg(jwk)
        .assert()
}

/// Rewrites the export's payload (the signature stays as it was).
fn edit_payload(export: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let token = std::fs::read_to_string(export).expect("export");
    let parts: Vec<&str> = token.trim().split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("json");
    edit(&mut payload);
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    std::fs::write(export, format!("{}.{body}.{}", parts[0], parts[2])).expect("write");
}

#[test]
fn a_signed_export_verifies_offline() {
    let d = device_with_records();
    let (export, jwk) = exported(&d);
    let out = check_export(&export, &jwk).success().get_output().clone();
    let report = stdout_json(&out);
    assert_eq!(report["records"], 5);
    assert_eq!(report["device_id"], "door-1");
    assert!(report["device_check"]["broken"].is_null());
    assert_eq!(report["device_check"]["macs"]["checked"], 5);
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(
                std::fs::read_to_string(&export)
                    .expect("read")
                    .split('.')
                    .next()
                    .expect("header"),
            )
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(header["typ"], "edgeid-audit+jwt");
    assert_eq!(header["alg"], "EdDSA");
}

#[test]
fn an_export_edited_after_signing_fails_naming_the_record() {
    let d = device_with_records();
    let (export, jwk) = exported(&d);
    edit_payload(&export, |p| p["records"][2]["event"] = "verify".into());
    let out = check_export(&export, &jwk).failure().get_output().clone();
    assert_eq!(stdout_json(&out)["first_bad_record"], 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("record 3"));
}

#[test]
fn an_export_without_its_last_record_fails() {
    let d = device_with_records();
    let (export, jwk) = exported(&d);
    edit_payload(&export, |p| {
        p["records"].as_array_mut().expect("records").pop();
    });
    let out = check_export(&export, &jwk).failure().get_output().clone();
    assert_eq!(stdout_json(&out)["first_bad_record"], 5);
}

#[test]
fn an_export_checked_with_another_devices_key_fails() {
    let d = device_with_records();
    let (export, _) = exported(&d);
    let other = Device::new("");
    other.init();
    let jwk = d.dir.join("other.jwk");
    std::fs::write(&jwk, other.jwk()).expect("jwk");
    check_export(&export, &jwk)
        .failure()
        .stderr(predicate::str::contains("not the expected device key"));
}

#[test]
fn a_jwk_with_a_private_part_is_refused() {
    let d = device_with_records();
    let (export, jwk) = exported(&d);
    let mut key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwk).expect("jwk")).expect("json");
    key["d"] = URL_SAFE_NO_PAD.encode([7u8; 32]).into();
    std::fs::write(&jwk, key.to_string()).expect("jwk");
    check_export(&export, &jwk)
        .failure()
        .stderr(predicate::str::contains("private key"));
}
