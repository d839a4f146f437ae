//! The store refuses what an insider with write access to the state
//! directory could slip under it, through the verbs and the daemon:
//! an older copy of the database (rollback anchor), another store's public
//! key, and a template relabelled as made by another model file.

mod support;

use std::path::Path;
use std::time::Duration;

use predicates::prelude::*;
use support::device::{DB_FILES, copy_files};
use support::{Device, samples, stdout_json};

/// Each of `commands` fails, saying `why` (a predicate made afresh each time).
fn all_refused<P: Predicate<str>>(d: &Device, commands: &[&[&str]], why: impl Fn() -> P) {
    for args in commands {
        d.cmd()
            .args(*args)
            .timeout(Duration::from_secs(60))
            .assert()
            .failure()
            .stderr(why());
    }
}

fn seq(d: &Device) -> i64 {
    d.sql()
        .query_row("SELECT seq FROM device", [], |r| r.get(0))
        .expect("seq")
}

/// `verify --json` of obama with `photo`; the verdict.
fn verify_obama(d: &Device, samples: &Path, photo: &str) -> String {
    let out = d
        .cmd()
        .args(["verify", "--json", "--subject", "obama"])
        .arg(samples.join(photo))
        .assert()
        .success()
        .get_output()
        .clone();
    stdout_json(&out)["issued"]["verdict"]
        .as_str()
        .expect("verdict")
        .to_owned()
}

fn events(d: &Device, name: &str) -> Vec<serde_json::Value> {
    d.audit_records()
        .into_iter()
        .filter(|r| r["event"] == name)
        .collect()
}

#[test]
fn a_restored_older_database_is_refused_until_an_admin_reanchors_and_no_seq_repeats() {
    let samples = require!(samples());
    let d = Device::with_obama(&samples, &[]);
    let verdict = verify_obama(&d, &samples, "obama2.jpg");
    assert_eq!(seq(&d), 1);
    let backup = d.dir.join("backup");
    copy_files(&d.state, &backup, &DB_FILES);

    verify_obama(&d, &samples, "obama2.jpg");
    d.cmd()
        .args(["subjects", "revoke", "obama"])
        .assert()
        .success();
    copy_files(&backup, &d.state, &DB_FILES);

    // Every verb that uses the keys, and the daemon, refuse the older copy.
    let photo = samples.join("obama2.jpg");
    let photo = photo.to_str().expect("utf8");
    let commands: [&[&str]; 5] = [
        &["verify", "--subject", "obama", photo],
        &["subjects", "revoke", "obama"],
        &["keys", "show", "--jwk"],
        &["verdict", "verify", "--any-nonce", &verdict],
        &["run"],
    ];
    all_refused(&d, &commands, || {
        predicate::str::contains("older than its rollback anchor").and(predicate::str::contains(
            "keys reanchor --i-restored-a-backup",
        ))
    });
    assert_eq!(seq(&d), 1, "the older copy issued a verdict");
    let refusals = events(&d, "rollback_detected");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["detail"]["problem"], "behind");

    // Only an explicit, audited administrator's action accepts the copy.
    all_refused(&d, &[&["keys", "reanchor"]], || {
        predicate::str::contains("--i-restored-a-backup")
    });
    d.cmd()
        .args(["keys", "reanchor", "--i-restored-a-backup"])
        .assert()
        .success();
    verify_obama(&d, &samples, "obama2.jpg");
    assert_eq!(seq(&d), 3, "sequence number 2 was issued twice");
    let reset = events(&d, "anchor_reset").pop().expect("anchor_reset");
    assert_eq!(reset["detail"]["cause"], "admin_reanchor");
    assert_eq!(reset["detail"]["anchor"]["position"]["seq"], 2);
}

#[test]
fn a_deleted_anchor_is_refused() {
    let d = Device::new("");
    d.init();
    std::fs::remove_file(d.state.join("edgeid.anchor")).expect("delete the anchor");
    all_refused(&d, &[&["keys", "show"]], || {
        predicate::str::contains("rollback anchor").and(predicate::str::contains("missing"))
    });
}

#[test]
fn another_stores_public_key_is_refused_wherever_the_key_is_read() {
    let d = Device::new("");
    d.init();
    let other = Device::new("");
    other.init();
    let (public_key, kid): (Vec<u8>, String) = other
        .sql()
        .query_row("SELECT public_key, kid FROM keys", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("other key");
    d.sql()
        .execute(
            "UPDATE keys SET public_key = ?1, kid = ?2",
            (&public_key, &kid),
        )
        .expect("swap");
    let commands: [&[&str]; 5] = [
        &["keys", "show", "--jwk"],
        &["keys", "show"],
        &["verdict", "verify", "--any-nonce", "a.b.c"],
        &["verify", "--subject", "x", "Cargo.toml"],
        &["run"],
    ];
    all_refused(&d, &commands, || {
        predicate::str::contains("is not that signing key's")
    });
}

#[test]
fn a_template_relabelled_as_made_by_another_model_file_is_tampering() {
    let samples = require!(samples());
    let d = Device::with_obama(&samples, &[]);
    // Another file under the embedder's id: the guard compares the sha256
    // too, and the sealed template binds it.
    d.sql()
        .execute(
            "UPDATE templates SET model_sha256 = lower(hex(randomblob(32)))",
            [],
        )
        .expect("relabel");
    d.cmd()
        .args(["verify", "--subject", "obama"])
        .arg(samples.join("obama2.jpg"))
        .assert()
        .failure();
    assert!(
        !events(&d, "store_tampered").is_empty(),
        "the relabelled templates were not reported"
    );
}
