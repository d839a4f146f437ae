//! `edgeid verdict verify [--key FILE] (--nonce N | --any-nonce)
//! [--any-decision] VERDICT`.
//!
//! The exit status is what a door script acts on, so 0 means exactly "a
//! genuine, unexpired accept verdict answering my nonce": a valid reject
//! exits 3, anything invalid 1. `edgeid verdict verify ... && open_door` is
//! then safe; relaxing either condition takes an explicit flag.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use edgeid::store::unix_now;
use edgeid::verdict::{Decision, Jwk, jws};

use super::GlobalArgs;
use super::exit::{ExitStatus, NOT_AN_ACCEPT};
use super::output::emit;
use super::state::{load_config, open_unlocked_for_reading};

#[derive(Debug, Subcommand)]
pub enum VerdictCommand {
    /// Check a verdict's signature, key id, expiry and nonce; exit 0 only
    /// for an accept (3 for a valid reject, 1 for an invalid verdict).
    #[command(group = clap::ArgGroup::new("freshness").required(true).args(["nonce", "any_nonce"]))]
    Verify {
        /// The device public key as a JWK file (default: this device's, from the store).
        #[arg(long)]
        key: Option<PathBuf>,
        /// The nonce the verdict must carry: the one sent with the request.
        #[arg(long)]
        nonce: Option<String>,
        /// Accept any nonce or none (walk-up verdicts carry none): the
        /// verdict may then be a replay of an older one; check `seq`.
        #[arg(long)]
        any_nonce: bool,
        /// Exit 0 for a valid verdict whatever its decision.
        #[arg(long)]
        any_decision: bool,
        /// The compact verdict, a file holding it, or `-` for stdin.
        verdict: String,
    },
}

#[derive(Serialize)]
struct Report {
    valid: bool,
    /// The check that failed: format, header, kid, signature, exp, iat or nonce.
    failed_check: Option<&'static str>,
    error: Option<String>,
    verified: Option<jws::Verified>,
}

fn read_verdict(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the verdict from stdin")?;
        return Ok(s.trim().to_owned());
    }
    if !arg.contains('.') || std::path::Path::new(arg).is_file() {
        return Ok(std::fs::read_to_string(arg)
            .with_context(|| format!("reading the verdict file {arg}"))?
            .trim()
            .to_owned());
    }
    Ok(arg.trim().to_owned())
}

pub fn run(global: &GlobalArgs, cmd: VerdictCommand) -> anyhow::Result<()> {
    let VerdictCommand::Verify {
        key,
        nonce,
        any_nonce: _,
        any_decision,
        verdict,
    } = cmd;
    let token = read_verdict(&verdict)?;
    let (public_key, kid) = match key {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the key {}", path.display()))?;
            let jwk: Jwk = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a JWK (get one with `edgeid keys show --jwk`)",
                    path.display()
                )
            })?;
            (jwk.public_key()?, jwk.key_id()?)
        }
        None => {
            // The signing key's own public key (the stored copy is checked against it).
            let (_store, ring) = open_unlocked_for_reading(global, &load_config(global)?)
                .context("no --key given, so the device's own key is needed")?;
            (ring.public_key(), ring.kid.clone())
        }
    };
    let result = jws::verify(&token, &public_key, &kid, nonce.as_deref(), unix_now());
    let report = match &result {
        Ok(v) => Report {
            valid: true,
            failed_check: None,
            error: None,
            verified: Some(v.clone()),
        },
        Err(e) => Report {
            valid: false,
            failed_check: Some(e.check()),
            error: Some(e.to_string()),
            verified: None,
        },
    };
    emit(global.json, &report, |r| {
        if let Some(v) = &r.verified {
            println!(
                "valid verdict from device {} (kid {})",
                v.claims.iss, v.header.kid
            );
            println!(
                "decision {} ({}), mode {}, seq {}, expires at {}",
                v.claims.decision.as_str(),
                v.claims.reason,
                v.claims.mode.as_str(),
                v.claims.seq,
                v.claims.exp
            );
            println!(
                "evidence: src {}, liveness {}, amr {}",
                v.claims.src.as_str(),
                v.claims.liveness.as_str(),
                v.claims.amr.join(",")
            );
            if let Some(sub) = &v.claims.sub {
                println!("subject {sub}");
            }
        }
    })?;
    match result {
        Ok(v) if v.claims.decision == Decision::Accept || any_decision => Ok(()),
        Ok(v) => Err(ExitStatus {
            code: NOT_AN_ACCEPT,
            message: format!(
                "the verdict is genuine but says {} ({}): do not open",
                v.claims.decision.as_str(),
                v.claims.reason
            ),
        }
        .into()),
        Err(e) => Err(anyhow::anyhow!(
            "verdict rejected ({} check failed): {e}",
            e.check()
        )),
    }
}
