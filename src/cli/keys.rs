//! `edgeid keys init | rotate | show [--jwk] | reanchor --i-restored-a-backup`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use edgeid::store::audit::{self, Event};
use edgeid::store::keys::{self, KekSource};
use edgeid::store::{Kek, Store};
use edgeid::verdict::Jwk;

use super::GlobalArgs;
use super::output::emit;
use super::state::{load_config, locate_kek, open_store, open_unlocked_for_reading};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the device id, signing key and data key (refuses to overwrite without --force).
    Init {
        /// Replace existing keys; every enrolled template is deleted (it could no longer be opened).
        #[arg(long)]
        force: bool,
        /// Device id (default: the config's, else random).
        #[arg(long)]
        device_id: Option<String>,
    },
    /// Re-wrap the data key under a new key-encryption key (no re-enrolment).
    Rotate {
        /// File holding the new KEK (32 raw bytes or 64 hex, mode 0600).
        #[arg(long)]
        new_kek: PathBuf,
        /// Also replace the data key and re-seal every template, in one transaction.
        #[arg(long)]
        dek: bool,
    },
    /// Show the device id and public key (derived from the sealed signing key).
    Show {
        /// Print the public key as an RFC 8037 OKP JWK (JSON).
        #[arg(long)]
        jwk: bool,
    },
    /// Accept the database as it is after restoring an older copy on purpose,
    /// and write a new rollback anchor (audited; verdict numbers are never reused).
    Reanchor {
        /// Required: you restored the state directory (or its database) on purpose.
        #[arg(long = "i-restored-a-backup")]
        restored: bool,
    },
}

#[derive(Serialize)]
struct InitReport {
    device_id: String,
    kid: String,
    kek_source: String,
    state_dir: PathBuf,
}

pub fn run(global: &GlobalArgs, cmd: KeysCommand) -> anyhow::Result<()> {
    let config = load_config(global)?;
    match cmd {
        KeysCommand::Init { force, device_id } => {
            // The KEK first: without one nothing is created.
            let kek = locate_kek(&config)?;
            let mut store = Store::create(&global.state_dir)?;
            store.set_counter_config(config.anchor.clone());
            let device_id = match device_id.or(config.device_id.clone()) {
                Some(id) => id,
                None => keys::random_device_id()?,
            };
            let ring = keys::init(&mut store, &kek, &device_id, force)?;
            audit::append(
                &mut store,
                &Event::KeysInit {
                    device_id: &device_id,
                    kid: &ring.kid,
                    force,
                },
            )?;
            let report = InitReport {
                device_id,
                kid: ring.kid.clone(),
                kek_source: kek.source.to_string(),
                state_dir: global.state_dir.clone(),
            };
            emit(global.json, &report, |r| {
                println!(
                    "initialised {} for device {}",
                    r.state_dir.display(),
                    r.device_id
                );
                println!("signing key id (kid): {}", r.kid);
                println!("data key wrapped by the KEK from {}", r.kek_source);
            })
        }
        KeysCommand::Rotate { new_kek, dek } => {
            let old = locate_kek(&config)?;
            let new = Kek::read(&new_kek, KekSource::File(new_kek.clone()), true)
                .with_context(|| format!("reading the new KEK {}", new_kek.display()))?;
            let mut store = open_store(global, &config)?;
            let report = keys::rotate(&mut store, &old, &new, dek)?;
            audit::append(
                &mut store,
                &Event::KeysRotate {
                    new_dek: report.new_dek,
                    templates_resealed: report.templates_resealed,
                },
            )?;
            emit(global.json, &report, |r| {
                println!(
                    "the data key is now wrapped by {}{}",
                    new_kek.display(),
                    if r.new_dek {
                        format!(
                            "; new data key, {} template(s) re-sealed",
                            r.templates_resealed
                        )
                    } else {
                        String::new()
                    }
                );
                println!(
                    "now install that file where the old KEK came from ({}), or edgeid cannot open the store",
                    old.source
                );
            })
        }
        KeysCommand::Show { jwk } => {
            let (_store, ring) = open_unlocked_for_reading(global, &config)?;
            if jwk {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Jwk::from_public_key(&ring.public_key()))?
                );
                return Ok(());
            }
            emit(global.json, &ring.identity(), |i| {
                println!("device id:  {}", i.device_id);
                println!("kid:        {}", i.kid);
                println!("public key: {} (Ed25519)", i.public_key);
            })
        }
        KeysCommand::Reanchor { restored } => {
            if !restored {
                anyhow::bail!(
                    "`keys reanchor` accepts the database as it is now, including anything an older copy \
                     brought back (revoked subjects, cleared lockouts); if you restored it on purpose, \
                     run `edgeid keys reanchor --i-restored-a-backup`"
                );
            }
            let kek = locate_kek(&config)?;
            let mut store = open_store(global, &config)?;
            let report = keys::reanchor(&mut store, &kek)?;
            emit(global.json, &report, |r| {
                println!(
                    "re-anchored at verdict seq {} and audit record {} (the database was at seq {})",
                    r.now.seq, r.now.audit_record, r.database_before.seq
                );
                println!("recorded in the audit log as anchor_reset (admin_reanchor)");
            })
        }
    }
}
