//! `export`: a dataset's embeddings as `.npy` (float32 `[N, dim]`) with the image names beside.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::embed::{self, Job};
use crate::cli::ExportArgs;
use crate::config::Config;
use crate::{say, warn};

/// `embtui export`.
pub fn run(cfg: &Config, a: &ExportArgs) -> anyhow::Result<ExitCode> {
    super::output::check_writable(&a.out)?;
    let ds = cfg.dataset(&a.data)?;
    super::index::report_issues(&ds);
    if !a.logits {
        return from_store(cfg, &ds, a);
    }
    let mut emb = super::open_model(cfg, &a.model.name, false, super::Workload::Many)?;
    if a.logits && emb.entry.logits.is_none() {
        bail!(
            "model `{}` has no `logits` output in its manifest entry; drop --logits",
            a.model.name
        );
    }
    emb.with_logits = a.logits;
    let jobs: Vec<Job> =
        ds.samples.iter().enumerate().map(|(i, s)| Job { key: i, path: s.path.clone() }).collect();
    let dim = emb.entry.dim;
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::with_capacity(jobs.len());
    let mut skipped = 0usize;
    let t0 = std::time::Instant::now();
    let plan = embed::plan(emb.device, cfg.threads);
    embed::run(&mut emb, &jobs, a.batch.size, &cfg.decode, plan, |outcomes| {
        for (key, r) in outcomes {
            match r {
                Ok(e) => rows.push((key, e.vector)),
                Err(e) => {
                    skipped += 1;
                    warn!("skipped {}: {e}", ds.samples[key].name);
                }
            }
        }
        true
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if a.logits {
        let lrows: Vec<(usize, Vec<f32>)> =
            rows.iter_mut().map(|(k, v)| (*k, v.split_off(dim))).collect();
        let classes = lrows.first().map_or(0, |r| r.1.len());
        let lpath = a.out.with_extension("logits.npy");
        write_npy(&lpath, &lrows, classes)
            .with_context(|| format!("writing {}", lpath.display()))?;
    }
    write_npy(&a.out, &rows, dim).with_context(|| format!("writing {}", a.out.display()))?;
    write_ids(&a.out, &ds, &rows)?;
    say!(
        "{} images → {} ({}×{dim}, {skipped} skipped) on {} in {secs:.1} s = {:.1} images/s \
         (sessions started in {:.2} s)",
        rows.len(),
        a.out.display(),
        rows.len(),
        emb.device,
        rows.len() as f64 / secs.max(1e-9),
        emb.start_seconds
    );
    Ok(ExitCode::SUCCESS)
}

/// Export without logits: the vectors the store already holds are reused (cached by model
/// sha256 and image content), only missing ones are embedded, and they are stored too.
fn from_store(
    cfg: &Config,
    ds: &crate::dataset::Dataset,
    a: &ExportArgs,
) -> anyhow::Result<ExitCode> {
    let store = crate::store::Store::open(&cfg.store_dir)?;
    let entry = cfg.model(&a.model.name)?;
    let t0 = std::time::Instant::now();
    let x = super::index::index_model(
        cfg,
        &store,
        ds,
        &entry,
        a.batch.size,
        None,
        None,
        super::index::Vectors::Resident,
    )?;
    for (img, why) in &x.skipped {
        warn!("skipped {img}: {why}");
    }
    let rows: Vec<(usize, Vec<f32>)> =
        x.vectors.into_iter().enumerate().filter_map(|(i, v)| Some((i, v?))).collect();
    write_npy(&a.out, &rows, x.dim).with_context(|| format!("writing {}", a.out.display()))?;
    write_ids(&a.out, ds, &rows)?;
    say!(
        "{} images → {} ({}×{}; {} reused from the store, {} embedded on {}, {} not embeddable) in {:.1} s{}",
        rows.len(),
        a.out.display(),
        rows.len(),
        x.dim,
        x.cached,
        x.embedded,
        x.device.as_deref().unwrap_or("no device"),
        x.skipped.len(),
        t0.elapsed().as_secs_f64(),
        if x.embedded > 0 {
            format!(" (sessions started in {:.2} s)", x.session_start_seconds)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// FILE.ids.txt: the image name of each row.
fn write_ids(
    out: &Path,
    ds: &crate::dataset::Dataset,
    rows: &[(usize, Vec<f32>)],
) -> anyhow::Result<()> {
    let ids = out.with_extension("ids.txt");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&ids).with_context(|| format!("creating {}", ids.display()))?,
    );
    for (key, _) in rows {
        writeln!(f, "{}", ds.samples[*key].name)?;
    }
    f.flush()?;
    Ok(())
}

/// Writes a float32 `.npy` (format 1.0) with `rows.len()` rows of `dim`, atomically.
pub fn write_npy(path: &Path, rows: &[(usize, Vec<f32>)], dim: usize) -> std::io::Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", rows.len());
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let tmp = path.with_extension("npy.partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    let len = u16::try_from(header.len()).map_err(std::io::Error::other)?;
    f.write_all(&len.to_le_bytes())?;
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
