//! What a store holds (`embtui store`), removing what is stale (`store gc`) and merging the
//! stores of shards (`store merge`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use heed::types::Bytes;
use serde::{Deserialize, Serialize};

use super::{IndexMeta, Provenance, Result, Store, StoreError};

/// The vectors of one model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// The model's name (from its run record or an index), or `?` when nothing names it.
    pub model: String,
    /// The first 16 bytes of the ONNX file's sha256, in hex (the vectors' key prefix).
    pub sha256_prefix: String,
    pub vectors: u64,
    pub bytes: u64,
    pub provenance: Option<Provenance>,
}

/// One arroy index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexSummary {
    pub model: String,
    pub dataset_root: String,
    pub selection: String,
    pub items: usize,
    pub bytes: u64,
    pub last_used: u64,
    /// Why `store gc` would remove it, if it would.
    pub stale: Option<String>,
}

/// `embtui store`: everything the store holds and what it costs.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSummary {
    pub path: String,
    pub file_bytes: u64,
    pub models: Vec<ModelSummary>,
    pub indexes: Vec<IndexSummary>,
    pub stat_cache_entries: u64,
}

/// What `store gc` removed (or would remove with `--dry-run`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub indexes: Vec<IndexSummary>,
    /// (model, sha256 prefix, vectors) of superseded model files.
    pub vectors: Vec<(String, String, u64)>,
    pub stat_cache_entries: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub compacted: bool,
}

/// The model files the manifest knows now: name → full sha256 (None when not installed).
pub type Current = BTreeMap<String, Option<String>>;

impl IndexMeta {
    /// Why this index is stale, judged against the current model files.
    fn stale_reason(&self, current: &Current) -> Option<String> {
        if self.dataset_root.is_empty() {
            return Some("built by an older embtui (no dataset folder recorded)".into());
        }
        if !Path::new(&self.dataset_root).is_dir() {
            return Some(format!("dataset folder {} is gone", self.dataset_root));
        }
        match current.get(&self.model) {
            Some(Some(sha)) if *sha != self.onnx_sha256 => {
                Some("the model file changed since".into())
            }
            _ => None,
        }
    }
}

impl Store {
    /// Bytes of each arroy index (keys and values), by index id.
    fn index_bytes(&self) -> Result<BTreeMap<u16, u64>> {
        let rtxn = self.rtxn()?;
        let db = self.arroy.remap_types::<Bytes, Bytes>();
        let mut out = BTreeMap::new();
        for item in db.iter(&rtxn).map_err(self.lmdb("listing arroy nodes"))? {
            let (k, v) = item.map_err(self.lmdb("listing arroy nodes"))?;
            if let Some(id) = k.get(0..2) {
                *out.entry(u16::from_be_bytes([id[0], id[1]])).or_default() +=
                    (k.len() + v.len()) as u64;
            }
        }
        Ok(out)
    }

    /// (vectors, bytes) per model sha prefix (hex).
    fn vector_counts(&self) -> Result<BTreeMap<String, (u64, u64)>> {
        let rtxn = self.rtxn()?;
        let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for item in self.vectors.iter(&rtxn).map_err(self.lmdb("listing vectors"))? {
            let (k, v) = item.map_err(self.lmdb("listing vectors"))?;
            let e = out.entry(hex::encode(&k[..k.len().min(16)])).or_default();
            e.0 += 1;
            e.1 += (k.len() + v.len()) as u64;
        }
        Ok(out)
    }

    fn runs(&self) -> Result<BTreeMap<String, Provenance>> {
        let rtxn = self.rtxn()?;
        let mut out = BTreeMap::new();
        for item in self.meta.prefix_iter(&rtxn, "run/").map_err(self.lmdb("listing runs"))? {
            let (k, v) = item.map_err(self.lmdb("listing runs"))?;
            let p: Provenance = serde_json::from_str(v).map_err(|e| self.corrupt(e))?;
            out.insert(k["run/".len()..].to_owned(), p);
        }
        Ok(out)
    }

    /// Everything the store holds, each index judged against `current`.
    pub fn summary(&self, current: &Current) -> Result<StoreSummary> {
        let runs = self.runs()?;
        let metas = self.indexes()?;
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (sha, p) in &runs {
            names.insert(sha[..sha.len().min(32)].to_owned(), p.model.clone());
        }
        for m in &metas {
            names
                .entry(m.onnx_sha256[..m.onnx_sha256.len().min(32)].to_owned())
                .or_insert(m.model.clone());
        }
        // Vectors of a run that was stopped before it recorded itself: named by the model
        // file they came from, when it is installed.
        for (name, sha) in current {
            if let Some(sha) = sha {
                names.entry(sha[..sha.len().min(32)].to_owned()).or_insert(name.clone());
            }
        }
        let models = self
            .vector_counts()?
            .into_iter()
            .map(|(prefix, (vectors, bytes))| ModelSummary {
                model: names.get(&prefix).cloned().unwrap_or_else(|| "?".into()),
                provenance: runs
                    .iter()
                    .find(|(sha, _)| sha.starts_with(&prefix))
                    .map(|(_, p)| p.clone()),
                sha256_prefix: prefix,
                vectors,
                bytes,
            })
            .collect();
        let sizes = self.index_bytes()?;
        let indexes = metas
            .iter()
            .map(|m| IndexSummary {
                model: m.model.clone(),
                dataset_root: m.dataset_root.clone(),
                selection: m.selection.clone(),
                items: m.n_items,
                bytes: sizes.get(&m.arroy_index).copied().unwrap_or(0),
                last_used: m.last_used,
                stale: m.stale_reason(current),
            })
            .collect();
        let rtxn = self.rtxn()?;
        Ok(StoreSummary {
            path: self.path.display().to_string(),
            file_bytes: std::fs::metadata(self.path.join("data.mdb")).map_or(0, |m| m.len()),
            models,
            indexes,
            stat_cache_entries: self.files.len(&rtxn).map_err(self.lmdb("counting"))?,
        })
    }

    /// Removes stale indexes, the vectors of superseded model files and stat-cache entries of
    /// files that are gone; then, with `compact`, rewrites the file without its free pages.
    pub fn gc(&self, current: &Current, dry_run: bool, compact: bool) -> Result<GcReport> {
        let summary = self.summary(current)?;
        let mut report = GcReport { bytes_before: summary.file_bytes, ..GcReport::default() };
        let stale_metas: Vec<IndexMeta> =
            self.indexes()?.into_iter().filter(|m| m.stale_reason(current).is_some()).collect();
        report.indexes = summary.indexes.iter().filter(|i| i.stale.is_some()).cloned().collect();
        let superseded: Vec<&ModelSummary> = summary
            .models
            .iter()
            .filter(|m| match current.get(&m.model) {
                Some(Some(sha)) => !sha.starts_with(&m.sha256_prefix),
                _ => false,
            })
            .collect();
        report.vectors = superseded
            .iter()
            .map(|m| (m.model.clone(), m.sha256_prefix.clone(), m.vectors))
            .collect();
        let gone = self.missing_files()?;
        report.stat_cache_entries = gone.len() as u64;
        if dry_run {
            report.bytes_after = report.bytes_before;
            return Ok(report);
        }
        self.write(|wtxn| {
            for m in &stale_metas {
                self.drop_index(wtxn, m)?;
            }
            for path in &gone {
                self.files.delete(wtxn, path).map_err(self.lmdb("removing stat-cache entries"))?;
            }
            Ok(())
        })?;
        for m in &superseded {
            self.delete_vectors_with_prefix(&m.sha256_prefix)?;
        }
        if compact {
            report.compacted = self.compact()?;
        }
        report.bytes_after = std::fs::metadata(self.path.join("data.mdb")).map_or(0, |m| m.len());
        Ok(report)
    }

    fn missing_files(&self) -> Result<Vec<String>> {
        let rtxn = self.rtxn()?;
        let mut gone = Vec::new();
        for item in self.files.iter(&rtxn).map_err(self.lmdb("listing the stat cache"))? {
            let (path, _) = item.map_err(self.lmdb("listing the stat cache"))?;
            if !Path::new(path).exists() {
                gone.push(path.to_owned());
            }
        }
        Ok(gone)
    }

    fn delete_vectors_with_prefix(&self, prefix_hex: &str) -> Result<()> {
        let prefix = hex::decode(prefix_hex).map_err(|e| self.corrupt(e))?;
        loop {
            // In batches, so that one transaction never grows without bound.
            let done = self.write(|wtxn| {
                let keys: Vec<Vec<u8>> = self
                    .vectors
                    .prefix_iter(wtxn, &prefix)
                    .map_err(self.lmdb("listing vectors"))?
                    .take(10_000)
                    .map(|r| r.map(|(k, _)| k.to_vec()))
                    .collect::<heed::Result<_>>()
                    .map_err(self.lmdb("listing vectors"))?;
                for k in &keys {
                    self.vectors.delete(wtxn, k).map_err(self.lmdb("removing vectors"))?;
                }
                Ok(keys.len() < 10_000)
            })?;
            if done {
                return Ok(());
            }
        }
    }

    /// Rewrites data.mdb without free pages; refused (false) while another process uses the
    /// store, since it would keep writing to the old file.
    fn compact(&self) -> Result<bool> {
        if !self.lock.try_exclusive() {
            crate::warn!("another embtui process uses the store; not compacting (run `embtui store gc --compact` again when it is done)");
            return Ok(false);
        }
        let tmp = self.path.join("data.mdb.compact");
        let io = |what| move |e| StoreError::Io(self.path.clone(), what, e);
        let _ = std::fs::remove_file(&tmp);
        self.env
            .copy_to_path(&tmp, heed::CompactionOption::Enabled)
            .map_err(self.lmdb("writing the compacted copy"))?;
        // The copy is complete; this process's map still points at the old file, so the store
        // must be reopened (the command ends here).
        std::fs::rename(&tmp, self.path.join("data.mdb")).map_err(io("replacing data.mdb"))?;
        Ok(true)
    }

    /// Copies the vectors and run records of another store (a shard's) into this one; vectors
    /// already here are kept. Returns (vectors copied, vectors already present).
    pub fn merge_from(&self, other: &Store) -> Result<(u64, u64)> {
        let (mut copied, mut present) = (0, 0);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rtxn = other.rtxn()?;
            let start = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let batch: Vec<(Vec<u8>, Vec<u8>)> = other
                .vectors
                .range(&rtxn, &(start, Bound::Unbounded))
                .map_err(other.lmdb("listing vectors"))?
                .take(10_000)
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<heed::Result<_>>()
                .map_err(other.lmdb("listing vectors"))?;
            drop(rtxn);
            let Some(last) = batch.last().map(|(k, _)| k.clone()) else { break };
            let (c, p) = self.write(|wtxn| {
                let (mut c, mut p) = (0u64, 0u64);
                for (k, v) in &batch {
                    if self.vectors.get(wtxn, k).map_err(self.lmdb("reading vectors"))?.is_some() {
                        p += 1;
                    } else {
                        self.vectors.put(wtxn, k, v).map_err(self.lmdb("writing vectors"))?;
                        c += 1;
                    }
                }
                Ok((c, p))
            })?;
            copied += c;
            present += p;
            after = Some(last);
        }
        for (sha, p) in other.runs()? {
            for d in &p.devices {
                self.record_run(&sha, &p.model, d, 0, 0.0)?;
            }
            self.record_run(
                &sha,
                &p.model,
                p.devices.first().map_or("cpu", String::as_str),
                p.images,
                p.seconds,
            )?;
        }
        Ok((copied, present))
    }
}

/// What a shard task records in its store (`index --shard`), one per model and dataset
/// selection: `store merge` refuses to combine shards of different datasets or models, split
/// differently, or not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub model: String,
    pub model_sha256: String,
    pub dataset_root: String,
    pub dataset_fingerprint: String,
    pub index: u64,
    pub count: u64,
    /// Images of the selection in this shard.
    pub images: usize,
    /// False from the start of the task until every image of the shard has a vector (or was
    /// skipped as unreadable).
    pub finished: bool,
}

/// Held (shared) by every run while it writes vectors into a store; `store merge` takes it
/// exclusively and refuses when it cannot: a merge neither reads a shard still being written
/// nor writes into a store that an index run is filling. Released on drop.
pub struct Writing(std::fs::File);

impl Drop for Writing {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn writing_file(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join("writing.lock"))
}

impl Store {
    /// Marks this process as writing (waits while a merge holds the store).
    pub fn writing(&self) -> Option<Writing> {
        let f = writing_file(&self.path).ok()?;
        if f.try_lock_shared().is_err() {
            crate::say!(
                "{} is being merged into; waiting for `store merge` to finish",
                self.path.display()
            );
            f.lock_shared().ok()?;
        }
        Some(Writing(f))
    }

    /// The exclusive hold of a merge, or None while another run writes into the store.
    pub fn try_merging(&self) -> Option<Writing> {
        let f = writing_file(&self.path).ok()?;
        f.try_lock().ok()?;
        Some(Writing(f))
    }

    pub fn record_shard(&self, r: &ShardRecord) -> Result<()> {
        let key = format!("shard/{}/{}", r.model_sha256, r.dataset_fingerprint);
        let json = serde_json::to_string(r).map_err(|e| self.corrupt(e))?;
        self.write(|wtxn| {
            self.meta.put(wtxn, &key, &json).map_err(self.lmdb("writing a shard record"))
        })
    }

    /// The shard records of this store (none unless it was written by `index --shard`).
    pub fn shards(&self) -> Result<Vec<ShardRecord>> {
        let rtxn = self.rtxn()?;
        let mut out = Vec::new();
        for item in self.meta.prefix_iter(&rtxn, "shard/").map_err(self.lmdb("listing shards"))? {
            let (_, v) = item.map_err(self.lmdb("listing shards"))?;
            out.push(serde_json::from_str(v).map_err(|e| self.corrupt(e))?);
        }
        Ok(out)
    }
}

/// Why the stores of `shards` (each store's name and records) must not be merged, or None.
/// Stores without records (plain caches) are not judged.
pub fn merge_conflict(shards: &[(String, Vec<ShardRecord>)]) -> Option<String> {
    let judged: Vec<&(String, Vec<ShardRecord>)> =
        shards.iter().filter(|(_, r)| !r.is_empty()).collect();
    for (store, records) in &judged {
        if let Some(r) = records.iter().find(|r| !r.finished) {
            return Some(format!(
                "{store}: shard {}/{} of {} did not finish ({} images in it); run that task again (it resumes from what it embedded), then merge",
                r.index, r.count, r.model, r.images
            ));
        }
    }
    let first = judged.first()?;
    let r0 = &first.1[0];
    let models = |rs: &[ShardRecord]| -> Vec<String> {
        let mut m: Vec<String> =
            rs.iter().map(|r| format!("{} ({:.12})", r.model, r.model_sha256)).collect();
        m.sort();
        m.dedup();
        m
    };
    for (store, records) in &judged {
        if let Some(r) = records.iter().find(|r| r.dataset_fingerprint != r0.dataset_fingerprint) {
            return Some(format!(
                "{} holds shards of {} (selection {}) and {store} of {} (selection {}); merge the shards of one dataset selection",
                first.0, r0.dataset_root, r0.dataset_fingerprint, r.dataset_root, r.dataset_fingerprint
            ));
        }
        if let Some(r) = records.iter().find(|r| r.count != r0.count) {
            return Some(format!(
                "{} was split into {} shards and {store} into {}; merge the shards of one split",
                first.0, r0.count, r.count
            ));
        }
        let (a, b) = (models(&first.1), models(records));
        if a != b {
            return Some(format!(
                "{} holds {} and {store} holds {}; every shard store must hold the same models (run every task with the same --model and model files)",
                first.0,
                a.join(", "),
                b.join(", ")
            ));
        }
    }
    None
}
