//! The embedding pipeline. Decoder threads pull images from one work queue continuously (no
//! barrier per batch) and preprocess each into its place in a ring of reusable batch slots;
//! the calling thread runs inference on the slots in order, so up to `SLOTS` batches are in
//! flight and memory stays bounded. Every stage is timed (`Stats`): busy time per stage,
//! how long inference waited for input, how long decoders waited for a free slot, and how
//! full the ring was when inference took a batch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decode::{DecodeOptions, ImageError};
use crate::model::preprocess::{load_tensor, Loaded};
use crate::model::{Device, Embedder, ModelError};

/// Batches in flight: one being inferred, the next ones being filled.
pub const SLOTS: usize = 3;

/// One image to embed: a caller's key and the file to read.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: usize,
    pub path: PathBuf,
}

/// An embedding, and whether its image was accepted although truncated.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vector: Vec<f32>,
    pub truncated: bool,
    /// Its image was decoded at reduced scale (see `Loaded::reduced`).
    pub reduced: bool,
}

/// What became of one image.
pub type Outcome = Result<Embedded, ImageError>;

/// Where the time went in one pipeline run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub images: usize,
    pub decoders: usize,
    pub ort_threads: usize,
    pub wall_seconds: f64,
    /// Decode + preprocess time summed over decoder threads.
    pub decode_seconds: f64,
    /// Inference time (the calling thread).
    pub infer_seconds: f64,
    /// Time inference waited for a batch to be decoded (the pipeline was decode-bound).
    pub infer_waited_seconds: f64,
    /// Time decoders waited for a free slot, summed (the pipeline was inference-bound).
    pub decoders_waited_seconds: f64,
    /// Mean number of slots already complete when inference took the next one.
    pub mean_ready_slots: f64,
}

/// How many threads decode and how many ONNX Runtime uses: on a GPU the cores all decode
/// (one thread feeds the GPU); on the CPU inference gets `ort_threads` (`--threads`, else
/// every core) and there is one decoder per core too. They never both keep a core busy for
/// long: ONNX Runtime's threads do not spin, and decoders block once the ring's batches are
/// full, so whichever stage is the bottleneck gets the cores (decoding 12-megapixel photos
/// is; inference of a ViT is).
pub fn plan(device: Device, threads: usize) -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if let Device::Cuda(_) = device {
        (cores.saturating_sub(1).max(1), 1)
    } else {
        let ort = if threads == 0 { cores } else { threads.min(cores) };
        (cores, ort)
    }
}

/// One batch's buffer in the ring.
struct Slot {
    /// The batch this slot holds now (`usize::MAX` = free for the next one).
    batch: usize,
    tensor: Vec<f32>,
    /// Per position: None while decoding, then the image's outcome (Ok = row written).
    done: Vec<Option<Result<Loaded, ImageError>>>,
    filled: usize,
}

struct Ring {
    slots: Vec<Mutex<Slot>>,
    changed: Condvar,
    gate: Mutex<()>,
}

impl Ring {
    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, Slot> {
        self.slots[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until `ready()` holds. It is checked under the gate, so a notification sent
    /// after a failed check cannot be missed (the timeout is only a safety net).
    fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        let mut g = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        while !ready() {
            g = self
                .changed
                .wait_timeout(g, Duration::from_millis(200))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn notify(&self) {
        let _g = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }
}

/// Embeds `jobs` in batches of `batch`, calling `sink` with each batch's outcomes in job order.
/// `sink` returning `false` stops the pipeline early (cancel). An inference error stops it and
/// is returned; outcomes already given to `sink` stay valid.
pub fn run(
    embedder: &mut Embedder,
    jobs: &[Job],
    batch: usize,
    opts: &DecodeOptions,
    decoders: usize,
    mut sink: impl FnMut(Vec<(usize, Outcome)>) -> bool,
) -> Result<Stats, ModelError> {
    let batch = batch.max(1);
    let entry = embedder.entry.clone();
    let per = (entry.size as usize).pow(2) * 3;
    let n_batches = jobs.len().div_ceil(batch);
    let ring = Ring {
        slots: (0..SLOTS)
            .map(|i| {
                Mutex::new(Slot {
                    batch: if i < n_batches { i } else { usize::MAX },
                    tensor: vec![0.0; per * batch],
                    done: vec![None; batch],
                    filled: 0,
                })
            })
            .collect(),
        changed: Condvar::new(),
        gate: Mutex::new(()),
    };
    let next_job = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let decoders = decoders.max(1).min(jobs.len().max(1));
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..decoders)
            .map(|_| {
                scope.spawn(|| {
                    decode_worker(jobs, batch, per, &entry, opts, &ring, &next_job, &stop)
                })
            })
            .collect();
        let mut stats = Stats { images: jobs.len(), decoders, ..Stats::default() };
        let mut result = Ok(());
        let mut ready_sum = 0usize;
        for b in 0..n_batches {
            let len = batch.min(jobs.len() - b * batch);
            let waited = Instant::now();
            ring.wait_until(|| {
                let s = ring.lock(b % SLOTS);
                s.batch == b && s.filled == len
            });
            stats.infer_waited_seconds += waited.elapsed().as_secs_f64();
            ready_sum += (0..SLOTS)
                .filter(|&i| {
                    let s = ring.lock(i);
                    s.batch != usize::MAX && s.filled == batch.min(jobs.len() - s.batch * batch)
                })
                .count();
            let mut slot = ring.lock(b % SLOTS);
            let t = Instant::now();
            let out = infer_slot(embedder, &mut slot, &jobs[b * batch..b * batch + len], per);
            stats.infer_seconds += t.elapsed().as_secs_f64();
            // Free the slot for the batch SLOTS ahead.
            let next = b + SLOTS;
            slot.batch = if next < n_batches { next } else { usize::MAX };
            slot.filled = 0;
            slot.done.iter_mut().for_each(|d| *d = None);
            drop(slot);
            ring.notify();
            match out {
                Ok(out) => {
                    if !sink(out) {
                        break;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        ring.notify();
        for w in workers {
            let (busy, waited) = w.join().unwrap_or((0.0, 0.0));
            stats.decode_seconds += busy;
            stats.decoders_waited_seconds += waited;
        }
        stats.wall_seconds = t0.elapsed().as_secs_f64();
        stats.mean_ready_slots = ready_sum as f64 / n_batches.max(1) as f64;
        result.map(|()| stats)
    })
}

/// A decoder thread: takes the next job, waits for its batch's slot, preprocesses the image
/// into a scratch buffer it reuses and copies the rows into the slot (one memcpy, ~2% of the
/// preprocessing). Returns (busy seconds, seconds waiting for a slot).
#[allow(clippy::too_many_arguments)] // the shared state of one pipeline run
fn decode_worker(
    jobs: &[Job],
    batch: usize,
    per: usize,
    entry: &crate::model::ModelEntry,
    opts: &DecodeOptions,
    ring: &Ring,
    next_job: &AtomicUsize,
    stop: &AtomicBool,
) -> (f64, f64) {
    let mut scratch = vec![0.0f32; per];
    let (mut busy, mut waited) = (0.0, 0.0);
    loop {
        let i = next_job.fetch_add(1, Ordering::Relaxed);
        if i >= jobs.len() || stop.load(Ordering::Relaxed) {
            return (busy, waited);
        }
        let (b, pos) = (i / batch, i % batch);
        let t = Instant::now();
        // Decode first (the slot may still be busy with an earlier batch), then wait for it.
        let outcome = load_tensor(&jobs[i].path, entry, opts, &mut scratch);
        busy += t.elapsed().as_secs_f64();
        let t = Instant::now();
        ring.wait_until(|| stop.load(Ordering::Relaxed) || ring.lock(b % SLOTS).batch == b);
        waited += t.elapsed().as_secs_f64();
        if stop.load(Ordering::Relaxed) {
            return (busy, waited);
        }
        {
            let mut s = ring.lock(b % SLOTS);
            if outcome.is_ok() {
                s.tensor[pos * per..(pos + 1) * per].copy_from_slice(&scratch);
            }
            s.done[pos] = Some(outcome);
            s.filled += 1;
        }
        ring.notify();
    }
}

/// Runs inference on one complete slot; rows of images that failed to decode are dropped
/// (the later rows move up) and reported in job order.
fn infer_slot(
    embedder: &mut Embedder,
    slot: &mut Slot,
    jobs: &[Job],
    per: usize,
) -> Result<Vec<(usize, Outcome)>, ModelError> {
    let mut ok = 0usize;
    for pos in 0..jobs.len() {
        if matches!(slot.done[pos], Some(Ok(_))) {
            if ok != pos {
                slot.tensor.copy_within(pos * per..(pos + 1) * per, ok * per);
            }
            ok += 1;
        }
    }
    let vectors =
        if ok == 0 { Vec::new() } else { embedder.embed_batch(&slot.tensor[..ok * per], ok)? };
    let dim = vectors.len() / ok.max(1);
    let mut rows = vectors.chunks(dim.max(1));
    Ok(jobs
        .iter()
        .enumerate()
        .map(|(pos, job)| {
            let outcome = match slot.done[pos].take() {
                Some(Ok(loaded)) => Ok(Embedded {
                    vector: rows.next().map(<[f32]>::to_vec).unwrap_or_default(),
                    truncated: loaded.truncated,
                    reduced: loaded.reduced,
                }),
                Some(Err(e)) => Err(e),
                None => Err(ImageError::Decode("not decoded".into())),
            };
            (job.key, outcome)
        })
        .collect())
}
