//! embtui: which vision embedding model to trust for image similarity search, and why.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;
mod config;
mod dataset;
mod engine;
mod hash;
mod metrics;
mod model;
mod relevance;
mod report;
mod store;
mod text;
mod tui;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(
                std::io::stderr(),
                "embtui: error: {}",
                text::sanitize(&format!("{err:#}"))
            );
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = cli::Cli::parse();
    let cfg = config::Config::from_global(&cli.global)?;
    let Some(command) = cli.command else {
        cli::Cli::command().print_help()?;
        eprintln!("\nTo open the TUI: embtui browse --dataset DIR --model efficientnet-lite0,dinov2-s14-imgfocus");
        return Ok(ExitCode::from(2));
    };
    engine::dispatch(&cfg, command)
}
