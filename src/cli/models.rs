//! `edgeid models list | check`.

use clap::Subcommand;
use serde::Serialize;

use edgeid::infer::BackendInfo;

use super::GlobalArgs;
use super::output::emit;
use super::pipeline::{config_backend, open_manifest};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The models in the manifest with their role, source and licence.
    List,
    /// Verify every model's checksum and load it with the inference backend.
    Check,
}

#[derive(Serialize)]
struct CheckRow {
    id: String,
    role: String,
    file: String,
    ok: bool,
    /// The execution provider the model got ("cpu" on tract).
    provider: Option<&'static str>,
    error: Option<String>,
}

#[derive(Serialize)]
struct CheckReport {
    inference: BackendInfo,
    models: Vec<CheckRow>,
}

pub fn run(global: &GlobalArgs, cmd: ModelsCommand) -> anyhow::Result<()> {
    let manifest = open_manifest(global)?;
    match cmd {
        ModelsCommand::List => emit(global.json, &manifest.models(), |models| {
            for m in models.iter() {
                println!(
                    "{:<16} {:<15} {}  {} {} ({})",
                    m.id, m.role, m.file, m.provenance.package, m.provenance.version, m.licence
                );
                for (point, t) in &m.thresholds {
                    println!(
                        "{:<16} threshold {point} = {:.4} ({})",
                        "", t.value, t.measured_on
                    );
                }
            }
        }),
        ModelsCommand::Check => {
            let backend = config_backend(global)?;
            let rows: Vec<CheckRow> = manifest
                .models()
                .iter()
                .map(|m| {
                    let result = manifest
                        .read_verified(m)
                        .and_then(|bytes| backend.load(m, &bytes));
                    CheckRow {
                        id: m.id.clone(),
                        role: m.role.to_string(),
                        file: manifest.path_of(m).display().to_string(),
                        ok: result.is_ok(),
                        provider: result.as_ref().ok().map(|s| s.provider()),
                        error: result.err().map(|e| e.to_string()),
                    }
                })
                .collect();
            let failed = rows.iter().filter(|r| !r.ok).count();
            let report = CheckReport {
                inference: backend.info(),
                models: rows,
            };
            emit(global.json, &report, |r| {
                println!("inference: {}", r.inference);
                for r in &r.models {
                    match (&r.error, r.provider) {
                        (None, p) => println!(
                            "ok    {:<16} {:<15} {:<8} {}",
                            r.id,
                            r.role,
                            p.unwrap_or("-"),
                            r.file
                        ),
                        (Some(e), _) => println!("FAIL  {:<16} {:<15} {e}", r.id, r.role),
                    }
                }
            })?;
            anyhow::ensure!(failed == 0, "{failed} model(s) failed the check; see above");
            Ok(())
        }
    }
}
