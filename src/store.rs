//! The vector store: one LMDB environment (heed) holding, per model, cached embeddings keyed by
//! (model sha256, image content hash) and an arroy cosine index per (model, dataset).
//! The only user of heed and arroy.
#![allow(unsafe_code)]

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use arroy::distances::Cosine;
use arroy::{Reader, Writer};
use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Bumped when the on-disk layout changes; a store written by a newer embtui is refused.
pub const STORE_VERSION: u32 = 1;
const INITIAL_MAP: usize = 1 << 30;
/// Trees per arroy index; with `SEARCH_K_PER_TREE` this reaches recall@10 ≥ 0.98 on 1k photos.
pub const DEFAULT_N_TREES: usize = 32;
pub const SEED: u64 = 42;

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
    #[error("store {0}: LMDB error")]
    Lmdb(PathBuf, #[source] heed::Error),
    #[error("store {0}: arroy error")]
    Arroy(PathBuf, #[source] arroy::Error),
    #[error("store {0}: corrupt metadata: {1}")]
    Corrupt(PathBuf, String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What is recorded about one (model, dataset) index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
}

/// An open store.
pub struct Store {
    path: PathBuf,
    env: Env,
    vectors: Database<'static, Bytes, Bytes>,
    meta: Database<'static, Str, Str>,
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

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
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
                heed::Error::Mdb(heed::MdbError::Invalid) => {
                    ": not an LMDB store (corrupt?); move it away or pass another --store"
                        .to_owned()
                }
                heed::Error::Mdb(heed::MdbError::Corrupted | heed::MdbError::Panic) => {
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
                let a = dbo.open_database(rtxn, Some("arroy"))?;
                Ok(CommitOrAbort::<_, ()>::Commit(v.zip(m).zip(a).map(|((v, m), a)| (v, m, a))))
            })
            .map_err(open_err)?
            .unwrap_commit();
        let (vectors, meta, arroy) = if let Some(dbs) = existing {
            dbs
        } else {
            let wtxn = env.write_txn().map_err(open_err)?;
            env.create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
                let v = dbo.create_database::<Bytes, Bytes>(wtxn, Some("vectors"))?;
                let m = dbo.create_database::<Str, Str>(wtxn, Some("meta"))?;
                let a = dbo.create_database(wtxn, Some("arroy"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((v, m, a)))
            })
            .map_err(open_err)?
            .unwrap_commit()
        };
        let store = Self { path: path.into(), env, vectors, meta, arroy };
        store.check_version()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lmdb(&self) -> impl Fn(heed::Error) -> StoreError + '_ {
        |e| StoreError::Lmdb(self.path.clone(), e)
    }

    fn check_version(&self) -> Result<()> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        if let Some(v) = self.meta.get(&rtxn, "store_version").map_err(self.lmdb())? {
            let found: u32 = v.parse().map_err(|_| {
                StoreError::Corrupt(self.path.clone(), format!("store_version {v:?}"))
            })?;
            if found > STORE_VERSION {
                return Err(StoreError::TooNew { path: self.path.clone(), found });
            }
            return Ok(());
        }
        drop(rtxn);
        let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
        match self.meta.get(&wtxn, "store_version").map_err(self.lmdb())? {
            Some(v) => {
                let found: u32 = v.parse().map_err(|_| {
                    StoreError::Corrupt(self.path.clone(), format!("store_version {v:?}"))
                })?;
                if found > STORE_VERSION {
                    return Err(StoreError::TooNew { path: self.path.clone(), found });
                }
            }
            None => {
                self.meta
                    .put(&mut wtxn, "store_version", &STORE_VERSION.to_string())
                    .map_err(self.lmdb())?;
            }
        }
        wtxn.commit().map_err(self.lmdb())
    }

    /// Runs a write transaction, growing the map and retrying when it is full.
    fn write<T>(&self, f: impl Fn(&mut heed::RwTxn) -> Result<T>) -> Result<T> {
        loop {
            let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
            let res = f(&mut wtxn).and_then(|t| wtxn.commit().map(|()| t).map_err(self.lmdb()));
            match res {
                Err(
                    StoreError::Lmdb(_, heed::Error::Mdb(heed::MdbError::MapFull))
                    | StoreError::Arroy(
                        _,
                        arroy::Error::Heed(heed::Error::Mdb(heed::MdbError::MapFull)),
                    ),
                ) => {
                    let new = self.env.info().map_size * 2;
                    // SAFETY: no transaction of this process is open here (the failed one was
                    // dropped above), which is what mdb_env_set_mapsize requires.
                    unsafe { self.env.resize(new) }.map_err(self.lmdb())?;
                }
                other => return other,
            }
        }
    }

    /// Cached embeddings for the given image content hashes (None where not cached).
    pub fn cached(
        &self,
        model_sha: &str,
        dim: usize,
        model: &str,
        hashes: &[[u8; 32]],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        hashes
            .iter()
            .map(|h| {
                let Some(b) =
                    self.vectors.get(&rtxn, &cache_key(model_sha, h)).map_err(self.lmdb())?
                else {
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
                Ok(Some(from_bytes(b)))
            })
            .collect()
    }

    /// Stores a batch of embeddings in one committed transaction.
    pub fn put_vectors(&self, model_sha: &str, items: &[([u8; 32], Vec<f32>)]) -> Result<()> {
        self.write(|wtxn| {
            for (h, v) in items {
                self.vectors
                    .put(wtxn, &cache_key(model_sha, h), &to_bytes(v))
                    .map_err(self.lmdb())?;
            }
            Ok(())
        })
    }

    fn meta_key(model: &str, fingerprint: &str) -> String {
        format!("index/{model}/{fingerprint}")
    }

    /// Metadata of the (model, dataset) index, if built.
    pub fn index_meta(&self, model: &str, fingerprint: &str) -> Result<Option<IndexMeta>> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let Some(s) =
            self.meta.get(&rtxn, &Self::meta_key(model, fingerprint)).map_err(self.lmdb())?
        else {
            return Ok(None);
        };
        serde_json::from_str(s)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(self.path.clone(), e.to_string()))
    }

    /// (Re)builds the arroy index of (model, dataset) from `vectors` (item id = position).
    pub fn build_index(&self, meta: &IndexMeta, vectors: &[(u32, Vec<f32>)]) -> Result<IndexMeta> {
        let t0 = std::time::Instant::now();
        let key = Self::meta_key(&meta.model, &meta.dataset_fingerprint);
        let arroy_err = |e| StoreError::Arroy(self.path.clone(), e);
        let meta = self.write(|wtxn| {
            let index = if let Some(s) = self.meta.get(wtxn, &key).map_err(self.lmdb())? {
                serde_json::from_str::<IndexMeta>(s)
                    .map_err(|e| StoreError::Corrupt(self.path.clone(), e.to_string()))?
                    .arroy_index
            } else {
                let next: u16 = self
                    .meta
                    .get(wtxn, "next_arroy_index")
                    .map_err(self.lmdb())?
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                self.meta
                    .put(wtxn, "next_arroy_index", &(next + 1).to_string())
                    .map_err(self.lmdb())?;
                next
            };
            let writer = Writer::<Cosine>::new(self.arroy, index, meta.dim);
            writer.clear(wtxn).map_err(arroy_err)?;
            for (id, v) in vectors {
                writer.add_item(wtxn, *id, v).map_err(arroy_err)?;
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(meta.seed);
            writer.builder(&mut rng).n_trees(meta.n_trees).build(wtxn).map_err(arroy_err)?;
            let mut m = meta.clone();
            m.arroy_index = index;
            m.n_items = vectors.len();
            m.build_seconds = t0.elapsed().as_secs_f64();
            let json = serde_json::to_string(&m)
                .map_err(|e| StoreError::Corrupt(self.path.clone(), e.to_string()))?;
            self.meta.put(wtxn, &key, &json).map_err(self.lmdb())?;
            Ok(m)
        })?;
        Ok(meta)
    }

    /// Approximate nearest neighbours of `query` in the (model, dataset) index: (item, cosine).
    pub fn ann(
        &self,
        meta: &IndexMeta,
        query: &[f32],
        k: usize,
        search_k: Option<usize>,
    ) -> Result<Vec<(u32, f32)>> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let arroy_err = |e| StoreError::Arroy(self.path.clone(), e);
        let reader =
            Reader::<Cosine>::open(&rtxn, meta.arroy_index, self.arroy).map_err(arroy_err)?;
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
        let hits = q.by_vector(&rtxn, query).map_err(arroy_err)?;
        // arroy's cosine distance is (1 - cos) / 2 for normalised vectors.
        let mut out: Vec<(u32, f32)> =
            hits.into_iter().map(|(id, d)| (id, 1.0 - 2.0 * d)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Every (model, dataset) index recorded in the store.
    pub fn indexes(&self) -> Result<Vec<IndexMeta>> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let mut out = Vec::new();
        for item in self.meta.prefix_iter(&rtxn, "index/").map_err(self.lmdb())? {
            let (_, v) = item.map_err(self.lmdb())?;
            out.push(
                serde_json::from_str(v)
                    .map_err(|e| StoreError::Corrupt(self.path.clone(), e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Number of cached vectors (all models).
    pub fn n_cached(&self) -> Result<u64> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        self.vectors.len(&rtxn).map_err(self.lmdb())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(dim: usize) -> IndexMeta {
        IndexMeta {
            model: "m".into(),
            onnx_sha256: "ab".repeat(32),
            dim,
            entry: serde_json::Value::Null,
            embtui_version: "0".into(),
            dataset_fingerprint: "fp".into(),
            arroy_index: 0,
            n_items: 0,
            n_trees: 4,
            seed: SEED,
            build_seconds: 0.0,
        }
    }

    #[test]
    fn vectors_round_trip_and_cache_hits_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let sha = "ab".repeat(32);
        s.put_vectors(&sha, &[([1; 32], vec![0.6, 0.8])]).unwrap();
        let got = s.cached(&sha, 2, "m", &[[1; 32], [2; 32]]).unwrap();
        assert_eq!(got, vec![Some(vec![0.6, 0.8]), None]);
        // Another model file (sha) never sees these vectors.
        assert_eq!(s.cached(&"cd".repeat(32), 2, "m", &[[1; 32]]).unwrap(), vec![None]);
    }

    #[test]
    fn open_db_with_wrong_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let sha = "ab".repeat(32);
        s.put_vectors(&sha, &[([1; 32], vec![0.6, 0.8])]).unwrap();
        let err = s.cached(&sha, 3, "m", &[[1; 32]]).unwrap_err();
        assert!(err.to_string().contains("stored 2-d vectors but produces 3-d"), "{err}");
    }

    #[test]
    fn ann_finds_the_exact_neighbour_with_cosine_scores() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let vs: Vec<(u32, Vec<f32>)> =
            vec![(0, vec![1.0, 0.0]), (1, vec![0.0, 1.0]), (2, vec![0.6, 0.8])];
        let m = s.build_index(&meta(2), &vs).unwrap();
        let hits = s.ann(&m, &[1.0, 0.0], 2, None).unwrap();
        assert_eq!(hits[0].0, 0);
        assert!((hits[0].1 - 1.0).abs() < 1e-5);
        assert_eq!(hits[1].0, 2);
        assert!((hits[1].1 - 0.6).abs() < 1e-4, "{hits:?}");
    }

    #[test]
    fn same_seed_builds_the_same_trees() {
        let vs: Vec<(u32, Vec<f32>)> = (0..300u32)
            .map(|i| {
                let a = f32::from(i as u16) * 0.37;
                (i, vec![a.sin(), a.cos(), (a * 0.5).sin(), (a * 1.7).cos()])
            })
            .collect();
        let run = || {
            let dir = tempfile::tempdir().unwrap();
            let s = Store::open(dir.path()).unwrap();
            let m = s.build_index(&meta(4), &vs).unwrap();
            // A small search_k makes the answer depend on the trees themselves.
            (0..20).map(|q| s.ann(&m, &vs[q].1, 5, Some(8)).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn store_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let mut w = s.env.write_txn().unwrap();
            s.meta.put(&mut w, "store_version", "99").unwrap();
            w.commit().unwrap();
        }
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("written by a newer embtui (layout 99"), "{err}");
    }

    #[test]
    fn map_full_grows_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let before = s.env.info().map_size;
        // 1.5 GiB of vectors in 8 MiB batches outgrows the initial 1 GiB map.
        let sha = "ab".repeat(32);
        for b in 0..3u8 {
            let items: Vec<([u8; 32], Vec<f32>)> = (0..128u8)
                .map(|i| {
                    (
                        [
                            b, i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                            19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                        ],
                        vec![0.5; 1 << 20],
                    )
                })
                .collect();
            s.put_vectors(&sha, &items).unwrap();
        }
        assert!(s.env.info().map_size > before);
        assert_eq!(s.n_cached().unwrap(), 384);
    }
}
