//! `edgeid bench`: per-stage and whole-pipeline latency.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs per configuration.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
}

pub fn run(_global: &GlobalArgs, _args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not built yet")
}
