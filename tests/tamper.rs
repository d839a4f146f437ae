//! Tampering: edited, deleted or reordered audit rows are found and named;
//! an edited or moved template makes that subject's verification answer
//! `store_tampered` naming the row, while others still verify.

mod support;

use predicates::prelude::*;
use support::{Device, samples, stdout_json};

/// Keys (records 1 and 2: `anchor_reset`, `keys_init`) plus four verdict
/// records (unknown subjects in a photo without a face).
fn audited_env() -> Device {
    let e = Device::new("");
    e.init();
    let blank = e.dir.join("blank.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]))
        .save(&blank)
        .expect("blank photo");
    for i in 0..4 {
        e.cmd()
            .args(["verify", "--subject", &format!("nobody{i}")])
            .arg(&blank)
            .assert()
            .failure();
    }
    e.cmd()
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("6 record(s)"));
    e
}

fn audit_fails_at(e: &Device, record: i64) {
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
    for r in &e.audit_records() {
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
    let samples = require!(samples());
    let e = Device::new("");
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
        // The verdict does not tell a requester whose templates were
        // tampered with; the operator's message and the audit log do.
        assert_eq!(report["outcome"]["reason"], "no_match");
        assert_eq!(report["issued"]["claims"]["reason"], "no_match");
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
    let tampered = e
        .audit_records()
        .iter()
        .filter(|r| r["event"] == "store_tampered" && r["detail"]["template_row"] == row)
        .count();
    assert!(tampered >= 4, "each detection is audited ({tampered})");
    e.cmd().args(["audit", "verify"]).assert().success();
}

/// `edgeid verify --subject SUBJECT PHOTO`, which must be refused: its
/// stderr, and the newest verify record's cause (the verdict may say only
/// `no_match`; the audit log keeps why) and detail.
fn refusal(
    e: &Device,
    subject: &str,
    photo: &std::path::Path,
) -> (String, String, serde_json::Value) {
    let out = e
        .cmd()
        .args(["verify", "--subject", subject])
        .arg(photo)
        .assert()
        .failure()
        .get_output()
        .clone();
    let record = e
        .audit_records()
        .into_iter()
        .rev()
        .find(|r| r["event"] == "verify")
        .expect("a verify record");
    let cause = match &record["detail"]["cause"] {
        serde_json::Value::Null => &record["reason"],
        cause => cause,
    };
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        cause.as_str().unwrap_or_default().to_owned(),
        record["detail"].clone(),
    )
}

#[test]
fn deleted_templates_or_subject_rows_are_store_tampered_not_unknown() {
    let samples = require!(samples());
    let e = Device::new("");
    e.init();
    for (subject, photos) in [
        ("obama", &["obama.jpg", "obama3.jpg"][..]),
        ("biden", &["biden.jpg"]),
    ] {
        e.cmd()
            .args(["enroll", "--subject", subject])
            .args(photos.iter().map(|p| samples.join(p)))
            .assert()
            .success();
    }
    // One of obama's two templates deleted behind edgeid's back (the other
    // would still match), then biden's subject row (its templates go too).
    let c = e.sql();
    let row: i64 = c
        .query_row(
            "SELECT MAX(id) FROM templates WHERE subject = 'obama'",
            [],
            |r| r.get(0),
        )
        .expect("row");
    c.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; DELETE FROM templates WHERE id = {row}; \
         DELETE FROM subjects WHERE id = 'biden';"
    ))
    .expect("delete");
    let (stderr, cause, detail) = refusal(&e, "obama", &samples.join("obama2.jpg"));
    assert!(stderr.contains("store_tampered"), "{stderr}");
    assert_eq!(cause, "store_tampered");
    let found = &detail["enrolment_tampering"];
    assert_eq!(found["tampering"], "deleted");
    assert_eq!(found["template_rows_deleted"], serde_json::json!([row]));
    let (_, cause, detail) = refusal(&e, "biden", &samples.join("biden.jpg"));
    assert_eq!(cause, "store_tampered");
    assert_eq!(detail["enrolment_tampering"]["subject_row_deleted"], true);
    // A revocation through edgeid is not tampering.
    e.cli(&e.config, &["subjects", "revoke", "obama"]);
    let (_, cause, _) = refusal(&e, "obama", &samples.join("obama2.jpg"));
    assert_eq!(cause, "unknown_subject");
}
