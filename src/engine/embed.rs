//! The embedding pipeline: decode + preprocess on the rayon pool, overlapped with batched
//! inference on the calling thread. Memory is bounded by two batches in flight.

use std::path::PathBuf;

use crossbeam_channel::bounded;
use rayon::prelude::*;

use crate::model::preprocess::{load_tensor, ImageError};
use crate::model::{Embedder, ModelError};

/// One image to embed: a caller's key and the file to read.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: usize,
    pub path: PathBuf,
}

/// What became of one image.
pub type Outcome = Result<Vec<f32>, ImageError>;

struct Prepared {
    keys: Vec<usize>,
    ok: Vec<usize>,
    tensor: Vec<f32>,
    failed: Vec<(usize, ImageError)>,
}

/// Embeds `jobs` in batches of `batch`, calling `sink` with each batch's outcomes in job order.
/// `sink` returning `false` stops the pipeline early (cancel). An inference error stops it and
/// is returned; outcomes already given to `sink` stay valid.
pub fn run(
    embedder: &mut Embedder,
    jobs: &[Job],
    batch: usize,
    mut sink: impl FnMut(Vec<(usize, Outcome)>) -> bool,
) -> Result<(), ModelError> {
    let batch = batch.max(1);
    let entry = embedder.entry.clone();
    let per = (entry.size as usize).pow(2) * 3;
    let (tx, rx) = bounded::<Prepared>(1);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            for chunk in jobs.chunks(batch) {
                let results: Vec<(usize, Result<Vec<f32>, ImageError>)> = chunk
                    .par_iter()
                    .map(|job| {
                        let mut buf = vec![0.0f32; per];
                        (job.key, load_tensor(&job.path, &entry, &mut buf).map(|()| buf))
                    })
                    .collect();
                let mut p = Prepared {
                    keys: Vec::new(),
                    ok: Vec::new(),
                    tensor: Vec::with_capacity(per * chunk.len()),
                    failed: Vec::new(),
                };
                for (key, r) in results {
                    p.keys.push(key);
                    match r {
                        Ok(buf) => {
                            p.ok.push(key);
                            p.tensor.extend_from_slice(&buf);
                        }
                        Err(e) => p.failed.push((key, e)),
                    }
                }
                if tx.send(p).is_err() {
                    return; // consumer stopped
                }
            }
        });
        let mut result = Ok(());
        for p in &rx {
            let mut out: Vec<(usize, Outcome)> = Vec::with_capacity(p.keys.len());
            let vectors = if p.ok.is_empty() {
                Vec::new()
            } else {
                match embedder.embed_batch(&p.tensor, p.ok.len()) {
                    Ok(v) => v,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            };
            let dim = vectors.len() / p.ok.len().max(1);
            let mut rows = p.ok.iter().zip(vectors.chunks(dim.max(1)));
            let mut failed = p.failed.into_iter().peekable();
            let mut next_ok = rows.next();
            for key in p.keys {
                if let Some((k, v)) = next_ok {
                    if *k == key {
                        out.push((key, Ok(v.to_vec())));
                        next_ok = rows.next();
                        continue;
                    }
                }
                if let Some((_, e)) = failed.next_if(|(k, _)| *k == key) {
                    out.push((key, Err(e)));
                }
            }
            if !sink(out) {
                break;
            }
        }
        drop(rx);
        let _ = producer.join();
        result
    })
}
