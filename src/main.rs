//! The `hotspot` binary: a thin shell around the library (`hotspot::cli`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hotspot::cli::Cli::parse();
    match hotspot::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("hotspot: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
