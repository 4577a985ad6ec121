//! `index`: embed what the store does not hold yet, commit batch by batch (resumable after a
//! kill), record the run, build the selection's arroy index. With `--shard I/N` only the
//! images whose content hash falls in shard I are embedded (for N machines or GPUs; merge the
//! stores with `embtui store merge`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use super::embed::{self, Job};
use crate::cli::IndexArgs;
use crate::config::Config;
use crate::dataset::Dataset;
use crate::hash::Shard;
use crate::model::ModelEntry;
use crate::store::{FileStamp, IndexMeta, Provenance, ShardRecord, Store, DEFAULT_N_TREES, SEED};
use crate::{say, warn};

/// `embtui index`.
pub fn run(cfg: &Config, a: &IndexArgs) -> anyhow::Result<ExitCode> {
    let shard = match a.shard {
        Some(spec) => Some(spec.resolve(&|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?),
        None => None,
    };
    if let (Some(s), Some(crate::hash::ShardSpec::Auto { .. })) = (shard, a.shard) {
        say!("shard {}/{} from the scheduler's environment", s.index, s.count);
    }
    let ds = cfg.dataset(&a.data)?;
    let store = Store::open(&cfg.store_dir)?;
    report_issues(&ds);
    for entry in cfg.models(&a.models.names)? {
        let x =
            index_model(cfg, &store, &ds, &entry, a.batch.size, shard, None, Vectors::Unloaded)?;
        summary(&x);
        if x.embedded + x.cached == 0 && !x.skipped.is_empty() {
            anyhow::bail!(
                "no image of {} could be embedded by {} ({} skipped, see above)",
                ds.root.display(),
                entry.name,
                x.skipped.len()
            );
        }
    }
    if let Some(s) = shard {
        say!(
            "shard {}/{} done; combine the shards' stores with `embtui store merge STORE…`",
            s.index,
            s.count
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What indexing one model produced.
pub struct Indexed {
    pub model: String,
    pub dim: usize,
    pub onnx_sha256: String,
    /// Where the weights came from (the manifest's `source`; `hf:REPO@COMMIT (FILE)` when pulled).
    pub source: String,
    /// The selection's arroy index (None for a shard, whose index is built after merging).
    pub index: Option<IndexMeta>,
    /// One entry per dataset sample: its vector, or None when skipped (or in another shard).
    /// After [`Indexed::unload`] a present vector is an empty `Vec`: read it with [`Indexed::rows`].
    pub vectors: Vec<Option<Vec<f32>>>,
    /// The store key of each present vector (content sha256, or its reduced-decode key).
    pub keys: Vec<Option<[u8; 32]>>,
    pub embedded: usize,
    pub cached: usize,
    pub skipped: Vec<(String, String)>,
    pub embed_seconds: f64,
    /// Of this run: seconds spent starting ONNX Runtime sessions (0 when everything was cached).
    pub session_start_seconds: f64,
    /// The device this run embedded on (None when everything was cached).
    pub device: Option<String>,
    /// The runs that computed this model file's vectors, as the store records them.
    pub provenance: Option<Provenance>,
    /// Truncated images embedded anyway in this run (`--accept-truncated`).
    pub truncated: usize,
}

impl Indexed {
    /// Frees the vectors, keeping which images have one: `eval` reads each model's vectors back
    /// from the store when it ranks with that model, so one model's vectors are resident at a
    /// time, not every model's (2 GB for the four offline models at COCO's 123,287 images).
    pub fn unload(&mut self) {
        for v in self.vectors.iter_mut().flatten() {
            *v = Vec::new();
        }
    }

    /// The vectors of `images` as one row-major matrix (`images.len() × dim`), from memory or,
    /// after [`Indexed::unload`], from the store. Every image must have a vector.
    pub fn rows(&self, store: &Store, images: &[usize]) -> anyhow::Result<Vec<f32>> {
        let resident =
            images.iter().all(|&i| self.vectors[i].as_ref().is_some_and(|v| v.len() == self.dim));
        if resident {
            let mut flat = Vec::with_capacity(images.len() * self.dim);
            for &i in images {
                flat.extend_from_slice(self.vectors[i].as_deref().unwrap_or(&[]));
            }
            return Ok(flat);
        }
        let keys: Vec<[u8; 32]> = images
            .iter()
            .map(|&i| {
                self.keys[i].with_context(|| {
                    format!(
                        "{}: no stored vector for image #{i}; run `embtui index` again",
                        self.model
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(store.read_rows(&self.onnx_sha256, self.dim, &self.model, &keys)?)
    }

    /// This run's speed, when it embedded anything.
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
    resident: bool,
) -> anyhow::Result<Vec<Indexed>> {
    report_issues(ds);
    let mut indexed = Vec::new();
    for entry in cfg.models(models)? {
        let want = if resident { Vectors::Resident } else { Vectors::Unloaded };
        let mut x = index_model(cfg, store, ds, &entry, batch, None, None, want)?;
        summary(&x);
        if !resident {
            x.unload();
            crate::store::return_freed_heap();
        }
        indexed.push(x);
    }
    Ok(indexed)
}

/// What [`index_model`] hands back of the cached vectors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vectors {
    /// Every vector in memory (search, export, the TUI's exact neighbours).
    Resident,
    /// Only which images have one, as after [`Indexed::unload`]: the cache check then looks
    /// keys up without copying their vectors (`Store::has`), and cached vectors are read only
    /// when the arroy index must be built. `eval` and `index` at COCO's 123,287 images would
    /// otherwise copy a whole model (630 MB at 1,280 floats) just to learn it is cached.
    Unloaded,
}

/// Indexes `ds` with `entry`; embeds only images whose (model, content) pair is not cached.
/// Progress goes to `on_progress` when given (the TUI), else to stderr.
#[allow(clippy::too_many_arguments)]
pub fn index_model(
    cfg: &Config,
    store: &Store,
    ds: &Dataset,
    entry: &ModelEntry,
    batch: usize,
    shard: Option<Shard>,
    on_progress: Option<OnProgress<'_>>,
    want: Vectors,
) -> anyhow::Result<Indexed> {
    let path = cfg.models_dir.join(&entry.file);
    if !path.is_file() {
        return Err(crate::model::ModelError::FileMissing { name: entry.name.clone(), path }.into());
    }
    let sha =
        crate::hash::model_sha256(&path).with_context(|| format!("hashing {}", path.display()))?;
    // Held until this model's vectors and index are written: `store merge` waits for it.
    let _writing = store.writing();
    let mut hashes = content_hashes(store, ds)?;
    let mut skipped = Vec::new();
    for (i, h) in hashes.iter_mut().enumerate() {
        if let Err(why) = h {
            skipped.push((ds.samples[i].name.clone(), std::mem::take(why)));
        }
    }
    let wanted: Vec<Option<[u8; 32]>> = hashes
        .iter()
        .map(|h| h.as_ref().ok().copied().filter(|c| shard.is_none_or(|s| s.holds(c))))
        .collect();
    let mut vectors = lookup(store, &sha, entry, &wanted, want)?;
    let mut keys: Vec<Option<[u8; 32]>> =
        wanted.iter().zip(&vectors).map(|(w, v)| w.filter(|_| v.is_some())).collect();
    if !cfg.decode.exact {
        adopt_reduced(store, &sha, entry, &wanted, &mut vectors, &mut keys)?;
    }
    let cached = vectors.iter().filter(|v| v.is_some()).count();
    let jobs: Vec<Job> = (0..ds.samples.len())
        .filter(|&i| wanted[i].is_some() && vectors[i].is_none())
        .map(|i| Job { key: i, path: ds.samples[i].path.clone() })
        .collect();
    let mut record = shard.map(|s| ShardRecord {
        images: wanted.iter().filter(|w| w.is_some()).count(),
        ..shard_record(entry, &sha, ds, s)
    });
    if let Some(r) = &record {
        store.record_shard(r)?;
    }
    let mut run = Run { embedded: 0, truncated: 0, seconds: 0.0, start_seconds: 0.0, device: None };
    if !jobs.is_empty() {
        let r = IndexRun { cfg, store, ds, entry, sha: &sha, batch, on_progress };
        run = r.embed_missing(&jobs, &wanted, (&mut vectors, &mut keys), &mut skipped)?;
    }
    if let Some(r) = &mut record {
        r.finished = true;
        store.record_shard(r)?;
    }
    let provenance = store.provenance(&sha)?;
    let index = if shard.is_some() {
        None
    } else {
        Some(selection_index(store, ds, entry, &sha, &keys, &mut vectors, run.embedded > 0)?)
    };
    // Every vector of the model has been copied out: its pages need not stay resident.
    store.release_mapped_pages();
    Ok(Indexed {
        model: entry.name.clone(),
        dim: entry.dim,
        onnx_sha256: sha,
        source: entry.source.clone(),
        index,
        vectors,
        keys,
        embedded: run.embedded,
        cached,
        skipped,
        embed_seconds: run.seconds,
        session_start_seconds: run.start_seconds,
        device: run.device,
        provenance,
        truncated: run.truncated,
    })
}

/// Vectors of large JPEGs that an earlier run decoded at reduced scale (stored under the
/// reduced key) fill the images with no vector under their content key.
fn adopt_reduced(
    store: &Store,
    sha: &str,
    entry: &ModelEntry,
    wanted: &[Option<[u8; 32]>],
    vectors: &mut [Option<Vec<f32>>],
    keys: &mut [Option<[u8; 32]>],
) -> anyhow::Result<()> {
    let reduced: Vec<Option<[u8; 32]>> = wanted
        .iter()
        .zip(vectors.iter())
        .map(|(w, v)| w.filter(|_| v.is_none()).map(|c| crate::hash::reduced_key(&c)))
        .collect();
    if reduced.iter().any(Option::is_some) {
        let found = store.cached(sha, entry.dim, &entry.name, &reduced)?;
        for ((v, f), (k, r)) in vectors.iter_mut().zip(found).zip(keys.iter_mut().zip(&reduced)) {
            if f.is_some() {
                *v = f;
                *k = *r;
            }
        }
    }
    Ok(())
}

/// Where embedded vectors go: per image, the vector and the store key it was written under.
type Slots<'a> = (&'a mut [Option<Vec<f32>>], &'a mut [Option<[u8; 32]>]);

/// What a shard task records before it embeds (`finished` set once it has).
fn shard_record(entry: &ModelEntry, sha: &str, ds: &Dataset, s: Shard) -> ShardRecord {
    ShardRecord {
        model: entry.name.clone(),
        model_sha256: sha.to_owned(),
        dataset_root: ds.root.display().to_string(),
        dataset_fingerprint: ds.fingerprint(),
        index: s.index,
        count: s.count,
        images: 0,
        finished: false,
    }
}

/// What one embedding run did.
struct Run {
    embedded: usize,
    truncated: usize,
    seconds: f64,
    start_seconds: f64,
    device: Option<String>,
}

/// Everything one model's index run works with.
struct IndexRun<'a> {
    cfg: &'a Config,
    store: &'a Store,
    ds: &'a Dataset,
    entry: &'a ModelEntry,
    sha: &'a str,
    batch: usize,
    on_progress: Option<OnProgress<'a>>,
}

impl IndexRun<'_> {
    /// Embeds `jobs`, committing each batch; records the run in the store.
    fn embed_missing(
        &self,
        jobs: &[Job],
        content: &[Option<[u8; 32]>],
        (vectors, keys): Slots<'_>,
        skipped: &mut Vec<(String, String)>,
    ) -> anyhow::Result<Run> {
        let (entry, sha) = (self.entry, self.sha);
        let mut emb = super::open_model(
            self.cfg,
            &entry.name,
            self.on_progress.is_some(),
            super::Workload::Many,
        )?;
        if emb.sha256 != sha {
            anyhow::bail!("model file {} changed while indexing; run again", emb.path.display());
        }
        let device = emb.device.to_string();
        let progress = Progress::new(&entry.name, jobs.len(), self.on_progress.is_none());
        let t0 = Instant::now();
        let (mut embedded, mut failed, mut truncated) = (0usize, 0usize, 0usize);
        let plan = embed::plan(emb.device, self.cfg.threads);
        let opts = self.cfg.decode;
        embed::run(&mut emb, jobs, self.batch, &opts, plan, |outcomes| {
            let mut items = Vec::new();
            for (key, r) in outcomes {
                match (r, content[key]) {
                    (Ok(e), Some(h)) => {
                        if e.truncated {
                            truncated += 1;
                            warn!(
                                "{}: truncated, embedded anyway (--accept-truncated)",
                                self.ds.samples[key].name
                            );
                        }
                        let stored = if e.reduced { crate::hash::reduced_key(&h) } else { h };
                        items.push((stored, e.vector.clone()));
                        vectors[key] = Some(e.vector);
                        keys[key] = Some(stored);
                    }
                    (Ok(_), None) => {}
                    (Err(e), _) => {
                        failed += 1;
                        skipped.push((self.ds.samples[key].name.clone(), e.to_string()));
                    }
                }
            }
            if let Err(e) = self.store.put_vectors(sha, &items) {
                warn!("{:#}", anyhow::Error::from(e));
                return false;
            }
            // Counted only once committed: "stopped after N" must never claim more.
            embedded += items.len();
            match self.on_progress {
                Some(f) => f(embedded + failed, jobs.len()),
                None => progress.tick(embedded, failed),
            }
            true
        })?;
        progress.finish();
        let seconds = t0.elapsed().as_secs_f64();
        self.store.record_run(sha, &entry.name, &device, embedded as u64, seconds)?;
        if embedded + failed < jobs.len() {
            anyhow::bail!(
                "indexing {} stopped after {embedded} of {} images (see above); what was committed is kept",
                entry.name,
                jobs.len()
            );
        }
        Ok(Run {
            embedded,
            truncated,
            seconds,
            start_seconds: emb.start_seconds,
            device: Some(device),
        })
    }
}

/// sha256 of every image file's bytes (the cache key), or why it cannot be read. Hashes of
/// files whose size, mtime and inode are unchanged come from the store's stat cache.
fn content_hashes(store: &Store, ds: &Dataset) -> anyhow::Result<Vec<Result<[u8; 32], String>>> {
    let stamps: Vec<Result<(String, FileStamp), String>> = ds
        .samples
        .par_iter()
        .map(|s| {
            let meta = crate::decode::check_file(&s.path).map_err(|e| e.to_string())?;
            let abs = std::path::absolute(&s.path).unwrap_or_else(|_| s.path.clone());
            Ok((abs.to_string_lossy().into_owned(), FileStamp::of(&meta)))
        })
        .collect();
    let keys: Vec<(String, FileStamp)> =
        stamps.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut remembered = store.file_hashes(&keys)?.into_iter();
    let hits: Vec<Option<[u8; 32]>> =
        stamps.iter().map(|r| if r.is_ok() { remembered.next().flatten() } else { None }).collect();
    let out: Vec<Result<[u8; 32], String>> = (0..ds.samples.len())
        .into_par_iter()
        .map(|i| match (&stamps[i], hits[i]) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), Some(h)) => Ok(h),
            (Ok(_), None) => crate::decode::read_file(&ds.samples[i].path)
                .map(|b| crate::hash::bytes_sha256(&b))
                .map_err(|e| e.to_string()),
        })
        .collect();
    let fresh: Vec<(String, FileStamp, [u8; 32])> = (0..out.len())
        .filter(|&i| hits[i].is_none())
        .filter_map(|i| {
            let (path, stamp) = stamps[i].as_ref().ok()?;
            Some((path.clone(), *stamp, *out[i].as_ref().ok()?))
        })
        .collect();
    store.put_file_hashes(&fresh)?;
    Ok(out)
}

/// The cached vectors of `wanted` (`Resident`), or only whether each is cached (`Unloaded`:
/// a present vector is an empty `Vec`).
fn lookup(
    store: &Store,
    sha: &str,
    entry: &ModelEntry,
    wanted: &[Option<[u8; 32]>],
    want: Vectors,
) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
    Ok(match want {
        Vectors::Resident => store.cached(sha, entry.dim, &entry.name, wanted)?,
        Vectors::Unloaded => store
            .has(sha, entry.dim, &entry.name, wanted)?
            .into_iter()
            .map(|h| h.then(Vec::new))
            .collect(),
    })
}

/// The selection's arroy index: the stored one when current, else built from `vectors`
/// (reading from the store those left unloaded).
fn selection_index(
    store: &Store,
    ds: &Dataset,
    entry: &ModelEntry,
    sha: &str,
    keys: &[Option<[u8; 32]>],
    vectors: &mut [Option<Vec<f32>>],
    changed: bool,
) -> anyhow::Result<IndexMeta> {
    let n_items = vectors.iter().filter(|v| v.is_some()).count();
    if let Some(m) = current_index(store, ds, entry, sha, n_items, changed)? {
        return Ok(m);
    }
    load_unloaded(store, sha, entry, keys, vectors)?;
    build_index(store, ds, entry, sha, vectors)
}

/// The selection's arroy index when it is current: same model file, same number of items,
/// nothing embedded since (None: it must be built).
fn current_index(
    store: &Store,
    ds: &Dataset,
    entry: &ModelEntry,
    sha: &str,
    n_items: usize,
    changed: bool,
) -> anyhow::Result<Option<IndexMeta>> {
    if let Some(m) = store.index_meta(&entry.name, &ds.fingerprint())? {
        if m.onnx_sha256 == sha && m.n_items == n_items && !changed {
            store.touch_index(&m)?;
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// Reads from the store the vectors that [`Vectors::Unloaded`] left out (present but empty).
fn load_unloaded(
    store: &Store,
    sha: &str,
    entry: &ModelEntry,
    keys: &[Option<[u8; 32]>],
    vectors: &mut [Option<Vec<f32>>],
) -> anyhow::Result<()> {
    let missing: Vec<Option<[u8; 32]>> = vectors
        .iter()
        .zip(keys)
        .map(|(v, k)| k.filter(|_| v.as_ref().is_some_and(Vec::is_empty)))
        .collect();
    if missing.iter().any(Option::is_some) {
        let found = store.cached(sha, entry.dim, &entry.name, &missing)?;
        for (v, f) in vectors.iter_mut().zip(found) {
            if let Some(f) = f {
                *v = Some(f);
            }
        }
    }
    Ok(())
}

/// Builds the selection's arroy index from `vectors` (every present one loaded).
fn build_index(
    store: &Store,
    ds: &Dataset,
    entry: &ModelEntry,
    sha: &str,
    vectors: &[Option<Vec<f32>>],
) -> anyhow::Result<IndexMeta> {
    let fingerprint = ds.fingerprint();
    let items: Vec<(u32, Vec<f32>)> =
        vectors.iter().enumerate().filter_map(|(i, v)| v.clone().map(|v| (i as u32, v))).collect();
    let meta = IndexMeta {
        model: entry.name.clone(),
        onnx_sha256: sha.to_owned(),
        dim: entry.dim,
        entry: serde_json::to_value(entry)?,
        embtui_version: env!("CARGO_PKG_VERSION").into(),
        dataset_fingerprint: fingerprint,
        n_trees: DEFAULT_N_TREES,
        seed: SEED,
        dataset_root: std::path::absolute(&ds.root)
            .unwrap_or_else(|_| ds.root.clone())
            .display()
            .to_string(),
        selection: ds.selection.clone(),
        ..IndexMeta::default()
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
    let rate = x.images_per_second().map_or(String::new(), |r| {
        format!(
            " at {r:.1} images/s on {} (sessions started in {:.2} s)",
            x.device.as_deref().unwrap_or("?"),
            x.session_start_seconds
        )
    });
    let index = x.index.as_ref().map_or("no index (shard)".into(), |m| {
        format!("index of {} items ({} trees)", m.n_items, m.n_trees)
    });
    say!(
        "{}: {} embedded{rate}, {} cached, {} skipped; {index}",
        x.model,
        x.embedded,
        x.cached,
        x.skipped.len()
    );
    for (img, why) in x.skipped.iter().take(10) {
        warn!("  skipped {img}: {why}");
    }
}

/// A progress bar on a terminal, plain lines every 10% otherwise, both with an ETA.
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

    fn tick(&self, done: usize, failed: usize) {
        let seen = (done + failed).min(self.total);
        if let Some(b) = &self.bar {
            b.set_position(seen as u64);
            return;
        }
        let decile = seen * 10 / self.total.max(1);
        if decile > self.last_decile.get() {
            self.last_decile.set(decile);
            let secs = self.start.elapsed().as_secs_f64();
            let rate = seen as f64 / secs.max(1e-9);
            let eta = (self.total - seen) as f64 / rate.max(1e-9);
            say!("{}: {seen}/{} images, {rate:.1} images/s, ETA {eta:.0} s", self.name, self.total);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
