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
            eprintln!("edgeid: {error:#}");
            ExitCode::FAILURE
        }
    }
}
