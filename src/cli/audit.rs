//! `edgeid audit verify | export`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use edgeid::store::audit::{self, Break};

use super::GlobalArgs;
use super::output::emit;
use super::state::open_store;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prove the hash chain unbroken, or name the first broken record.
    Verify,
    /// Write every record (no biometric data is ever in them).
    Export {
        /// Write JSON to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn describe(b: &Break) -> String {
    match b {
        Break::HashMismatch { record } => {
            format!("record {record} was modified (its hash does not match its contents)")
        }
        Break::BrokenLink { record, previous } => match previous {
            Some(p) => format!(
                "record {record} does not follow record {p} (records deleted, inserted or reordered)"
            ),
            None => format!(
                "record {record} is not the start of the chain (records deleted or reordered)"
            ),
        },
        Break::HeadMismatch {
            head_record,
            last_record,
        } => format!(
            "the newest records are missing or altered: the chain ends at {} but the head says {head_record}",
            last_record.map_or("no record".into(), |r| format!("record {r}"))
        ),
    }
}

pub fn run(global: &GlobalArgs, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = open_store(global)?;
    match cmd {
        AuditCommand::Verify => {
            let report = audit::verify(&store)?;
            emit(global.json, &report, |r| {
                if r.broken.is_none() {
                    println!(
                        "audit chain intact: {} record(s), head {}",
                        r.records, r.head
                    );
                }
            })?;
            if let Some(b) = &report.broken {
                anyhow::bail!(
                    "audit chain broken at record {}: {}; keep this database as evidence and export what verifies",
                    b.first_broken_record(),
                    describe(b)
                );
            }
            Ok(())
        }
        AuditCommand::Export { out } => {
            let records = audit::export(&store)?;
            if let Some(path) = out {
                let json = serde_json::to_string_pretty(&records)?;
                std::fs::write(&path, json)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {} record(s) to {}", records.len(), path.display());
                return Ok(());
            }
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
