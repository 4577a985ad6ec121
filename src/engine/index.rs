//! `index`: embed what the store does not hold yet, commit batch by batch, build arroy trees.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use super::embed::{self, Job};
use crate::cli::IndexArgs;
use crate::config::Config;
use crate::dataset::Dataset;
use crate::model::ModelEntry;
use crate::store::{IndexMeta, Store, DEFAULT_N_TREES, SEED};
use crate::{say, warn};

/// `embtui index`.
pub fn run(cfg: &Config, a: &IndexArgs) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(&a.data)?;
    index_all(cfg, &Store::open(&cfg.store_dir)?, &ds, &a.models.names, a.batch.size)?;
    Ok(ExitCode::SUCCESS)
}

/// What indexing one model produced.
pub struct Indexed {
    pub meta: IndexMeta,
    /// One entry per dataset sample: its vector, or None when skipped.
    pub vectors: Vec<Option<Vec<f32>>>,
    pub embedded: usize,
    pub cached: usize,
    pub skipped: Vec<(String, String)>,
    pub embed_seconds: f64,
    pub device: String,
}

impl Indexed {
    pub fn images_per_second(&self) -> Option<f64> {
        (self.embedded > 0 && self.embed_seconds > 0.0)
            .then(|| self.embedded as f64 / self.embed_seconds)
    }
}

/// Called with (images done, images to embed) after every committed batch.
pub type OnProgress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Indexes `ds` with every named model, reporting data issues and a summary per model.
pub fn index_all(
    cfg: &Config,
    store: &Store,
    ds: &Dataset,
    models: &[String],
    batch: usize,
) -> anyhow::Result<Vec<Indexed>> {
    report_issues(ds);
    let mut indexed = Vec::new();
    for entry in cfg.models(models)? {
        let x = index_model(cfg, store, ds, &entry, batch, None)?;
        summary(&x);
        indexed.push(x);
    }
    Ok(indexed)
}

/// Indexes `ds` with `entry`; embeds only images whose (model, content) pair is not cached.
/// Progress goes to `on_progress` when given (the TUI), else to stderr.
pub fn index_model(
    cfg: &Config,
    store: &Store,
    ds: &Dataset,
    entry: &ModelEntry,
    batch: usize,
    on_progress: Option<OnProgress<'_>>,
) -> anyhow::Result<Indexed> {
    let path = cfg.models_dir.join(&entry.file);
    if !path.is_file() {
        return Err(crate::model::ModelError::FileMissing { name: entry.name.clone(), path }.into());
    }
    let sha =
        crate::hash::file_sha256(&path).with_context(|| format!("hashing {}", path.display()))?;
    let hashes = content_hashes(ds);
    let ok_hashes: Vec<[u8; 32]> = hashes.iter().map(|h| h.clone().unwrap_or([0; 32])).collect();
    let mut vectors = store.cached(&sha, entry.dim, &entry.name, &ok_hashes)?;
    let mut skipped = Vec::new();
    let mut jobs = Vec::new();
    for (i, h) in hashes.iter().enumerate() {
        match h {
            Err(why) => {
                vectors[i] = None;
                skipped.push((ds.samples[i].name.clone(), why.clone()));
            }
            Ok(_) if vectors[i].is_none() => {
                jobs.push(Job { key: i, path: ds.samples[i].path.clone() });
            }
            Ok(_) => {}
        }
    }
    let cached = vectors.iter().filter(|v| v.is_some()).count();
    let mut device = "cached".to_owned();
    let t0 = Instant::now();
    let mut embedded = 0usize;
    if !jobs.is_empty() {
        let mut emb = super::open_model(cfg, &entry.name, on_progress.is_some())?;
        if emb.sha256 != sha {
            anyhow::bail!("model file {} changed while indexing; run again", emb.path.display());
        }
        device = emb.device.to_string();
        let progress = Progress::new(&entry.name, jobs.len(), on_progress.is_none());
        embed::run(&mut emb, &jobs, batch, |outcomes| {
            let mut items = Vec::new();
            for (key, r) in outcomes {
                match r {
                    Ok(v) => {
                        items.push((ok_hashes[key], v.clone()));
                        vectors[key] = Some(v);
                    }
                    Err(e) => skipped.push((ds.samples[key].name.clone(), e.to_string())),
                }
            }
            if let Err(e) = store.put_vectors(&sha, &items) {
                warn!("{:#}", anyhow::Error::from(e));
                return false;
            }
            // Counted only once committed: "stopped after N" must never claim more.
            embedded += items.len();
            match on_progress {
                Some(f) => f(embedded + skipped.len(), jobs.len()),
                None => progress.tick(embedded, skipped.len()),
            }
            true
        })?;
        progress.finish();
        if embedded + skipped.len() < jobs.len() {
            anyhow::bail!("indexing {} stopped after {embedded} of {} images (see above); what was committed is kept", entry.name, jobs.len());
        }
    }
    let embed_seconds = t0.elapsed().as_secs_f64();
    let meta = ensure_index(store, ds, entry, &sha, &vectors, embedded > 0)?;
    Ok(Indexed { meta, vectors, embedded, cached, skipped, embed_seconds, device })
}

/// sha256 of every image file's bytes (the cache key), or why it could not be read.
fn content_hashes(ds: &Dataset) -> Vec<Result<[u8; 32], String>> {
    ds.samples
        .par_iter()
        .map(|s| {
            std::fs::read(&s.path)
                .map(|b| crate::hash::bytes_sha256(&b))
                .map_err(|e| format!("cannot read file: {e}"))
        })
        .collect()
}

/// The (model, dataset) arroy index: reused when nothing changed, else built from `vectors`.
fn ensure_index(
    store: &Store,
    ds: &Dataset,
    entry: &ModelEntry,
    sha: &str,
    vectors: &[Option<Vec<f32>>],
    changed: bool,
) -> anyhow::Result<IndexMeta> {
    let fingerprint = ds.fingerprint();
    let items: Vec<(u32, Vec<f32>)> =
        vectors.iter().enumerate().filter_map(|(i, v)| v.clone().map(|v| (i as u32, v))).collect();
    if let Some(m) = store.index_meta(&entry.name, &fingerprint)? {
        if m.onnx_sha256 == sha && m.n_items == items.len() && !changed {
            return Ok(m);
        }
    }
    let meta = IndexMeta {
        model: entry.name.clone(),
        onnx_sha256: sha.to_owned(),
        dim: entry.dim,
        entry: serde_json::to_value(entry)?,
        embtui_version: env!("CARGO_PKG_VERSION").into(),
        dataset_fingerprint: fingerprint,
        arroy_index: 0,
        n_items: 0,
        n_trees: DEFAULT_N_TREES,
        seed: SEED,
        build_seconds: 0.0,
    };
    Ok(store.build_index(&meta, &items)?)
}

/// Prints the first data issues of a dataset (all are counted in the report).
pub fn report_issues(ds: &Dataset) {
    for i in ds.issues.iter().take(10) {
        let line = i.line.map_or(String::new(), |l| format!(":{l}"));
        warn!("{}{line}: {}", i.file, i.message);
    }
    if ds.issues.len() > 10 {
        say!("… and {} more data issues (counted in the report)", ds.issues.len() - 10);
    }
}

fn summary(x: &Indexed) {
    let rate = x
        .images_per_second()
        .map_or(String::new(), |r| format!(" at {r:.1} images/s on {}", x.device));
    say!(
        "{}: {} embedded{rate}, {} cached, {} skipped; index of {} items ({} trees)",
        x.meta.model,
        x.embedded,
        x.cached,
        x.skipped.len(),
        x.meta.n_items,
        x.meta.n_trees
    );
    for (img, why) in x.skipped.iter().take(10) {
        warn!("  skipped {img}: {why}");
    }
}

/// A progress bar on a terminal, plain lines every 10% otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    name: String,
    start: Instant,
    last_decile: std::cell::Cell<usize>,
}

impl Progress {
    fn new(name: &str, total: usize, visible: bool) -> Self {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_prefix(name.to_owned());
            b
        });
        Self { bar, total, name: name.into(), start: Instant::now(), last_decile: 0.into() }
    }

    fn tick(&self, done: usize, skipped: usize) {
        if let Some(b) = &self.bar {
            b.set_position((done + skipped) as u64);
            return;
        }
        let decile = (done + skipped) * 10 / self.total.max(1);
        if decile > self.last_decile.get() {
            self.last_decile.set(decile);
            let secs = self.start.elapsed().as_secs_f64();
            let rate = done as f64 / secs.max(1e-9);
            let eta = self.total.saturating_sub(done + skipped) as f64 / rate.max(1e-9);
            say!(
                "{}: {}/{} images, {rate:.1} images/s, ETA {eta:.0} s",
                self.name,
                done + skipped,
                self.total
            );
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
