//! The models (each checksum verified and loaded, as `models check` does)
//! and what runs them: the backend and the execution provider obtained.

use crate::cli::GlobalArgs;
use crate::cli::models::check_all;

use super::report::Check;

pub fn check(global: &GlobalArgs) -> Vec<Check> {
    let report = match check_all(global) {
        Ok(r) => r,
        Err(e) => {
            return vec![Check::fail(
                "models",
                format!("{e:#}"),
                "reinstall the package (models live in /usr/share/edgeid/models) or fix --models-dir / [inference]",
            )];
        }
    };
    let bad: Vec<String> = report
        .models
        .iter()
        .filter(|m| !m.ok)
        .map(|m| format!("{}: {}", m.id, m.error.as_deref().unwrap_or("failed")))
        .collect();
    let dir = global.models_dir();
    let models = if bad.is_empty() {
        Check::ok(
            "models",
            format!(
                "{} models in {}: checksums match, all load",
                report.models.len(),
                dir.display()
            ),
        )
    } else {
        Check::fail(
            "models",
            format!(
                "{} of {} failed: {}",
                bad.len(),
                report.models.len(),
                bad.join("; ")
            ),
            "a damaged or replaced model file: reinstall the package (never edit models in place)",
        )
    };
    let info = &report.inference;
    let wanted = info.requested.first().copied();
    let inference = match (info.provider, wanted) {
        (Some(got), Some(first)) if got != first => Check::warn(
            "inference",
            format!("{info}: fell back from {first} to {got}"),
            "install the GPU-enabled libonnxruntime (JetPack's onnxruntime-gpu) and point [inference] library at it",
        ),
        _ => Check::ok("inference", info.to_string()),
    };
    vec![
        models.with_detail(&report.models),
        inference.with_detail(info),
    ]
}
