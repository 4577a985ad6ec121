//! Pipelines behind each subcommand, one file each; this file dispatches and holds what they
//! share (opening a model, the machine facts every report records).
//!
//! The engine knows nothing of the terminal UI: `worker.rs` serves the TUI through messages
//! (`Request` in, `EngineEvent` out), as gitui's asyncgit serves its UI.

pub mod bench;
pub mod captions;
pub mod embed;
pub mod eval;
pub mod export;
pub mod figure;
pub mod html;
pub mod index;
pub mod output;
pub mod pull;
pub mod sanity;
pub mod search;
pub mod store_cmd;
pub mod validate;
pub mod worker;
pub mod zoo;

use std::process::ExitCode;
use std::sync::Once;

use crate::cli::{self, Command};
use crate::config::Config;
use crate::model::Embedder;
use crate::report;

/// Runs one subcommand (all but `browse` and `bench tui`, which belong to the TUI).
pub fn dispatch(cfg: &Config, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Index(a) => index::run(cfg, &a),
        Command::Eval(a) => eval::run(cfg, &a),
        Command::Search(a) => search::run(cfg, &a),
        Command::TextEmbed(a) => search::text_embed(cfg, &a),
        Command::Export(a) => export::run(cfg, &a),
        Command::Models(a) => match a.action {
            None => zoo::models(cfg, a.json),
            Some(cli::ModelsAction::Pull(p)) => pull::run(cfg, &p, false),
            Some(cli::ModelsAction::Show(p)) => pull::run(cfg, &p, true),
        },
        Command::Doctor => zoo::doctor(cfg),
        Command::Dataset(a) => sanity::dataset_summary(&cfg.dataset(&a.data)?, a.json),
        Command::Relevance(a) => sanity::relevance(cfg, &a),
        Command::Validate(a) => validate::run(cfg, &a),
        Command::Bench(b) => bench::run(cfg, b),
        Command::Store(a) => store_cmd::run(cfg, &a),
        Command::Completions(a) => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "embtui", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Figure(a) => figure::run(cfg, &a),
        Command::Report(a) => html::report(cfg, &a),
        Command::Browse(_) => unreachable!("main dispatches browse to the TUI"),
    }
}

/// What an opened model will embed, which decides its sessions' threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Many images: as `embed::plan` says (on a CPU, one single-threaded session per core).
    Many,
    /// One image at a time (a query): one session using every core (or `--threads`).
    One,
}

/// Opens one model; when `auto` fell back to CPU although a GPU runtime is installed, says why
/// once per process (`quiet` keeps stderr clean for the TUI, which shows it in its status bar).
pub fn open_model(
    cfg: &Config,
    name: &str,
    quiet: bool,
    work: Workload,
) -> anyhow::Result<Embedder> {
    static FALLBACK_SAID: Once = Once::new();
    let entry = cfg.model(name)?;
    let threads = match work {
        Workload::Many => embed::plan(cfg.device, cfg.threads).ort_threads,
        Workload::One => cfg.threads,
    };
    let e = Embedder::open(&entry, &cfg.models_dir, cfg.device, threads)?;
    if let (false, Some(why)) = (quiet, &e.fallback) {
        FALLBACK_SAID.call_once(|| crate::warn!("{}: using CPU ({why})", e.entry.name));
    }
    Ok(e)
}

/// Machine facts recorded in every report.
pub fn environment() -> report::Environment {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    // Loading the runtime takes milliseconds; a fully cached run has not needed it otherwise.
    let _ = crate::model::runtime::environment(false);
    let gpu = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
        .filter(|s| !s.is_empty());
    report::Environment {
        embtui_version: env!("CARGO_PKG_VERSION").into(),
        onnxruntime_version: crate::model::runtime::version(),
        cpu,
        gpu,
        threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    }
}
