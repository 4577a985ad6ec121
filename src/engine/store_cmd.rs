//! `embtui store`: what the store holds, `store gc`, `store merge`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use crate::cli::{StoreAction, StoreArgs};
use crate::config::Config;
use crate::say;
use crate::store::maintenance::{merge_conflict, Current};
use crate::store::{GcReport, ShardRecord, Store, StoreSummary};
use crate::text::sanitize;

/// `embtui store …`.
pub fn run(cfg: &Config, a: &StoreArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&cfg.store_dir)?;
    let current = current_models(cfg);
    let mut out = std::io::stdout().lock();
    match &a.action {
        None => {
            let s = store.summary(&current)?;
            if a.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
            } else {
                write!(out, "{}", fit_lines(&summary_text(&s)))?;
            }
        }
        Some(StoreAction::Gc { dry_run, compact }) => {
            let r = store.gc(&current, *dry_run, *compact)?;
            if a.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                write!(out, "{}", fit_lines(&gc_text(&r, *dry_run)))?;
            }
        }
        Some(StoreAction::Merge { sources }) => merge(cfg, &store, sources)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `store merge`: every source checked first (a store, not the destination, not being
/// written, shards of one dataset selection, split and model set, each finished), then copied;
/// a refusal changes nothing.
fn merge(cfg: &Config, store: &Store, sources: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let Some(_merging) = store.try_merging() else {
        anyhow::bail!("{} is being written by another embtui run (index, eval or browse embedding into it); merge when it has finished (nothing was changed)", cfg.store_dir.display());
    };
    let mut opened = Vec::new();
    for src in sources {
        if std::fs::canonicalize(src).ok() == std::fs::canonicalize(&cfg.store_dir).ok() {
            anyhow::bail!("{} is the store being merged into; pass other stores", src.display());
        }
        if !src.join("data.mdb").is_file() {
            anyhow::bail!("{} holds no embtui store (no data.mdb)", src.display());
        }
        let other = Store::open(src)?;
        let Some(hold) = other.try_merging() else {
            anyhow::bail!("{} is still being written (its task is running); merge when it has finished (nothing was changed)", src.display());
        };
        let records = other.shards()?;
        opened.push((src.display().to_string(), other, records, hold));
    }
    let named: Vec<(String, Vec<ShardRecord>)> =
        opened.iter().map(|(n, _, r, _)| (n.clone(), r.clone())).collect();
    if let Some(why) = merge_conflict(&named) {
        anyhow::bail!("cannot merge: {why} (nothing was changed)");
    }
    for (name, other, _, _) in &opened {
        let (copied, present) = store.merge_from(other)?;
        say!("{name}: {copied} vectors copied, {present} already here");
    }
    say!(
        "merged into {}; `embtui index` or `eval` builds the indexes from the merged vectors",
        cfg.store_dir.display()
    );
    Ok(())
}

/// The manifest's models and the sha256 of their installed files.
fn current_models(cfg: &Config) -> Current {
    // The image models of the manifest and the caption encoder of semantic relevance.
    let encoder = crate::model::sentence::NAME;
    cfg.manifest
        .models
        .iter()
        .map(|m| (m.name.clone(), cfg.models_dir.join(&m.file)))
        .chain(std::iter::once((
            encoder.to_owned(),
            cfg.models_dir.join(format!("{encoder}.onnx")),
        )))
        .map(|(name, path)| {
            (name, path.is_file().then(|| crate::hash::model_sha256(&path).ok()).flatten())
        })
        .collect::<BTreeMap<_, _>>()
}

/// Every line cut to the terminal's width.
fn fit_lines(text: &str) -> String {
    let w = crate::text::terminal_width();
    text.lines().map(|l| crate::text::fit(l, w) + "\n").collect()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn summary_text(s: &StoreSummary) -> String {
    let mut t = format!("store {} ({} on disk)\n", sanitize(&s.path), mb(s.file_bytes));
    t += &format!(
        "{:<22} {:>10} {:>10}  computed on (images/s)\n",
        "vectors of model", "vectors", "size"
    );
    for m in &s.models {
        let prov = m.provenance.as_ref().map_or("-".to_owned(), |p| {
            let speed = p.images_per_second().map_or(String::new(), |x| format!(" ({x:.1})"));
            format!("{}{speed}", p.devices.join("+"))
        });
        t += &format!("{:<22} {:>10} {:>10}  {prov}\n", sanitize(&m.model), m.vectors, mb(m.bytes));
    }
    t += &format!(
        "{} indexes (at most {} selections per model and dataset folder):\n",
        s.indexes.len(),
        crate::store::MAX_SELECTIONS
    );
    for i in &s.indexes {
        let stale = i.stale.as_ref().map_or(String::new(), |w| format!("  STALE: {w}"));
        t += &format!(
            "  {} · {} · {} · {} items · {}{stale}\n",
            sanitize(&i.model),
            sanitize(&i.dataset_root),
            sanitize(&i.selection),
            i.items,
            mb(i.bytes)
        );
    }
    t += &format!("stat cache: {} files\n", s.stat_cache_entries);
    t
}

fn gc_text(r: &GcReport, dry_run: bool) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut t = format!("{verb} {} indexes, ", r.indexes.len());
    let vectors: u64 = r.vectors.iter().map(|v| v.2).sum();
    t += &format!(
        "{vectors} vectors of superseded model files, {} stat-cache entries\n",
        r.stat_cache_entries
    );
    for i in &r.indexes {
        t += &format!(
            "  index {} · {} · {}: {}\n",
            sanitize(&i.model),
            sanitize(&i.dataset_root),
            sanitize(&i.selection),
            i.stale.as_deref().unwrap_or("")
        );
    }
    for (m, sha, n) in &r.vectors {
        t += &format!("  {n} vectors of {} (file {sha}…)\n", sanitize(m));
    }
    if !dry_run {
        t += &format!(
            "data.mdb: {} → {}{}\n",
            mb(r.bytes_before),
            mb(r.bytes_after),
            if r.compacted {
                " (compacted)"
            } else {
                " (free pages are reused; --compact shrinks the file)"
            }
        );
    }
    t
}
