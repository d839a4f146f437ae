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
pub struct CheckRow {
    pub id: String,
    pub role: String,
    pub file: String,
    pub ok: bool,
    /// The execution provider the model got ("cpu" on tract).
    pub provider: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct CheckReport {
    pub inference: BackendInfo,
    pub models: Vec<CheckRow>,
}

/// Verifies every model's checksum and loads it with the configured
/// backend (`models check`, `doctor`).
pub fn check_all(global: &GlobalArgs) -> anyhow::Result<CheckReport> {
    let manifest = open_manifest(global)?;
    let backend = config_backend(global)?;
    let models = manifest
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
    Ok(CheckReport {
        inference: backend.info(),
        models,
    })
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
            let report = check_all(global)?;
            let failed = report.models.iter().filter(|r| !r.ok).count();
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
