//! The rollback anchor bound to a TPM NV counter (a real swtpm, driven by
//! the real tpm2-tools): a copy of the whole state directory, database and
//! anchor together, restored later, is refused; so is a store whose counter
//! is gone, and a copy from before the binding; the counter is bumped by
//! events and every `bump_every` verdicts, not by each one.

mod support;

use std::time::Duration;

use edgeid::store::anchor::counter::{CounterConfig, CounterKind, DEFAULT_NV_INDEX};
use edgeid::store::audit::{self, Event};
use edgeid::store::{Kek, KekSource, Store, keys};
use predicates::prelude::*;
use support::device::{copy_files, write_mode};
use support::tpm::SoftTpm;
use support::{DEVICE, Device, samples, tools};

const STATE_FILES: [&str; 4] = [
    "edgeid.db",
    "edgeid.db-wal",
    "edgeid.db-shm",
    "edgeid.anchor",
];

fn tpm_config(tpm: &SoftTpm) -> String {
    format!(
        "device_id = \"{DEVICE}\"\n[anchor]\nhardware_counter = \"tpm\"\ntpm_tcti = \"{}\"\n",
        tpm.tcti()
    )
}

fn anchor_json(d: &Device) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(d.state.join("edgeid.anchor")).expect("anchor"))
        .expect("anchor json")
}

fn refusals(d: &Device) -> Vec<String> {
    d.audit_records()
        .into_iter()
        .filter(|r| r["event"] == "rollback_detected")
        .map(|r| {
            r["detail"]["problem"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn a_restored_state_directory_is_refused_by_the_tpm_counter_even_with_the_setting_off() {
    require!(tools(&["swtpm", "tpm2_nvread", "tpm2_nvdefine"]));
    let samples = require!(samples());
    let d = Device::new("");
    let tpm = SoftTpm::start(&d.dir.join("tpm"));
    std::fs::write(&d.config, tpm_config(&tpm)).expect("config");
    d.init_with_obama(&samples);
    let anchor = anchor_json(&d);
    assert_eq!(anchor["format"], "edgeid-anchor/2");
    assert_eq!(anchor["counter"]["nv_index"], "0x01500e1d");
    assert_eq!(
        anchor["counter"]["value"].as_u64(),
        Some(tpm.counter(DEFAULT_NV_INDEX)),
        "the anchor holds the TPM's value"
    );

    // A copy of everything the state directory holds, database AND anchor.
    let backup = d.dir.join("backup");
    copy_files(&d.state, &backup, &STATE_FILES);
    d.cmd()
        .args(["subjects", "revoke", "obama"])
        .assert()
        .success();
    copy_files(&backup, &d.state, &STATE_FILES);

    let photo = samples.join("obama2.jpg");
    let photo = photo.to_str().expect("utf8");
    for args in [
        &["verify", "--subject", "obama", photo][..],
        &["keys", "show"],
        &["run"],
    ] {
        d.cmd()
            .args(args)
            .timeout(Duration::from_secs(60))
            .assert()
            .failure()
            .stderr(predicate::str::contains("is an older copy"));
    }
    assert!(refusals(&d).contains(&"counter_behind".to_owned()));

    // Turning the setting off is no way around it: the anchor names the counter.
    let off = d.write_config("off", &format!("device_id = \"{DEVICE}\"\n"));
    assert!(
        !d.command(&off)
            .args(["keys", "show"])
            .output()
            .expect("run")
            .status
            .success()
    );

    // An administrator accepts the copy: the counter is adopted again.
    d.cli(&d.config, &["keys", "reanchor", "--i-restored-a-backup"]);
    d.cli(&d.config, &["verify", "--subject", "obama", photo]);
    assert_eq!(
        anchor_json(&d)["counter"]["value"].as_u64(),
        Some(tpm.counter(DEFAULT_NV_INDEX))
    );
}

#[test]
fn a_store_bound_to_a_counter_is_not_served_without_it_and_a_copy_from_before_binding_is_refused() {
    require!(tools(&["swtpm", "tpm2_nvread", "tpm2_nvdefine"]));
    let samples = require!(samples());
    let d = Device::new(&format!("device_id = \"{DEVICE}\"\n"));
    let mut tpm = SoftTpm::start(&d.dir.join("tpm"));
    d.init_with_obama(&samples);
    assert_eq!(anchor_json(&d)["format"], "edgeid-anchor/1");
    let unbound = d.dir.join("unbound");
    copy_files(&d.state, &unbound, &STATE_FILES);

    // The setting turned on binds the store at its next unlock.
    std::fs::write(&d.config, tpm_config(&tpm)).expect("config");
    d.cli(&d.config, &["keys", "show"]);
    assert_eq!(anchor_json(&d)["format"], "edgeid-anchor/2");

    // Without its TPM, the bound store is refused, and says why.
    tpm.stop();
    d.cmd()
        .args(["keys", "show"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot be read"));
    assert!(refusals(&d).contains(&"counter_unavailable".to_owned()));
    tpm.restart();
    d.cli(&d.config, &["keys", "show"]);

    // The copy from before the binding names no counter, but the counter counts.
    copy_files(&unbound, &d.state, &STATE_FILES);
    d.cmd()
        .args(["keys", "show"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already counts"));
    assert!(refusals(&d).contains(&"counter_in_use".to_owned()));
}

#[test]
fn the_counter_is_bumped_by_events_and_every_n_verdicts_not_by_each() {
    require!(tools(&["swtpm", "tpm2_nvread", "tpm2_nvdefine"]));
    let d = Device::new("");
    let tpm = SoftTpm::start(&d.dir.join("tpm"));
    let kek = d.dir.join("kek2");
    write_mode(&kek, &[7u8; 32], 0o600);
    let kek = Kek::read(&kek, KekSource::File(kek.clone()), true).expect("kek");
    let mut store = Store::create(&d.state).expect("store");
    store.set_counter_config(CounterConfig {
        hardware_counter: CounterKind::Tpm,
        tpm_tcti: tpm.tcti(),
        bump_every: 4,
        ..CounterConfig::default()
    });
    keys::init(&mut store, &kek, DEVICE, false).expect("init");
    let start = tpm.counter(DEFAULT_NV_INDEX);
    let verdict = || Event::Verdict {
        mode: edgeid::verdict::Mode::Verify,
        subject: Some("someone"),
        decision: edgeid::verdict::Decision::Reject,
        reason: edgeid::verdict::Reason::NoFace,
        detail: serde_json::json!({}),
    };
    for _ in 0..10 {
        audit::append(&mut store, &verdict()).expect("append");
    }
    // 10 verdict commits at one bump per 4 commits.
    assert_eq!(tpm.counter(DEFAULT_NV_INDEX), start + 2);
    audit::append(
        &mut store,
        &Event::Revoke {
            subject: "someone",
            detail: serde_json::json!({}),
        },
    )
    .expect("append");
    assert_eq!(
        tpm.counter(DEFAULT_NV_INDEX),
        start + 3,
        "a revocation bumps at once"
    );
    drop(store);
}
