//! Tampering: edited, deleted or reordered audit rows are found and named;
//! an edited or moved template makes that subject's verification answer
//! `store_tampered` naming the row, while others still verify.

mod store_common;

use predicates::prelude::*;
use store_common::{Env, env_with_config, face_ready, stdout_json};

/// Keys plus a few audit records (unknown-subject verdicts need no model).
fn audited_env() -> Env {
    let e = env_with_config("");
    e.init();
    for i in 0..4 {
        e.cmd()
            .args(["verify", "--subject", &format!("nobody{i}"), "Cargo.toml"])
            .assert()
            .failure();
    }
    e.cmd()
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("5 record(s)"));
    e
}

fn audit_fails_at(e: &Env, record: i64) {
    e.cmd()
        .args(["audit", "verify"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "audit chain broken at record {record}:"
        )));
}

#[test]
fn an_edited_audit_row_is_named() {
    let e = audited_env();
    e.sql()
        .execute("UPDATE audit SET reason = 'match' WHERE id = 3", [])
        .expect("edit");
    audit_fails_at(&e, 3);
}

#[test]
fn an_edited_detail_is_named() {
    let e = audited_env();
    e.sql()
        .execute(
            "UPDATE audit SET detail = json_set(detail, '$.score', 0.99) WHERE id = 2",
            [],
        )
        .expect("edit");
    audit_fails_at(&e, 2);
}

#[test]
fn a_deleted_audit_row_is_named() {
    let e = audited_env();
    e.sql()
        .execute("DELETE FROM audit WHERE id = 2", [])
        .expect("delete");
    audit_fails_at(&e, 3);
}

#[test]
fn deleting_the_newest_rows_is_noticed() {
    let e = audited_env();
    e.sql()
        .execute("DELETE FROM audit WHERE id >= 4", [])
        .expect("delete");
    audit_fails_at(&e, 4);
}

#[test]
fn reordered_audit_rows_are_named() {
    let e = audited_env();
    let c = e.sql();
    c.execute_batch(
        "UPDATE audit SET id = -2 WHERE id = 2; UPDATE audit SET id = 2 WHERE id = 3; UPDATE audit SET id = 3 WHERE id = -2;",
    )
    .expect("swap");
    audit_fails_at(&e, 2);
    let out = e
        .cmd()
        .args(["audit", "verify", "--json"])
        .assert()
        .failure()
        .get_output()
        .clone();
    let report = stdout_json(&out);
    assert_eq!(report["broken"]["record"], 2);
}

#[test]
fn the_export_holds_no_vectors() {
    let e = audited_env();
    let out = e
        .cmd()
        .args(["audit", "export", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let records = stdout_json(&out);
    for r in records.as_array().expect("array") {
        assert!(r["detail"]["build"]["version"].is_string());
        // No array of more than a few numbers anywhere (an embedding would be 128).
        fn longest_array(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::Array(a) => {
                    a.len().max(a.iter().map(longest_array).max().unwrap_or(0))
                }
                serde_json::Value::Object(o) => o.values().map(longest_array).max().unwrap_or(0),
                _ => 0,
            }
        }
        assert!(longest_array(r) < 16, "suspiciously long array in {r}");
    }
}

#[test]
fn a_tampered_template_is_store_tampered_for_that_subject_only() {
    let Some(samples) = face_ready() else { return };
    let e = env_with_config("");
    e.init();
    e.cmd()
        .args(["enroll", "--subject", "obama"])
        .arg(samples.join("obama.jpg"))
        .arg(samples.join("obama3.jpg"))
        .assert()
        .success();
    e.cmd()
        .args(["enroll", "--subject", "biden"])
        .arg(samples.join("biden.jpg"))
        .assert()
        .success();
    let (row, blob): (i64, Vec<u8>) = e
        .sql()
        .query_row(
            "SELECT id, sealed FROM templates WHERE subject = 'obama' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    // A byte in the ciphertext, one in the nonce, one in the tag.
    for i in [blob.len() / 2, 3, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        e.sql()
            .execute(
                "UPDATE templates SET sealed = ?1 WHERE id = ?2",
                (&bad, row),
            )
            .expect("tamper");
        let out = e
            .cmd()
            .args(["verify", "--json", "--subject", "obama"])
            .arg(samples.join("obama2.jpg"))
            .assert()
            .failure()
            .stderr(predicate::str::contains(format!(
                "template row {row} of subject obama"
            )))
            .get_output()
            .clone();
        let report = stdout_json(&out);
        assert_eq!(report["outcome"]["reason"], "store_tampered");
        assert_eq!(report["issued"]["claims"]["reason"], "store_tampered");
        e.cmd()
            .args(["verify", "--subject", "biden"])
            .arg(samples.join("biden.jpg"))
            .assert()
            .success();
    }
    // Moving biden's blob into obama's row is caught the same way.
    e.sql()
        .execute("UPDATE templates SET sealed = (SELECT sealed FROM templates WHERE subject = 'biden') WHERE id = ?1", [row])
        .expect("move");
    e.cmd()
        .args(["verify", "--subject", "obama"])
        .arg(samples.join("obama2.jpg"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("store_tampered"));
    let out = e
        .cmd()
        .args(["audit", "export", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let records = stdout_json(&out);
    let tampered = records
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["event"] == "store_tampered" && r["detail"]["template_row"] == row)
        .count();
    assert!(tampered >= 4, "each detection is audited ({tampered})");
    e.cmd().args(["audit", "verify"]).assert().success();
}
