//! `edgeid subjects list | revoke ID | unlock ID`.

use clap::Subcommand;
use serde::Serialize;

use edgeid::api::Admin;
use edgeid::store::audit::Event;
use edgeid::store::{lockout, templates};

use super::GlobalArgs;
use super::output::emit;
use super::state::{load_config, open_store_for_reading, open_unlocked};

#[derive(Debug, Subcommand)]
pub enum SubjectsCommand {
    /// List enrolled subjects and their template counts.
    List,
    /// Delete every template of a subject, in one transaction.
    Revoke { subject: String },
    /// Clear a subject's failed attempts, ending any lockout wait (audited).
    Unlock { subject: String },
}

#[derive(Serialize)]
struct Unlocked {
    subject: String,
    failures_cleared: usize,
}

#[derive(Serialize)]
struct Revoked {
    subject: String,
    templates_deleted: usize,
}

pub fn run(global: &GlobalArgs, cmd: SubjectsCommand) -> anyhow::Result<()> {
    match cmd {
        SubjectsCommand::List => {
            let store = open_store_for_reading(global, &load_config(global)?)?;
            let list = templates::list_subjects(&store)?;
            emit(global.json, &list, |l| {
                if l.is_empty() {
                    println!("no subjects enrolled");
                }
                for s in l {
                    let models: Vec<String> =
                        s.models.iter().map(|(m, n)| format!("{m}×{n}")).collect();
                    println!(
                        "{:<24} {} template(s) [{}]",
                        s.subject,
                        s.templates,
                        models.join(", ")
                    );
                }
            })
        }
        SubjectsCommand::Revoke { subject } => {
            // Unlocked: the revocation moves the rollback anchor, so an older
            // copy of the database cannot bring the subject back unnoticed.
            let (mut store, _keys) = open_unlocked(global, &load_config(global)?)?;
            let event = Event::Revoke {
                subject: &subject,
                detail: serde_json::json!({"origin": "cli", "by": Admin::this_process()}),
            };
            let n = templates::revoke(&mut store, &subject, Some(&event))?;
            emit(
                global.json,
                &Revoked {
                    subject: subject.clone(),
                    templates_deleted: n,
                },
                |r| {
                    println!(
                        "revoked {}: {} template(s) deleted",
                        r.subject, r.templates_deleted
                    )
                },
            )
        }
        SubjectsCommand::Unlock { subject } => {
            edgeid::store::validate_subject(&subject)?;
            let (mut store, _keys) = open_unlocked(global, &load_config(global)?)?;
            let event = Event::Unlock {
                subject: &subject,
                detail: serde_json::json!({"origin": "cli", "by": Admin::this_process()}),
            };
            let n = lockout::unlock(&mut store, &subject, &event)?;
            emit(
                global.json,
                &Unlocked {
                    subject: subject.clone(),
                    failures_cleared: n,
                },
                |r| {
                    println!(
                        "unlocked {}: {} failed attempt(s) cleared",
                        r.subject, r.failures_cleared
                    )
                },
            )
        }
    }
}
