//! embtui: which vision embedding model to trust for image similarity search, and why.
//!
//! `main` parses the command line, resolves it into a `Config`, dispatches to the TUI
//! (`browse`, `bench tui`) or the engine (everything else), prints the error chain and picks
//! the exit code. Nothing else.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;
mod config;
mod dataset;
mod decode;
mod engine;
mod files;
mod hash;
mod hub;
mod metrics;
mod model;
mod rank;
mod relevance;
mod report;
mod rng;
mod store;
mod text;
mod tui;
mod warn;

fn main() -> ExitCode {
    match run() {
        Ok(code) => {
            if warn::count() > 0 {
                say!("{} warnings (see above)", warn::count());
            }
            code
        }
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

/// With a GPU runtime in `.ort/gpu` (`just setup-gpu`), the CUDA libraries copied beside it
/// must be on the loader path before ONNX Runtime loads its CUDA provider; the loader reads
/// LD_LIBRARY_PATH only at start, so embtui starts itself again once with it set.
fn reexec_with_gpu_libraries() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("EMBTUI_GPU_LIBS").is_some() || std::env::var_os("ORT_DYLIB_PATH").is_some()
    {
        return;
    }
    let Some(dir) = model::runtime::candidates(true)
        .into_iter()
        .find(|p| p.exists() && p.parent().is_some_and(|d| d.ends_with(".ort/gpu")))
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
    else {
        return;
    };
    let mut paths = vec![dir.clone()];
    paths.extend(
        std::env::var_os("LD_LIBRARY_PATH")
            .map(|v| std::env::split_paths(&v).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let (Ok(exe), Ok(joined)) = (std::env::current_exe(), std::env::join_paths(paths)) else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", joined)
        .env("EMBTUI_GPU_LIBS", &dir)
        .exec();
    warn!(
        "could not restart with the GPU libraries of {} on the loader path: {err}",
        dir.display()
    );
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = cli::Cli::parse();
    if cli.global.device != model::Device::Cpu {
        reexec_with_gpu_libraries();
    }
    let cfg = config::Config::from_global(&cli.global)?;
    model::set_cudnn_search(cli.global.cudnn_search);
    let Some(command) = cli.command else {
        cli::Cli::command().print_help()?;
        eprintln!("\nTo open the TUI: embtui browse --dataset DIR --model efficientnet-lite0,dinov2-s14-imgfocus");
        return Ok(ExitCode::from(2));
    };
    match command {
        cli::Command::Browse(a) => tui::browse(&cfg, &a),
        cli::Command::Bench(cli::BenchArgs {
            what: cli::BenchCmd::Tui { data, presses },
            json,
        }) => tui::bench::run(&cfg, &data, presses, json),
        other => engine::dispatch(&cfg, other),
    }
}
