//! `edgeid run`: the daemon (see `edgeid::daemon`). Runs until SIGTERM or
//! SIGINT; exits 0 after a clean stop.

use clap::Args;

use edgeid::daemon::{self, RunOptions};

use super::GlobalArgs;
use super::state::load_config;

#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(global: &GlobalArgs, _args: RunArgs) -> anyhow::Result<()> {
    let config = load_config(global)?;
    daemon::run(RunOptions {
        config,
        state_dir: global.state_dir.clone(),
        models_dir: global.models_dir(),
    })?;
    Ok(())
}
