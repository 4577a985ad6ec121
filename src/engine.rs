//! Pipelines behind each subcommand: export, index, search, eval, models, doctor.

pub mod embed;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::Command;
use crate::config::Config;
use crate::model::Embedder;

/// Runs one subcommand.
pub fn dispatch(cfg: &Config, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Export { data, model, out, batch } => export(cfg, &data, &model, &out, batch),
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "embtui", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("{other:?} is not available in this build"),
    }
}

/// Opens one model, saying on stderr when `auto` fell back to CPU.
pub fn open_model(cfg: &Config, name: &str) -> anyhow::Result<Embedder> {
    let entry = cfg.models(&[name.to_owned()])?.remove(0);
    let e = Embedder::open(&entry, &cfg.models_dir, cfg.device, cfg.threads)?;
    if let Some(why) = &e.fallback {
        eprintln!("embtui: {}: using CPU ({})", e.entry.name, crate::text::sanitize(why));
    }
    Ok(e)
}

fn export(
    cfg: &Config,
    data: &crate::cli::DatasetArgs,
    model: &str,
    out: &std::path::Path,
    batch: usize,
) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(data)?;
    let mut emb = open_model(cfg, model)?;
    let jobs: Vec<embed::Job> = ds
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| embed::Job { key: i, path: s.path.clone() })
        .collect();
    let dim = emb.entry.dim;
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::with_capacity(jobs.len());
    let mut skipped = 0usize;
    let t0 = std::time::Instant::now();
    embed::run(&mut emb, &jobs, batch, |outcomes| {
        for (key, r) in outcomes {
            match r {
                Ok(v) => rows.push((key, v)),
                Err(e) => {
                    skipped += 1;
                    eprintln!(
                        "embtui: skipped {}: {e}",
                        crate::text::sanitize(&ds.samples[key].name)
                    );
                }
            }
        }
        true
    })?;
    let secs = t0.elapsed().as_secs_f64();
    write_npy(out, &rows, dim).with_context(|| format!("writing {}", out.display()))?;
    let ids = out.with_extension("ids.txt");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&ids).with_context(|| format!("creating {}", ids.display()))?,
    );
    for (key, _) in &rows {
        writeln!(f, "{}", ds.samples[*key].name)?;
    }
    f.flush()?;
    eprintln!(
        "embtui: {} images → {} ({}×{dim}, {skipped} skipped) on {} in {secs:.1} s = {:.1} images/s",
        rows.len(),
        out.display(),
        rows.len(),
        emb.device,
        rows.len() as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a float32 `.npy` (format 1.0) with `rows.len()` rows of `dim`.
pub fn write_npy(
    path: &std::path::Path,
    rows: &[(usize, Vec<f32>)],
    dim: usize,
) -> std::io::Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", rows.len());
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let tmp = path.with_extension("npy.partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for (_, v) in rows {
        for x in v {
            f.write_all(&x.to_le_bytes())?;
        }
    }
    f.flush()?;
    drop(f);
    std::fs::rename(tmp, path)
}
