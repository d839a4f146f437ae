//! `edgeid verify --subject ID [--nonce N] [--voice AUDIO] FILE...` (1:1) and
//! `edgeid identify [--nonce N] FILE...` (1:N, opt-in): print the signed
//! verdict; exit non-zero on a rejection, with the reason.

use std::path::PathBuf;

use clap::Args;

use edgeid::decision::{Decision, Modalities, Mode};

use super::GlobalArgs;
use super::flow::{self, DecisionReport, Request};
use super::output::emit;
use super::state::{PipelineCell, load_config, open_unlocked};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The claimed subject.
    #[arg(long)]
    pub subject: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Nonce from the requester, echoed in the verdict (replay protection).
    #[arg(long)]
    pub nonce: Option<String>,
    /// Face similarity threshold (default: the manifest's, FAR 1e-3).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// A recording of the person's voice (WAV or FLAC, at least 2 s of
    /// speech), for a voice policy.
    #[arg(long, value_name = "FILE")]
    pub voice: Option<PathBuf>,
    /// Ask for a stronger policy than the site's [decision] modalities:
    /// face, voice, face+voice or face|voice (never a weaker one).
    #[arg(long)]
    pub modalities: Option<Modalities>,
    /// Photos (frames) of the person; the best usable face is used.
    #[arg(required_unless_present = "voice")]
    pub files: Vec<PathBuf>,
}

pub fn run_verify(global: &GlobalArgs, args: VerifyArgs) -> anyhow::Result<()> {
    run(global, Mode::Verify, Some(&args.subject), args.common)
}

pub fn run_identify(global: &GlobalArgs, args: IdentifyArgs) -> anyhow::Result<()> {
    run(global, Mode::Identify, None, args.common)
}

fn run(
    global: &GlobalArgs,
    mode: Mode,
    subject: Option<&str>,
    args: CommonArgs,
) -> anyhow::Result<()> {
    let config = load_config(global)?;
    if mode == Mode::Identify && !config.identify_enabled {
        anyhow::bail!(
            "1:N identification is off: set `identify_enabled = true` in the config to turn it on \
             (it is high-risk under the EU AI Act and is recorded in the audit log)"
        );
    }
    let (mut store, keys) = open_unlocked(global, &config)?;
    let mut cell = PipelineCell::new(global);
    let report = flow::decide(
        &mut store,
        &keys,
        &config,
        &mut cell,
        &Request {
            mode,
            subject,
            nonce: args.nonce.as_deref(),
            files: &args.files,
            voice: args.voice.as_deref(),
            modalities: args.modalities,
            threshold: args.threshold,
        },
    )?;
    emit(global.json, &report, print_human)?;
    if report.outcome.decision == Decision::Reject {
        anyhow::bail!(
            "{} ({}); the signed verdict is on stdout",
            report.message.as_deref().unwrap_or("rejected"),
            report.outcome.reason
        );
    }
    Ok(())
}

fn print_human(r: &DecisionReport) {
    // The compact verdict alone on the first line, for `| head -1` and scripts.
    println!("{}", r.issued.verdict);
    let c = &r.issued.claims;
    eprintln!(
        "{} ({}) mode {} seq {}{}",
        c.decision.as_str(),
        c.reason,
        c.mode.as_str(),
        c.seq,
        c.sub
            .as_deref()
            .map(|s| format!(" subject {s}"))
            .unwrap_or_default()
    );
}
