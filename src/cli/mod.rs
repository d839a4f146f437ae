//! The command line: one file per verb; this root only declares them and
//! the options every verb shares. `eval` and `bench` exist only with the
//! `eval` cargo feature (on by default; a device build leaves them out).

mod audit;
#[cfg(feature = "eval")]
mod bench;
#[cfg(feature = "eval")]
mod bench_voice;
mod compare;
mod config_check;
mod demo;
mod doctor;
mod enroll;
#[cfg(feature = "eval")]
mod eval;
#[cfg(feature = "eval")]
mod eval_fused;
#[cfg(feature = "eval")]
mod eval_liveness;
#[cfg(feature = "eval")]
mod eval_voice;
pub mod exit;
mod flow;
mod keys;
mod models;
mod output;
mod pad;
mod pipeline;
mod progress;
mod run;
// Only `bench` locates the sample photos (demo has its own --samples).
#[cfg(feature = "eval")]
mod samples;
mod state;
mod subjects;
mod verdict;
mod verify;
mod voice_flow;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "edgeid", version = edgeid::build_info::LONG_VERSION, about = "On-device face and voice authentication with signed verdicts")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// State directory (store, keys, queue).
    #[arg(
        long,
        global = true,
        env = "EDGEID_STATE_DIR",
        default_value = "/var/lib/edgeid"
    )]
    pub state_dir: PathBuf,
    /// Configuration file (default /etc/edgeid/edgeid.toml when present).
    #[arg(long, global = true, env = "EDGEID_CONFIG")]
    pub config: Option<PathBuf>,
    /// Models directory holding manifest.toml.
    #[arg(long, global = true, env = "EDGEID_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Face detector: `short` (128×128, faces within ~2 m, default) or
    /// `full` (256×256, smaller faces, four times the cost).
    #[arg(long, global = true, env = "EDGEID_DETECTOR", default_value = "short")]
    pub detector: edgeid::vision::detect::DetectorRange,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(edgeid::infer::manifest::default_models_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Similarity of the main faces in two photos, the decision at the shipped threshold, stage timings.
    Compare(compare::CompareArgs),
    /// List or check the models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Measure accuracy on a labelled dataset.
    #[cfg(feature = "eval")]
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Per-stage and end-to-end latency.
    #[cfg(feature = "eval")]
    Bench(bench::BenchArgs),
    /// Enrol and verify on sample photos, showing each stage and the signed verdicts.
    Demo(demo::DemoArgs),
    /// Enrol a subject from photos.
    Enroll(enroll::EnrollArgs),
    /// 1:1: is this the claimed subject? Prints the signed verdict.
    Verify(verify::VerifyArgs),
    /// 1:N: who is this? (opt-in: `identify_enabled` in the config). Prints the signed verdict.
    Identify(verify::IdentifyArgs),
    /// List or revoke enrolled subjects.
    #[command(subcommand)]
    Subjects(subjects::SubjectsCommand),
    /// Device keys: init, rotate, show.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check a signed verdict.
    #[command(subcommand)]
    Verdict(verdict::VerdictCommand),
    /// Check or export the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The daemon: camera, D-Bus and MQTT, until SIGTERM.
    Run(run::RunArgs),
    /// Check the configuration file.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Check this device end to end (camera, microphone, models, keys, store, bus, broker, clock, disk).
    Doctor(doctor::DoctorArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Compare(args) => compare::run(global, args),
        Command::Models(cmd) => models::run(global, cmd),
        #[cfg(feature = "eval")]
        Command::Eval(cmd) => eval::run(global, cmd),
        #[cfg(feature = "eval")]
        Command::Bench(args) => bench::run(global, args),
        Command::Demo(args) => demo::run(global, args),
        Command::Enroll(args) => enroll::run(global, args),
        Command::Verify(args) => verify::run_verify(global, args),
        Command::Identify(args) => verify::run_identify(global, args),
        Command::Subjects(cmd) => subjects::run(global, cmd),
        Command::Keys(cmd) => keys::run(global, cmd),
        Command::Verdict(cmd) => verdict::run(global, cmd),
        Command::Audit(cmd) => audit::run(global, cmd),
        Command::Run(args) => run::run(global, args),
        Command::Config(cmd) => config_check::run(global, cmd),
        Command::Doctor(args) => doctor::run(global, args),
    }
}

/// Structured logs on stderr; `EDGEID_LOG` (or `RUST_LOG`) overrides `-v`.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = std::env::var("EDGEID_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(EnvFilter::new)
        .unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
