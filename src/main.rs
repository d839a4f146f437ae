//! The `edgeid` binary: parse the command line and hand over to a verb.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.global.verbose);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("edgeid: {}", explain(&error));
            match error.downcast_ref::<cli::exit::ExitStatus>() {
                Some(status) => ExitCode::from(status.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// The error and its causes, each once: some errors already quote their
/// cause in their own message, and printing it again would repeat it.
fn explain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let line = cause.to_string();
        if !text.contains(&line) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&line);
        }
    }
    text
}
