//! The vector store: one LMDB environment (heed) holding
//! - `vectors`: embeddings keyed by (model sha256, image content sha256), shared by every
//!   dataset and every selection of a dataset;
//! - `meta`: one record per arroy index (model × dataset selection), per model file (the run
//!   that computed its vectors: device, speed) and the layout version;
//! - `files`: a stat cache (path, size, mtime, inode → content sha256) so that cached runs do
//!   not read every image again;
//! - `arroy`: the cosine indexes, at most [`MAX_SELECTIONS`] per (model, dataset folder).
//!
//! The only user of heed and arroy. Other processes may read and write the same store: map
//! growth by either side is adopted (`MDB_MAP_RESIZED`), and a writer that waits for another
//! process's write lock says so.
#![allow(unsafe_code)]

pub mod maintenance;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arroy::distances::Cosine;
use arroy::{Reader, Writer};
use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, MdbError, RoTxn, RwTxn};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use maintenance::{GcReport, ShardRecord, StoreSummary};

/// Bumped when the on-disk layout changes; a store written by a newer embtui is refused.
pub const STORE_VERSION: u32 = 1;
const INITIAL_MAP: usize = 1 << 30;
/// Trees per arroy index; with the default `search_k` this reaches recall@10 ≥ 0.98 on 1k photos.
pub const DEFAULT_N_TREES: usize = 32;
pub const SEED: u64 = 42;
/// Indexes kept per (model, dataset folder): the selections used most recently.
pub const MAX_SELECTIONS: usize = 4;
/// How long a writer waits for another process's write lock before saying so.
const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(2);
/// How many times a writer has said it waits (for tests and the curious).
static LOCK_NOTICES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open store {path}{hint}")]
    Open {
        path: PathBuf,
        hint: String,
        #[source]
        source: heed::Error,
    },
    #[error("store {path} was written by a newer embtui (layout {found}, this one reads {STORE_VERSION}); upgrade embtui or use another --store")]
    TooNew { path: PathBuf, found: u32 },
    #[error("store {path}: model `{model}` stored {stored}-d vectors but produces {produced}-d; delete the store or pass another --store")]
    DimensionMismatch { path: PathBuf, model: String, stored: usize, produced: usize },
    #[error("store {path}: a vector of `{model}` went missing while it was read (the store was changed by another process?); run the command again")]
    Missing { path: PathBuf, model: String },
    #[error("store {0}: {1} failed")]
    Lmdb(PathBuf, &'static str, #[source] heed::Error),
    #[error("store {0}: arroy index {1} failed")]
    Arroy(PathBuf, &'static str, #[source] arroy::Error),
    #[error("store {0}: corrupt metadata: {1}")]
    Corrupt(PathBuf, String),
    #[error("store {0}: {1}")]
    Io(PathBuf, &'static str, #[source] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What is recorded about one arroy index (a model × a selection of a dataset).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct IndexMeta {
    pub model: String,
    pub onnx_sha256: String,
    pub dim: usize,
    pub entry: serde_json::Value,
    pub embtui_version: String,
    pub dataset_fingerprint: String,
    pub arroy_index: u16,
    pub n_items: usize,
    pub n_trees: usize,
    pub seed: u64,
    pub build_seconds: f64,
    /// The dataset folder the selection was taken from.
    #[serde(default)]
    pub dataset_root: String,
    /// How the selection was made (`all`, `--limit 100`, `--split test`, …).
    #[serde(default)]
    pub selection: String,
    /// Unix milliseconds of the last build or use (the most recent selections are kept).
    #[serde(default)]
    pub last_used: u64,
}

/// The run(s) that computed one model file's vectors: what `eval` reports when it reuses them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Provenance {
    pub model: String,
    /// Devices that computed vectors (`cpu`, `cuda:0`, …), in order of first use.
    pub devices: Vec<String>,
    pub images: u64,
    pub seconds: f64,
    pub embtui_version: String,
    /// Unix milliseconds of the last run that embedded something.
    pub last_run: u64,
}

impl Provenance {
    /// Images per second over every run that embedded something.
    pub fn images_per_second(&self) -> Option<f64> {
        (self.images > 0 && self.seconds > 0.0).then(|| self.images as f64 / self.seconds)
    }
}

/// A shared lock every process holds on `embtui.lock` while the store is open; compaction
/// needs it exclusively (LMDB itself needs no such lock: this one only guards the file swap).
struct StoreLock(Option<std::fs::File>);

impl StoreLock {
    fn shared(dir: &Path) -> Self {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("embtui.lock"))
            .ok();
        // A read-only store cannot be compacted anyway; it works without the lock.
        Self(f.filter(|f| f.lock_shared().is_ok()))
    }

    /// Upgrades to an exclusive lock if no other process holds the shared one.
    fn try_exclusive(&self) -> bool {
        let Some(f) = &self.0 else { return false };
        let _ = f.unlock();
        if f.try_lock().is_ok() {
            return true;
        }
        let _ = f.lock_shared();
        false
    }
}

/// An open store.
pub struct Store {
    path: PathBuf,
    lock: StoreLock,
    env: Env,
    vectors: Database<'static, Bytes, Bytes>,
    meta: Database<'static, Str, Str>,
    files: Database<'static, Str, Bytes>,
    arroy: arroy::Database<'static, Cosine>,
}

fn cache_key(model_sha: &str, content: &[u8; 32]) -> Vec<u8> {
    let mut k = hex::decode(model_sha).unwrap_or_else(|_| model_sha.as_bytes().to_vec());
    k.truncate(16);
    k.extend_from_slice(content);
    k
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Hands the heap memory freed so far back to the system. Vectors read one image at a time are
/// small allocations; once freed (`Indexed::unload`) glibc keeps them in the heap, still
/// counted in the resident set, unless asked to trim.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn return_freed_heap() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no memory
    // that is in use and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn return_freed_heap() {}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    let mut v = Vec::with_capacity(b.len() / 4);
    push_floats(&mut v, b);
    v
}

/// Appends the little-endian floats of `b` to `out`.
fn push_floats(out: &mut Vec<f32>, b: &[u8]) {
    out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
}

/// How many bytes of vectors `read_rows` copies before letting go of the store pages it mapped
/// to read them: the mapped part of the store stays this small whatever the store's size.
const RELEASE_EVERY_BYTES: usize = 64 << 20;

/// Unix time in milliseconds.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A file's identity for the stat cache: size, mtime and inode must all match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
        }
    }

    fn encode(self, sha: &[u8; 32]) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&self.size.to_le_bytes());
        v.extend_from_slice(&self.mtime_ns.to_le_bytes());
        v.extend_from_slice(&self.inode.to_le_bytes());
        v.extend_from_slice(sha);
        v
    }

    fn decode(b: &[u8]) -> Option<(Self, [u8; 32])> {
        let size = u64::from_le_bytes(b.get(0..8)?.try_into().ok()?);
        let mtime_ns = i128::from_le_bytes(b.get(8..24)?.try_into().ok()?);
        let inode = u64::from_le_bytes(b.get(24..32)?.try_into().ok()?);
        let sha: [u8; 32] = b.get(32..64)?.try_into().ok()?;
        Some((Self { size, mtime_ns, inode }, sha))
    }
}

/// The heed error of a store error, if it is one.
fn heed_error(e: &StoreError) -> Option<&heed::Error> {
    match e {
        StoreError::Lmdb(_, _, e) | StoreError::Arroy(_, _, arroy::Error::Heed(e)) => Some(e),
        _ => None,
    }
}

fn is_mdb(e: &StoreError, which: MdbError) -> bool {
    matches!(heed_error(e), Some(heed::Error::Mdb(m)) if std::mem::discriminant(m) == std::mem::discriminant(&which))
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Open {
            path: path.into(),
            hint: String::new(),
            source: heed::Error::Io(e),
        })?;
        let open_err = |source: heed::Error| {
            let hint = match &source {
                heed::Error::Mdb(MdbError::Invalid) => {
                    ": not an LMDB store (corrupt?); move it away or pass another --store"
                        .to_owned()
                }
                heed::Error::Mdb(MdbError::Corrupted | MdbError::Panic) => {
                    ": the store is corrupt; move it away and re-index".to_owned()
                }
                heed::Error::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    ": permission denied; pass a writable --store".to_owned()
                }
                _ => String::new(),
            };
            StoreError::Open { path: path.into(), hint, source }
        };
        let size = std::fs::metadata(path.join("data.mdb")).map_or(0, |m| m.len() as usize);
        let map_size = (size * 2).max(INITIAL_MAP).next_multiple_of(1 << 20);
        // SAFETY: the environment is opened once per process per path (embtui never opens the
        // same store twice concurrently within a process) and its file is not truncated by us
        // while mapped; LMDB itself coordinates other processes through its lock file.
        let env = unsafe {
            EnvOpenOptions::new().map_size(map_size).max_dbs(8).max_readers(126).open(path)
        }
        .map_err(open_err)?;
        // Readers never need the (exclusive) write lock once the databases exist, so search and
        // the TUI keep working while an index runs in another process.
        let rtxn = env.read_txn().map_err(open_err)?;
        let existing = env
            .open_databases_and_commit(rtxn, |dbo, rtxn| -> heed::Result<_> {
                let v = dbo.open_database::<Bytes, Bytes>(rtxn, Some("vectors"))?;
                let m = dbo.open_database::<Str, Str>(rtxn, Some("meta"))?;
                let f = dbo.open_database::<Str, Bytes>(rtxn, Some("files"))?;
                let a = dbo.open_database(rtxn, Some("arroy"))?;
                Ok(CommitOrAbort::<_, ()>::Commit(match (v, m, f, a) {
                    (Some(v), Some(m), Some(f), Some(a)) => Some((v, m, f, a)),
                    _ => None,
                }))
            })
            .map_err(open_err)?
            .unwrap_commit();
        let (vectors, meta, files, arroy) = if let Some(dbs) = existing {
            dbs
        } else {
            let wtxn = env.write_txn().map_err(open_err)?;
            env.create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
                let v = dbo.create_database::<Bytes, Bytes>(wtxn, Some("vectors"))?;
                let m = dbo.create_database::<Str, Str>(wtxn, Some("meta"))?;
                let f = dbo.create_database::<Str, Bytes>(wtxn, Some("files"))?;
                let a = dbo.create_database(wtxn, Some("arroy"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((v, m, f, a)))
            })
            .map_err(open_err)?
            .unwrap_commit()
        };
        let lock = StoreLock::shared(path);
        let store = Self { path: path.into(), lock, env, vectors, meta, files, arroy };
        store.check_version()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lmdb(&self, what: &'static str) -> impl Fn(heed::Error) -> StoreError + '_ {
        move |e| StoreError::Lmdb(self.path.clone(), what, e)
    }

    fn arroy_err(&self, what: &'static str) -> impl Fn(arroy::Error) -> StoreError + '_ {
        move |e| StoreError::Arroy(self.path.clone(), what, e)
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(self.path.clone(), what.to_string())
    }

    /// Adopts a map that another process grew (`MDB_MAP_RESIZED`).
    fn adopt_map_size(&self) -> Result<()> {
        // SAFETY: called only between transactions of this thread; embtui keeps no transaction
        // open across calls into the store, and mdb_env_set_mapsize(0) only re-reads the size
        // that the other process recorded.
        unsafe { self.env.resize(0) }.map_err(self.lmdb("adopting the map size"))
    }

    /// Lets go of the store's pages mapped into this process after a bulk read (every vector
    /// of a model, an ANN sweep): they stay in the page cache, shared and reclaimable, but no
    /// longer count in this process's resident set, so a 1.8 GB store read end to end does
    /// not add 1.8 GB to an evaluation's peak RSS. The next read maps them back from the cache.
    #[cfg(target_os = "linux")]
    pub fn release_mapped_pages(&self) {
        // LMDB reports its map address only for MDB_FIXEDMAP, so the ranges are read from
        // the kernel's own list of this process's mappings of data.mdb.
        let Ok(file) = self.path.join("data.mdb").canonicalize() else { return };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
        for (start, end) in mapped_ranges(&maps, &file.to_string_lossy()) {
            // SAFETY: LMDB maps data.mdb read-only and shared (embtui never sets WRITEMAP),
            // so MADV_DONTNEED only drops this process's page-table entries: a reader that
            // touches the range again faults the same bytes back in from the page cache, and
            // no data can be lost. The range is one the kernel lists as data.mdb's mapping,
            // not memory Rust owns.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn release_mapped_pages(&self) {}

    /// A read transaction, adopting a map another process grew.
    fn rtxn(&self) -> Result<RoTxn<'_, heed::WithTls>> {
        match self.env.read_txn() {
            Err(heed::Error::Mdb(MdbError::MapResized)) => {
                self.adopt_map_size()?;
                self.env.read_txn().map_err(self.lmdb("starting a read"))
            }
            other => other.map_err(self.lmdb("starting a read")),
        }
    }

    /// The write lock, saying so when another process holds it for long.
    fn wtxn(&self) -> Result<RwTxn<'_>> {
        let (done, waiting) = crossbeam_channel::bounded::<()>(0);
        let path = self.path.clone();
        std::thread::spawn(move || {
            if let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                waiting.recv_timeout(LOCK_NOTICE_AFTER)
            {
                LOCK_NOTICES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::say!(
                    "waiting for another embtui process to finish writing to the store {}",
                    path.display()
                );
            }
        });
        let txn = self.env.write_txn();
        drop(done);
        match txn {
            Err(heed::Error::Mdb(MdbError::MapResized)) => {
                self.adopt_map_size()?;
                self.env.write_txn().map_err(self.lmdb("starting a write"))
            }
            other => other.map_err(self.lmdb("starting a write")),
        }
    }

    fn check_version(&self) -> Result<()> {
        let rtxn = self.rtxn()?;
        let parse = |v: &str| -> Result<u32> {
            let found: u32 = v.parse().map_err(|_| self.corrupt(format!("store_version {v:?}")))?;
            if found > STORE_VERSION {
                return Err(StoreError::TooNew { path: self.path.clone(), found });
            }
            Ok(found)
        };
        if let Some(v) = self.meta.get(&rtxn, "store_version").map_err(self.lmdb("reading"))? {
            return parse(v).map(drop);
        }
        drop(rtxn);
        self.write(|wtxn| {
            match self.meta.get(wtxn, "store_version").map_err(self.lmdb("reading"))? {
                Some(v) => parse(v).map(drop),
                None => self
                    .meta
                    .put(wtxn, "store_version", &STORE_VERSION.to_string())
                    .map_err(self.lmdb("writing the version")),
            }
        })
    }

    /// Runs a write transaction, growing the map when it is full and adopting the size another
    /// process set, then retrying.
    fn write<T>(&self, f: impl Fn(&mut RwTxn) -> Result<T>) -> Result<T> {
        loop {
            let mut wtxn = self.wtxn()?;
            let res = f(&mut wtxn)
                .and_then(|t| wtxn.commit().map(|()| t).map_err(self.lmdb("committing")));
            match res {
                Err(e) if is_mdb(&e, MdbError::MapFull) => {
                    let new = (self.env.info().map_size * 2).next_multiple_of(1 << 20);
                    // SAFETY: the failed transaction was dropped above and no other transaction
                    // of this process is open, which is what mdb_env_set_mapsize requires.
                    unsafe { self.env.resize(new) }.map_err(self.lmdb("growing the map"))?;
                }
                Err(e) if is_mdb(&e, MdbError::MapResized) => self.adopt_map_size()?,
                other => return other,
            }
        }
    }

    /// The vectors of `keys` as one row-major matrix, read in a single transaction straight
    /// into the matrix (no per-vector allocation). A missing key is an error naming the model.
    /// Every `RELEASE_EVERY_BYTES` copied, the store pages mapped so far are let go
    /// (`release_mapped_pages`), so reading a model adds its matrix to the resident set and not
    /// also the part of the store it was read from: a store of 123,287 distinct 1,280-wide
    /// vectors is 630 MB a model.
    pub fn read_rows(
        &self,
        model_sha: &str,
        dim: usize,
        model: &str,
        keys: &[[u8; 32]],
    ) -> Result<Vec<f32>> {
        self.read_rows_releasing_every(model_sha, dim, model, keys, RELEASE_EVERY_BYTES)
    }

    fn read_rows_releasing_every(
        &self,
        model_sha: &str,
        dim: usize,
        model: &str,
        keys: &[[u8; 32]],
        block_bytes: usize,
    ) -> Result<Vec<f32>> {
        let rtxn = self.rtxn()?;
        let mut flat = Vec::with_capacity(keys.len() * dim);
        let rows_per_block = (block_bytes / (dim * 4).max(1)).max(1);
        for block in keys.chunks(rows_per_block) {
            for h in block {
                let b = self.vector_bytes(&rtxn, model_sha, dim, model, h)?.ok_or_else(|| {
                    StoreError::Missing { path: self.path.clone(), model: model.into() }
                })?;
                push_floats(&mut flat, b);
            }
            self.release_mapped_pages();
        }
        Ok(flat)
    }

    /// The stored bytes of one vector (None when not cached), checked to be `dim` floats.
    fn vector_bytes<'t>(
        &self,
        rtxn: &'t RoTxn<'_, heed::WithTls>,
        model_sha: &str,
        dim: usize,
        model: &str,
        content: &[u8; 32],
    ) -> Result<Option<&'t [u8]>> {
        let key = cache_key(model_sha, content);
        let Some(b) = self.vectors.get(rtxn, &key).map_err(self.lmdb("reading vectors"))? else {
            return Ok(None);
        };
        if b.len() != dim * 4 {
            return Err(StoreError::DimensionMismatch {
                path: self.path.clone(),
                model: model.into(),
                stored: b.len() / 4,
                produced: dim,
            });
        }
        Ok(Some(b))
    }

    /// Cached embeddings for the given image content hashes (None where not cached).
    pub fn cached(
        &self,
        model_sha: &str,
        dim: usize,
        model: &str,
        hashes: &[Option<[u8; 32]>],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let rtxn = self.rtxn()?;
        hashes
            .iter()
            .map(|h| match h {
                Some(h) => Ok(self.vector_bytes(&rtxn, model_sha, dim, model, h)?.map(from_bytes)),
                None => Ok(None),
            })
            .collect()
    }

    /// Whether each content hash has a cached embedding of `dim` floats, without copying the
    /// vectors: only the keys' leaf pages are read, and they are let go afterwards.
    pub fn has(
        &self,
        model_sha: &str,
        dim: usize,
        model: &str,
        hashes: &[Option<[u8; 32]>],
    ) -> Result<Vec<bool>> {
        let rtxn = self.rtxn()?;
        let found = hashes
            .iter()
            .map(|h| match h {
                Some(h) => Ok(self.vector_bytes(&rtxn, model_sha, dim, model, h)?.is_some()),
                None => Ok(false),
            })
            .collect();
        drop(rtxn);
        self.release_mapped_pages();
        found
    }

    /// Stores a batch of embeddings in one committed transaction.
    pub fn put_vectors(&self, model_sha: &str, items: &[([u8; 32], Vec<f32>)]) -> Result<()> {
        self.write(|wtxn| {
            for (h, v) in items {
                self.vectors
                    .put(wtxn, &cache_key(model_sha, h), &to_bytes(v))
                    .map_err(self.lmdb("writing vectors"))?;
            }
            Ok(())
        })
    }

    /// Content hashes remembered for files whose size, mtime and inode still match.
    pub fn file_hashes(&self, files: &[(String, FileStamp)]) -> Result<Vec<Option<[u8; 32]>>> {
        let rtxn = self.rtxn()?;
        files
            .iter()
            .map(|(path, stamp)| {
                let b = self.files.get(&rtxn, path).map_err(self.lmdb("reading the stat cache"))?;
                Ok(b.and_then(FileStamp::decode).filter(|(s, _)| s == stamp).map(|(_, sha)| sha))
            })
            .collect()
    }

    /// Remembers files' content hashes with their stamps.
    pub fn put_file_hashes(&self, files: &[(String, FileStamp, [u8; 32])]) -> Result<()> {
        for chunk in files.chunks(10_000) {
            self.write(|wtxn| {
                for (path, stamp, sha) in chunk {
                    self.files
                        .put(wtxn, path, &stamp.encode(sha))
                        .map_err(self.lmdb("writing the stat cache"))?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The run record of a model file.
    pub fn provenance(&self, model_sha: &str) -> Result<Option<Provenance>> {
        let rtxn = self.rtxn()?;
        let key = format!("run/{model_sha}");
        let Some(s) = self.meta.get(&rtxn, &key).map_err(self.lmdb("reading provenance"))? else {
            return Ok(None);
        };
        serde_json::from_str(s).map(Some).map_err(|e| self.corrupt(e))
    }

    /// Adds a run's images and seconds to a model file's record.
    pub fn record_run(
        &self,
        model_sha: &str,
        model: &str,
        device: &str,
        images: u64,
        seconds: f64,
    ) -> Result<()> {
        let key = format!("run/{model_sha}");
        self.write(|wtxn| {
            let mut p: Provenance = match self.meta.get(wtxn, &key).map_err(self.lmdb("reading"))? {
                Some(s) => serde_json::from_str(s).map_err(|e| self.corrupt(e))?,
                None => Provenance::default(),
            };
            model.clone_into(&mut p.model);
            if !p.devices.iter().any(|d| d == device) {
                p.devices.push(device.to_owned());
            }
            p.images += images;
            p.seconds += seconds;
            p.embtui_version = env!("CARGO_PKG_VERSION").into();
            p.last_run = now();
            let json = serde_json::to_string(&p).map_err(|e| self.corrupt(e))?;
            self.meta.put(wtxn, &key, &json).map_err(self.lmdb("writing provenance"))
        })
    }

    fn meta_key(model: &str, fingerprint: &str) -> String {
        format!("index/{model}/{fingerprint}")
    }

    /// Metadata of the (model, selection) index, if built.
    pub fn index_meta(&self, model: &str, fingerprint: &str) -> Result<Option<IndexMeta>> {
        let rtxn = self.rtxn()?;
        let key = Self::meta_key(model, fingerprint);
        let Some(s) = self.meta.get(&rtxn, &key).map_err(self.lmdb("reading index metadata"))?
        else {
            return Ok(None);
        };
        serde_json::from_str(s).map(Some).map_err(|e| self.corrupt(e))
    }

    /// Marks an index as used now (it is kept over older selections).
    pub fn touch_index(&self, meta: &IndexMeta) -> Result<()> {
        let key = Self::meta_key(&meta.model, &meta.dataset_fingerprint);
        let mut m = meta.clone();
        m.last_used = now();
        let json = serde_json::to_string(&m).map_err(|e| self.corrupt(e))?;
        self.write(|wtxn| self.meta.put(wtxn, &key, &json).map_err(self.lmdb("writing")))
    }

    /// (Re)builds the arroy index of (model, selection) from `vectors` (item id = position in
    /// the selection), dropping the least recently used selections of the same model and
    /// dataset folder beyond [`MAX_SELECTIONS`].
    pub fn build_index(&self, meta: &IndexMeta, vectors: &[(u32, Vec<f32>)]) -> Result<IndexMeta> {
        let t0 = std::time::Instant::now();
        let key = Self::meta_key(&meta.model, &meta.dataset_fingerprint);
        let arroy_err = self.arroy_err("build");
        self.write(|wtxn| {
            let all = self.all_indexes(wtxn)?;
            let index = if let Some(m) =
                all.iter().find(|m| Self::meta_key(&m.model, &m.dataset_fingerprint) == key)
            {
                m.arroy_index
            } else {
                let used: std::collections::BTreeSet<u16> =
                    all.iter().map(|m| m.arroy_index).collect();
                (0..=u16::MAX).find(|i| !used.contains(i)).ok_or_else(|| {
                    self.corrupt("all 65536 arroy indexes are in use; run `embtui store gc`")
                })?
            };
            let writer = Writer::<Cosine>::new(self.arroy, index, meta.dim);
            writer.clear(wtxn).map_err(&arroy_err)?;
            for (id, v) in vectors {
                writer.add_item(wtxn, *id, v).map_err(&arroy_err)?;
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(meta.seed);
            writer.builder(&mut rng).n_trees(meta.n_trees).build(wtxn).map_err(&arroy_err)?;
            let mut m = meta.clone();
            m.arroy_index = index;
            m.n_items = vectors.len();
            m.build_seconds = t0.elapsed().as_secs_f64();
            m.last_used = now();
            let json = serde_json::to_string(&m).map_err(|e| self.corrupt(e))?;
            self.meta.put(wtxn, &key, &json).map_err(self.lmdb("writing index metadata"))?;
            self.cap_selections(wtxn, &m)?;
            Ok(m)
        })
    }

    /// Drops the oldest selections of `kept`'s model and dataset folder beyond the cap.
    fn cap_selections(&self, wtxn: &mut RwTxn, kept: &IndexMeta) -> Result<()> {
        let mut same: Vec<IndexMeta> = self
            .all_indexes(wtxn)?
            .into_iter()
            .filter(|m| m.model == kept.model && m.dataset_root == kept.dataset_root)
            .filter(|m| m.dataset_fingerprint != kept.dataset_fingerprint)
            .collect();
        same.sort_by_key(|m| std::cmp::Reverse(m.last_used));
        for old in same.into_iter().skip(MAX_SELECTIONS - 1) {
            self.drop_index(wtxn, &old)?;
        }
        Ok(())
    }

    fn drop_index(&self, wtxn: &mut RwTxn, m: &IndexMeta) -> Result<()> {
        Writer::<Cosine>::new(self.arroy, m.arroy_index, m.dim.max(1))
            .clear(wtxn)
            .map_err(self.arroy_err("removal"))?;
        let key = Self::meta_key(&m.model, &m.dataset_fingerprint);
        self.meta.delete(wtxn, &key).map_err(self.lmdb("removing index metadata"))?;
        Ok(())
    }

    fn all_indexes(&self, txn: &RoTxn<'_>) -> Result<Vec<IndexMeta>> {
        let mut out = Vec::new();
        for item in self.meta.prefix_iter(txn, "index/").map_err(self.lmdb("listing indexes"))? {
            let (_, v) = item.map_err(self.lmdb("listing indexes"))?;
            out.push(serde_json::from_str(v).map_err(|e| self.corrupt(e))?);
        }
        Ok(out)
    }

    /// Approximate nearest neighbours of `query` in the (model, selection) index: (item, cosine).
    pub fn ann(
        &self,
        meta: &IndexMeta,
        query: &[f32],
        k: usize,
        search_k: Option<usize>,
    ) -> Result<Vec<(u32, f32)>> {
        let rtxn = self.rtxn()?;
        let arroy_err = self.arroy_err("search");
        let reader =
            Reader::<Cosine>::open(&rtxn, meta.arroy_index, self.arroy).map_err(&arroy_err)?;
        if reader.dimensions() != query.len() {
            return Err(StoreError::DimensionMismatch {
                path: self.path.clone(),
                model: meta.model.clone(),
                stored: reader.dimensions(),
                produced: query.len(),
            });
        }
        let mut q = reader.nns(k);
        if let Some(sk) = search_k.and_then(NonZeroUsize::new) {
            q.search_k(sk);
        }
        let hits = q.by_vector(&rtxn, query).map_err(&arroy_err)?;
        // arroy's cosine distance is (1 - cos) / 2 for normalised vectors.
        let mut out: Vec<(u32, f32)> =
            hits.into_iter().map(|(id, d)| (id, 1.0 - 2.0 * d)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Every (model, selection) index recorded in the store.
    pub fn indexes(&self) -> Result<Vec<IndexMeta>> {
        let rtxn = self.rtxn()?;
        self.all_indexes(&rtxn)
    }

    /// Number of cached vectors (all models).
    pub fn n_cached(&self) -> Result<u64> {
        let rtxn = self.rtxn()?;
        self.vectors.len(&rtxn).map_err(self.lmdb("counting vectors"))
    }
}

#[cfg(test)]
mod tests;

/// `(start, end)` of every mapping of `file` in a `/proc/self/maps` listing.
#[cfg(target_os = "linux")]
fn mapped_ranges(maps: &str, file: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter(|l| l.strip_suffix(file).is_some_and(|head| head.ends_with(' ')))
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?))
        })
        .collect()
}
