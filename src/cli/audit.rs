//! `edgeid audit verify [--export FILE --key JWK] | export [--out FILE] |
//! prune [--retain-days N] [--max-rows N]`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use edgeid::store::audit::{self, ChainReport};
use edgeid::store::keys::{self, KeyError};
use edgeid::store::{Kek, StoreError};
use edgeid::verdict::Jwk;

use super::GlobalArgs;
use super::output::emit;
use super::state::{load_config, open_store_for_reading, open_unlocked, open_unlocked_for_reading};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prove the chain unbroken (hashes and links; with the KEK, each
    /// record's MAC, the head's and the rollback anchor), or name the first
    /// broken record. With --export, check a signed export offline instead.
    Verify {
        /// A signed export (`edgeid audit export --out`) to check, without
        /// the store or the KEK.
        #[arg(long, requires = "key")]
        export: Option<PathBuf>,
        /// The device's public key as a JWK (`edgeid keys show --jwk`) that
        /// must have signed the export.
        #[arg(long, requires = "export")]
        key: Option<PathBuf>,
    },
    /// List every record (no biometric data is ever in them); with --out,
    /// write them as a document signed by the device key.
    Export {
        /// Write the signed export (a compact JWS, `edgeid-audit+jwt`) to
        /// this file; `edgeid audit verify --export` checks it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prune the oldest records now, as the daemon does hourly (`[audit]`
    /// retain_days and max_rows, or these): they go behind a checkpoint
    /// signed by the device key, so the records kept still verify. Export
    /// first (`audit export --out`) to keep them elsewhere.
    Prune {
        /// Prune records older than this many days (default: the config's).
        #[arg(long)]
        retain_days: Option<u32>,
        /// Keep at most this many records (default: the config's).
        #[arg(long)]
        max_rows: Option<u64>,
    },
}

/// `audit verify` on the store.
#[derive(Serialize)]
struct LocalReport {
    #[serde(flatten)]
    chain: ChainReport,
    /// Why the rollback anchor refuses this database, if it does.
    anchor_refusal: Option<String>,
}

/// `audit verify --export` that failed.
#[derive(Serialize)]
struct Rejected {
    valid: bool,
    first_bad_record: Option<i64>,
    error: String,
}

/// Whether the anchor refused the database (the keys themselves opened).
fn is_anchor_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::RolledBack { .. }
            | StoreError::Diverged { .. }
            | StoreError::AnchorMissing { .. }
            | StoreError::AnchorUnauthentic { .. }
            | StoreError::CounterBehind { .. }
            | StoreError::CounterMismatch { .. }
            | StoreError::CounterUnavailable { .. }
            | StoreError::CounterInUse { .. }
    )
}

fn macs_line(chain: &ChainReport) -> String {
    let m = &chain.macs;
    let Some(key) = &m.key_id else {
        return "MACs not checked: no key-encryption key, so only hashes and links were \
                (anyone able to write the database can recompute those)"
            .into();
    };
    if m.checked == 0 {
        return format!(
            "no record carries a MAC yet ({} written before keyed audit, checked by hash): the next \
             record appended is MAC'd under audit key {key}",
            m.unkeyed
        );
    }
    let mut line = format!(
        "MACs checked under audit key {key}: {} record(s){}",
        m.checked,
        if m.head_checked { " and the head" } else { "" }
    );
    if m.unkeyed > 0 {
        line += &format!(
            "; {} record(s) from before keyed audit checked by hash",
            m.unkeyed
        );
    }
    if m.earlier_key > 0 {
        line += &format!(
            "; {} record(s) under an earlier data key checked by hash",
            m.earlier_key
        );
    }
    line
}

/// The device's public JWK; one with a private part is refused.
fn read_public_jwk(path: &Path) -> anyhow::Result<Jwk> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key {}", path.display()))?;
    let not_jwk = || {
        format!(
            "{} is not a JWK (get one with `edgeid keys show --jwk`)",
            path.display()
        )
    };
    let value: serde_json::Value = serde_json::from_str(&text).with_context(not_jwk)?;
    if value.get("d").is_some() {
        anyhow::bail!(
            "{} holds a private key (its `d` member): give the public JWK (`edgeid keys show --jwk`); \
             a private key is never needed to check anything and must not leave the device",
            path.display()
        );
    }
    serde_json::from_value(value).with_context(not_jwk)
}

fn verify_export(global: &GlobalArgs, export: &Path, key: &Path) -> anyhow::Result<()> {
    let jwk = read_public_jwk(key)?;
    let token = std::fs::read_to_string(export)
        .with_context(|| format!("reading the export {}", export.display()))?;
    match audit::verify_export(&token, &jwk.public_key()?, &jwk.key_id()?) {
        Ok(report) => emit(global.json, &report, |r| {
            println!(
                "audit export intact: {} record(s) from device {}, signed by kid {} at {}; head record {} {}",
                r.records, r.device_id, r.kid, r.exported_at, r.head.record, r.head.hash
            );
            println!("on the device: {}", macs_line(&r.device_check));
        }),
        Err(e) => {
            if global.json {
                emit(
                    true,
                    &Rejected {
                        valid: false,
                        first_bad_record: e.first_bad_record(),
                        error: e.to_string(),
                    },
                    |_| {},
                )?;
            }
            Err(anyhow::Error::new(e)
                .context(format!("audit export {} rejected", export.display())))
        }
    }
}

/// Checks the store's chain: with a KEK, MACs and the rollback anchor too.
fn verify_store(global: &GlobalArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let mut store = open_store_for_reading(global, &config)?;
    let kek = match Kek::locate(config.kek_file.as_deref()) {
        Ok(kek) => Some(kek),
        Err(KeyError::NoKek) => None,
        Err(e) => return Err(e.into()),
    };
    // As found, before unlocking may write (a refusal, a legacy anchor):
    // hashes, links and the head.
    let found = audit::verify(&store)?;
    let mut anchor_refusal = None;
    if let Some(kek) = kek {
        match keys::unlock(&mut store, &kek) {
            Ok(_) => {}
            // The keys opened (the audit key is installed): the chain is
            // still checked, and the refusal reported with it.
            Err(e) if is_anchor_refusal(&e) => anchor_refusal = Some(e.to_string()),
            Err(StoreError::Key(KeyError::NotInitialised)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Then with the MACs; the earlier of the two breaks is the first.
    let mut chain = audit::verify(&store)?;
    let first = |c: &ChainReport| c.broken.as_ref().map(|b| b.first_broken_record());
    if first(&found).is_some_and(|f| first(&chain).is_none_or(|k| f < k)) {
        chain.broken = found.broken;
    }
    let report = LocalReport {
        chain,
        anchor_refusal,
    };
    emit(global.json, &report, |r| {
        if r.chain.broken.is_none() && r.anchor_refusal.is_none() {
            println!(
                "audit chain intact: {} record(s), head {}",
                r.chain.records, r.chain.head
            );
            if let Some(c) = &r.chain.checkpoint {
                println!(
                    "records 1-{} ({} in all) were pruned at {} behind a checkpoint signed by the device key",
                    c.through_record, c.pruned, c.pruned_at
                );
            }
            println!("{}", macs_line(&r.chain));
        }
    })?;
    if let Some(b) = &report.chain.broken {
        anyhow::bail!(
            "audit chain broken at record {}: {b}; keep this database as evidence and export what verifies",
            b.first_broken_record(),
        );
    }
    if let Some(refusal) = &report.anchor_refusal {
        anyhow::bail!(
            "the audit chain in the database is consistent, but it is not the chain this device \
             wrote: {refusal}"
        );
    }
    Ok(())
}

fn write_signed(global: &GlobalArgs, path: &Path) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let (store, ring) = open_unlocked_for_reading(global, &config)?;
    let signed = audit::export_signed(&store, &ring)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{}", signed.token).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {} record(s) signed by kid {} to {} (check it with `edgeid audit verify --export {} --key JWK`)",
        signed.count,
        ring.kid,
        path.display(),
        path.display()
    );
    if let Some(b) = &signed.device_check.broken {
        eprintln!(
            "warning: the chain is broken at record {}: {b}; the export says so, and its check fails",
            b.first_broken_record()
        );
    }
    Ok(())
}

fn prune(
    global: &GlobalArgs,
    retain_days: Option<u32>,
    max_rows: Option<u64>,
) -> anyhow::Result<()> {
    let config = load_config(global)?;
    let mut limits = config.audit;
    limits.retain_days = retain_days.unwrap_or(limits.retain_days);
    limits.max_rows = max_rows.unwrap_or(limits.max_rows);
    limits.validate()?;
    let (mut store, ring) = open_unlocked(global, &config)?;
    let by = format!("edgeid audit prune (uid {})", nix::unistd::getuid());
    let pruned = audit::prune(&mut store, &ring, &limits, None, &by)?;
    emit(global.json, &pruned, |p| {
        if p.records == 0 {
            println!(
                "nothing to prune (retain_days {}, max_rows {}): {} record(s) kept{}",
                limits.retain_days,
                limits.max_rows,
                p.kept,
                if p.total > 0 {
                    format!(
                        ", {} pruned before, through record {}",
                        p.total, p.through_record
                    )
                } else {
                    String::new()
                }
            );
        } else {
            println!(
                "pruned {} record(s), through record {} ({} in all), behind a signed checkpoint; {} kept",
                p.records, p.through_record, p.total, p.kept
            );
        }
    })
}

pub fn run(global: &GlobalArgs, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Prune {
            retain_days,
            max_rows,
        } => prune(global, retain_days, max_rows),
        AuditCommand::Verify {
            export: Some(export),
            key: Some(key),
        } => verify_export(global, &export, &key),
        AuditCommand::Verify { .. } => verify_store(global),
        AuditCommand::Export { out: Some(path) } => write_signed(global, &path),
        AuditCommand::Export { out: None } => {
            let store = open_store_for_reading(global, &load_config(global)?)?;
            let records = audit::export(&store)?;
            emit(global.json, &records, |rs| {
                for r in rs {
                    println!(
                        "{:>6} {} {:<14} {:<12} {:<7} {}",
                        r.id,
                        r.at,
                        r.event,
                        r.subject.as_deref().unwrap_or("-"),
                        r.decision.as_deref().unwrap_or("-"),
                        r.reason.as_deref().unwrap_or("-")
                    );
                }
            })
        }
    }
}
