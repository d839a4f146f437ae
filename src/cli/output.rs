//! Printing results: JSON for machines with `--json`, text for people.

use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else calls `human`.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}

/// Milliseconds with two decimals, for tables.
pub fn ms(d: std::time::Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
