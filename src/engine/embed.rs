//! Embedding many images, two ways (`plan` picks one):
//! - lanes (CPU): one single-threaded ONNX Runtime session per core; each lane's thread takes
//!   the next batch, decodes it into its own reusable tensor and runs it. Batches reach the
//!   caller in order; a lane may run at most `2 × lanes` batches ahead.
//! - the pipeline (CUDA, or `--threads N`): decoder threads pull images from one work queue
//!   continuously (no barrier per batch) and preprocess each into its place in a ring of
//!   reusable batch slots; the calling thread runs inference on the slots in order, so up to
//!   `SLOTS` batches are in flight and memory stays bounded.
//!
//! Every stage is timed (`Stats`): busy time per stage, time spent waiting on the other
//! stage, and how many finished batches were queued.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decode::{DecodeOptions, ImageError};
use crate::model::preprocess::{load_tensor, Loaded};
use crate::model::{Device, Embedder, Lane, ModelError};

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

/// Where the time went in one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub images: usize,
    /// Images per batch (lanes make batches even across lanes: see `balanced_batch`).
    pub batch: usize,
    /// Sessions running at once (1 = the pipeline).
    pub lanes: usize,
    /// Decoder threads of the pipeline (0 with lanes: each lane decodes its own batches).
    pub decoders: usize,
    pub ort_threads: usize,
    pub wall_seconds: f64,
    /// Decode + preprocess time summed over the threads that decode.
    pub decode_seconds: f64,
    /// Inference time, summed over lanes.
    pub infer_seconds: f64,
    /// Pipeline: time inference waited for a batch to be decoded (it was decode-bound).
    /// Lanes: time the calling thread waited for the next batch in order.
    pub infer_waited_seconds: f64,
    /// Pipeline: time decoders waited for a free slot, summed (it was inference-bound).
    /// Lanes: time lanes waited because they were a window ahead, summed.
    pub decoders_waited_seconds: f64,
    /// Pipeline: mean number of slots already complete when inference took the next one.
    /// Lanes: mean number of finished batches held for order when one reached the caller.
    pub mean_ready_slots: f64,
}

/// How one run uses the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Sessions running batches at once (`lanes` > 1: each lane's thread decodes its own
    /// batches, then runs them; no decoder threads).
    pub lanes: usize,
    /// Decoder threads feeding a single lane (the pipeline; 0 with several lanes).
    pub decoders: usize,
    /// ONNX Runtime intra-op threads per session.
    pub ort_threads: usize,
}

/// The plan for `device` and `--threads`:
/// - CPU, `--threads 0` (the default): one single-threaded session per core, each thread
///   decoding a batch and then running it. Nothing waits on anything and no core sits in a
///   barrier: ONNX Runtime's intra-op parallelism leaves a second core idle for a quarter of
///   the time on a small CNN (EfficientNet-Lite0 at batch 16 on 2 cores: 94 images/s on one
///   thread, 142 on two), while two lanes run at twice one.
/// - CPU, `--threads N`: one session with N intra-op threads fed by one decoder per core
///   (the pipeline below). Decoders block once the ring is full and ONNX Runtime's threads
///   do not spin, so whichever stage is the bottleneck gets the cores.
/// - CUDA: the pipeline, every core but one decoding and one thread feeding the GPU.
pub fn plan(device: Device, threads: usize) -> Plan {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    match device {
        Device::Cuda(_) => {
            Plan { lanes: 1, decoders: cores.saturating_sub(1).max(1), ort_threads: 1 }
        }
        _ if threads == 0 => Plan { lanes: cores, decoders: 0, ort_threads: 1 },
        _ => Plan { lanes: 1, decoders: cores, ort_threads: threads.min(cores) },
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
    signal: Signal,
}

impl Ring {
    /// `SLOTS` empty batches of `batch` images of `per` floats, for batches 0, 1, 2….
    fn new(n_batches: usize, per: usize, batch: usize) -> Self {
        let slot = |i| Slot {
            batch: if i < n_batches { i } else { usize::MAX },
            tensor: vec![0.0; per * batch],
            done: vec![None; batch],
            filled: 0,
        };
        Ring { slots: (0..SLOTS).map(|i| Mutex::new(slot(i))).collect(), signal: Signal::default() }
    }

    /// How many slots hold a completely decoded batch.
    fn complete(&self, n_jobs: usize, batch: usize) -> usize {
        (0..SLOTS)
            .filter(|&i| {
                let s = self.lock(i);
                s.batch != usize::MAX && s.filled == batch.min(n_jobs - s.batch * batch)
            })
            .count()
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, Slot> {
        self.slots[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_until(&self, ready: impl FnMut() -> bool) {
        self.signal.wait_until(ready);
    }

    fn notify(&self) {
        self.signal.notify();
    }
}

/// Threads waiting for shared state to change, and a way to wake them.
#[derive(Default)]
struct Signal {
    changed: Condvar,
    gate: Mutex<()>,
}

impl Signal {
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

/// Embeds `jobs` in batches of `batch` as `plan` says, calling `sink` with each batch's
/// outcomes in job order. `sink` returning `false` stops the run early (cancel). An inference
/// error stops it and is returned; outcomes already given to `sink` stay valid.
pub fn run(
    embedder: &mut Embedder,
    jobs: &[Job],
    batch: usize,
    opts: &DecodeOptions,
    plan: Plan,
    sink: impl FnMut(Vec<(usize, Outcome)>) -> bool,
) -> Result<Stats, ModelError> {
    let mut stats = if plan.lanes > 1 && embedder.device == Device::Cpu {
        run_lanes(embedder, jobs, batch, opts, plan.lanes, sink)?
    } else {
        run_pipeline(embedder, jobs, batch, opts, plan.decoders, sink)?
    };
    stats.ort_threads = plan.ort_threads;
    Ok(stats)
}

/// The pipeline: decoder threads fill the ring, the calling thread runs inference on it.
fn run_pipeline(
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
    let ring = Ring::new(n_batches, per, batch);
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
        let mut stats = Stats { images: jobs.len(), batch, decoders, lanes: 1, ..Stats::default() };
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
            ready_sum += ring.complete(jobs.len(), batch);
            let mut slot = ring.lock(b % SLOTS);
            let t = Instant::now();
            let Slot { tensor, done, .. } = &mut *slot;
            let out = infer_rows(
                |input, n| embedder.embed_batch(input, n),
                tensor,
                done,
                &jobs[b * batch..b * batch + len],
                per,
            );
            stats.infer_seconds += t.elapsed().as_secs_f64();
            // Free the slot for the batch SLOTS ahead.
            let next = b + SLOTS;
            slot.batch = if next < n_batches { next } else { usize::MAX };
            slot.filled = 0;
            slot.done.iter_mut().for_each(|d| *d = None);
            drop(slot);
            ring.notify();
            if let ControlFlow::Break(err) = deliver(out, &mut sink) {
                result = err.map_or(Ok(()), Err);
                break;
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

/// Hands one batch's outcomes to `sink`. Break(None): `sink` cancelled the run; Break(Some):
/// inference failed, which stops it too.
fn deliver(
    out: Result<Vec<(usize, Outcome)>, ModelError>,
    sink: &mut impl FnMut(Vec<(usize, Outcome)>) -> bool,
) -> ControlFlow<Option<ModelError>> {
    match out.map(sink) {
        Ok(true) => ControlFlow::Continue(()),
        Ok(false) => ControlFlow::Break(None),
        Err(e) => ControlFlow::Break(Some(e)),
    }
}

/// Runs inference on one complete batch (`done[pos]` holds each image's decode outcome and
/// its row of `tensor` when Ok); rows of images that failed to decode are dropped (the later
/// rows move up) and every outcome is reported in job order.
fn infer_rows(
    embed: impl FnOnce(&[f32], usize) -> Result<Vec<f32>, ModelError>,
    tensor: &mut [f32],
    done: &mut [Option<Result<Loaded, ImageError>>],
    jobs: &[Job],
    per: usize,
) -> Result<Vec<(usize, Outcome)>, ModelError> {
    let mut ok = 0usize;
    for (pos, d) in done[..jobs.len()].iter().enumerate() {
        if matches!(d, Some(Ok(_))) {
            if ok != pos {
                tensor.copy_within(pos * per..(pos + 1) * per, ok * per);
            }
            ok += 1;
        }
    }
    let vectors = if ok == 0 { Vec::new() } else { embed(&tensor[..ok * per], ok)? };
    let dim = vectors.len() / ok.max(1);
    let mut rows = vectors.chunks(dim.max(1));
    Ok(jobs
        .iter()
        .enumerate()
        .map(|(pos, job)| {
            let outcome = match done[pos].take() {
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

/// Lanes: each thread takes the next batch, decodes it into its own tensor and runs it on
/// its own session. Finished batches reach `sink` in order from the calling thread; one that
/// finished early is held until the batches before it are done, and no lane starts a batch
/// more than `2 × lanes` ahead of the next one `sink` needs, so memory stays bounded.
fn run_lanes(
    embedder: &mut Embedder,
    jobs: &[Job],
    batch: usize,
    opts: &DecodeOptions,
    lanes: usize,
    mut sink: impl FnMut(Vec<(usize, Outcome)>) -> bool,
) -> Result<Stats, ModelError> {
    let (lanes, batch) = lane_layout(jobs.len(), batch, lanes);
    let n_batches = jobs.len().div_ceil(batch);
    let entry = embedder.entry.clone();
    let mut lanes = embedder.lanes(lanes)?;
    let shared = Lanes {
        jobs,
        batch,
        per: (entry.size as usize).pow(2) * 3,
        n_batches,
        window: 2 * lanes.len(),
        entry: &entry,
        opts,
        next_batch: AtomicUsize::new(0),
        emitted: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        signal: Signal::default(),
    };
    let (emitted, stop, signal) = (&shared.emitted, &shared.stop, &shared.signal);
    let t0 = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let workers: Vec<_> = lanes
            .iter_mut()
            .map(|lane| {
                let (tx, shared) = (tx.clone(), &shared);
                scope.spawn(move || shared.work(lane, &tx))
            })
            .collect();
        drop(tx);
        let mut stats =
            Stats { images: jobs.len(), batch, lanes: workers.len(), ..Stats::default() };
        let mut result = Ok(());
        let mut held = std::collections::BTreeMap::new();
        let mut held_sum = 0usize;
        for b in 0..n_batches {
            let t = Instant::now();
            while !held.contains_key(&b) {
                match rx.recv() {
                    Ok((k, out)) => {
                        held.insert(k, out);
                    }
                    Err(_) => break, // every lane has ended (one panicked)
                }
            }
            stats.infer_waited_seconds += t.elapsed().as_secs_f64();
            let Some(out) = held.remove(&b) else {
                result = Err(ModelError::Lane { batch: b });
                break;
            };
            held_sum += held.len();
            emitted.store(b + 1, Ordering::Relaxed);
            signal.notify();
            if let ControlFlow::Break(err) = deliver(out, &mut sink) {
                result = err.map_or(Ok(()), Err);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        signal.notify();
        for w in workers {
            let busy = w.join().unwrap_or_default();
            stats.decode_seconds += busy.decode;
            stats.infer_seconds += busy.infer;
            stats.decoders_waited_seconds += busy.waited;
        }
        stats.wall_seconds = t0.elapsed().as_secs_f64();
        stats.mean_ready_slots = held_sum as f64 / n_batches.max(1) as f64;
        result.map(|()| stats)
    })
}

/// How `n` jobs run on at most `lanes` lanes: (lanes that get work, batch size), the
/// batches even across those lanes.
pub fn lane_layout(n: usize, batch: usize, lanes: usize) -> (usize, usize) {
    let lanes = lanes.min(n.div_ceil(batch.max(1))).max(1);
    (lanes, balanced_batch(n, batch, lanes))
}

/// The batch size at most `batch` that splits `n` jobs into a multiple of `lanes` batches, so
/// no lane runs a last batch alone while the others idle (48 large photos at batch 16 on 2
/// lanes: 4 batches of 12, not 3 of 16 where one lane does two).
fn balanced_batch(n: usize, batch: usize, lanes: usize) -> usize {
    let batches = n.div_ceil(batch.max(1)).next_multiple_of(lanes.max(1));
    n.div_ceil(batches.max(1)).max(1)
}

/// What the lanes of one run share.
struct Lanes<'a> {
    jobs: &'a [Job],
    batch: usize,
    per: usize,
    n_batches: usize,
    /// How far ahead of the next batch `sink` needs a lane may start one.
    window: usize,
    entry: &'a crate::model::ModelEntry,
    opts: &'a DecodeOptions,
    next_batch: AtomicUsize,
    /// Batches handed to `sink` so far.
    emitted: AtomicUsize,
    stop: AtomicBool,
    signal: Signal,
}

/// A finished batch: its index and outcomes.
type Finished = (usize, Result<Vec<(usize, Outcome)>, ModelError>);

impl Lanes<'_> {
    /// One lane's thread: takes batches until none are left (or the run stops), decoding
    /// each into its own tensor and running it on `lane`.
    fn work(&self, lane: &mut Lane<'_>, tx: &std::sync::mpsc::Sender<Finished>) -> LaneBusy {
        let (per, batch) = (self.per, self.batch);
        let mut tensor = vec![0.0f32; per * batch];
        let mut done: Vec<Option<Result<Loaded, ImageError>>> = vec![None; batch];
        let mut busy = LaneBusy::default();
        let stopped = || self.stop.load(Ordering::Relaxed);
        loop {
            let b = self.next_batch.fetch_add(1, Ordering::Relaxed);
            if b >= self.n_batches || stopped() {
                return busy;
            }
            let t = Instant::now();
            self.signal
                .wait_until(|| stopped() || b < self.emitted.load(Ordering::Relaxed) + self.window);
            busy.waited += t.elapsed().as_secs_f64();
            if stopped() {
                return busy;
            }
            let jobs = &self.jobs[b * batch..self.jobs.len().min((b + 1) * batch)];
            let t = Instant::now();
            for (pos, job) in jobs.iter().enumerate() {
                let row = &mut tensor[pos * per..(pos + 1) * per];
                done[pos] = Some(load_tensor(&job.path, self.entry, self.opts, row));
            }
            busy.decode += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = infer_rows(
                |input, n| lane.embed_batch(input, n),
                &mut tensor,
                &mut done,
                jobs,
                per,
            );
            busy.infer += t.elapsed().as_secs_f64();
            if tx.send((b, out)).is_err() {
                return busy;
            }
        }
    }
}

/// Seconds one lane spent decoding, in inference, and waiting for the in-order window.
#[derive(Default)]
struct LaneBusy {
    decode: f64,
    infer: f64,
    waited: f64,
}

#[cfg(test)]
mod tests {
    use super::balanced_batch;

    #[test]
    fn batches_split_evenly_over_lanes() {
        // (jobs, batch, lanes) → batch size; the batch counts are in the comments.
        assert_eq!(balanced_batch(48, 16, 2), 12); // 4 of 12, 2 per lane
        assert_eq!(balanced_batch(300, 16, 2), 15); // 20 of 15
        assert_eq!(balanced_batch(39, 16, 2), 10); // 10, 10, 10, 9
        assert_eq!(balanced_batch(17, 16, 2), 9); // 9, 8
        assert_eq!(balanced_batch(1000, 16, 2), 16); // 63 → 64 batches: 62 of 16, 1 of 8
        assert_eq!(balanced_batch(64, 16, 4), 16); // already even
        assert_eq!(balanced_batch(1, 16, 1), 1);
        assert_eq!(balanced_batch(0, 16, 2), 1);
    }
}
