//! The engine side of `browse`: worker threads that index, answer neighbour queries and
//! evaluate. They own their messages (`Request` in, `EngineEvent` out) and know nothing of the
//! terminal: the UI hands over a sink for events and keeps the `Sender` that `spawn` returns.
//!
//! Neighbours come first: once the vectors are loaded, each query's neighbours are computed
//! on demand (exact, ~10 ms per model at 31,783 images), while the evaluation (relevance,
//! metrics, intervals) runs on a second thread and reports its progress.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::eval::{evaluate_with, evaluated_images, relevance_of, EvalOptions, QuerySet};
use super::index::{index_model, Indexed, Vectors};
use super::search::{Query, QueryEmbedders};
use crate::cli::DEFAULT_BATCH;
use crate::config::Config;
use crate::dataset::Dataset;
use crate::model::ModelEntry;
use crate::relevance::Relevance;
use crate::report::EvalReport;
use crate::store::Store;

/// Neighbours computed per query and model (the UI shows as many as fit, `+`/`-`).
pub const MAX_NEIGHBOURS: usize = 30;

/// One neighbour of a query: dataset id, cosine score, caption relevance to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: u32,
    pub score: f32,
    pub rel: Option<f32>,
}

/// A model as the UI names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    /// Where its vectors were computed (this run's device, else the store's record).
    pub device: String,
}

/// What the UI asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Every model's neighbours of one dataset image (by dataset id).
    Neighbours(usize),
    /// Neighbours of an image file or a text that is not in the dataset.
    Outside(Query),
}

/// Per model (name), its hits for an outside query.
pub type OutsideHits = Vec<(String, Vec<Hit>)>;

/// The evaluation, once done: the report and each query's main metric per model.
#[derive(Debug)]
pub struct Evaluated {
    pub report: Box<EvalReport>,
    /// Per model, nDCG at the largest k of every dataset image (NaN where not evaluated).
    pub ndcg: Vec<Vec<f64>>,
}

/// What the engine reports back.
#[derive(Debug)]
pub enum EngineEvent {
    Status(String),
    /// Indexing progress of one model.
    Progress {
        model: String,
        done: usize,
        total: usize,
    },
    /// Vectors loaded: neighbour queries are answered from now on.
    Ready {
        models: Vec<ModelInfo>,
        evaluated: Vec<bool>,
    },
    /// Every model's neighbours of a dataset image; `rel` is known once relevance is built.
    Neighbours {
        query: usize,
        hits: Vec<Vec<Hit>>,
    },
    /// Caption relevance is built: neighbours asked for again will carry it.
    RelevanceReady,
    /// The evaluation's progress: stage and fraction done.
    Evaluating {
        stage: String,
        done: f64,
    },
    Evaluated(Evaluated),
    /// The evaluation stopped (neighbours keep working).
    EvalFailed(String),
    Outside {
        query: Query,
        hits: OutsideHits,
    },
    Error(String),
}

/// A sink for events: false once nobody listens.
pub type Sink = Arc<dyn Fn(EngineEvent) -> bool + Send + Sync>;

/// Starts the worker; events go to `sink`.
pub fn spawn(
    cfg: Config,
    ds: Dataset,
    entries: Vec<ModelEntry>,
    queries: QuerySet,
    sink: impl Fn(EngineEvent) -> bool + Send + Sync + 'static,
) -> Sender<Request> {
    let (tx, rx) = unbounded::<Request>();
    let sink: Sink = Arc::new(sink);
    thread::spawn(move || {
        if let Err(e) = serve(&cfg, ds, &entries, queries, &sink, &rx) {
            sink(EngineEvent::Error(format!("{e:#}")));
        }
    });
    tx
}

/// Loaded state shared by the request loop and the evaluation thread.
struct Loaded {
    ds: Dataset,
    indexed: Vec<Indexed>,
    /// Dataset ids of the images every model embedded.
    keep: Vec<usize>,
    /// Dataset id → position in `keep` (the relevance model's index).
    position: HashMap<usize, usize>,
    relevance: OnceLock<Relevance>,
}

fn serve(
    cfg: &Config,
    ds: Dataset,
    entries: &[ModelEntry],
    queries: QuerySet,
    sink: &Sink,
    rx: &Receiver<Request>,
) -> anyhow::Result<()> {
    let store = Store::open(&cfg.store_dir)?;
    let mut indexed = Vec::new();
    for e in entries {
        sink(EngineEvent::Status(format!("loading {}", e.name)));
        let name = e.name.clone();
        let progress = |done: usize, total: usize| {
            sink(EngineEvent::Progress { model: name.clone(), done, total });
        };
        indexed.push(index_model(
            cfg,
            &store,
            &ds,
            e,
            DEFAULT_BATCH,
            None,
            Some(&progress),
            Vectors::Resident,
        )?);
    }
    drop(store);
    let keep = evaluated_images(&ds, &indexed);
    let models = indexed.iter().map(model_info).collect();
    let mut evaluated = vec![false; ds.samples.len()];
    keep.iter().for_each(|&i| evaluated[i] = true);
    let position = keep.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let loaded = Arc::new(Loaded { ds, indexed, keep, position, relevance: OnceLock::new() });
    sink(EngineEvent::Ready { models, evaluated });
    if loaded.ds.has_captions() && loaded.keep.len() >= 2 {
        let (l, s, c) = (loaded.clone(), sink.clone(), cfg.clone());
        thread::spawn(move || {
            if let Err(e) = evaluate_in_background(&c, &l, queries, &s) {
                s(EngineEvent::EvalFailed(format!("{e:#}")));
            }
        });
    }
    let mut encoders = QueryEmbedders::default();
    for r in rx {
        let ev = match r {
            Request::Neighbours(q) => {
                EngineEvent::Neighbours { query: q, hits: neighbours(&loaded, q) }
            }
            Request::Outside(q) => match outside(cfg, entries, &loaded, &mut encoders, &q) {
                Ok(hits) => EngineEvent::Outside { query: q, hits },
                Err(e) => EngineEvent::Error(format!("{e:#}")),
            },
        };
        if !sink(ev) {
            break;
        }
    }
    Ok(())
}

fn model_info(x: &Indexed) -> ModelInfo {
    let device = x
        .device
        .clone()
        .or_else(|| x.provenance.as_ref().map(|p| p.devices.join("+")))
        .unwrap_or_else(|| "cached".into());
    ModelInfo { name: x.model.clone(), device }
}

/// Builds relevance (published for neighbour answers), then evaluates with progress.
fn evaluate_in_background(
    cfg: &Config,
    l: &Loaded,
    queries: QuerySet,
    sink: &Sink,
) -> anyhow::Result<()> {
    let o = EvalOptions { queries, ..EvalOptions::default() };
    sink(EngineEvent::Evaluating { stage: "caption relevance".into(), done: 0.0 });
    let store = Store::open(&cfg.store_dir)?;
    if l.relevance.get().is_none() {
        let say = |m: &str| {
            sink(EngineEvent::Evaluating { stage: m.to_owned(), done: 0.0 });
        };
        let built = relevance_of(cfg, Some(&store), &l.ds, &l.keep, o.method, &say)?;
        let _ = l.relevance.set(built);
    }
    let rel = l.relevance.get().ok_or_else(|| anyhow::anyhow!("relevance was not built"))?;
    sink(EngineEvent::RelevanceReady);
    let on_stage = |stage: &str, done: f64| {
        sink(EngineEvent::Evaluating { stage: stage.to_owned(), done });
    };
    let ev = evaluate_with(&store, &l.ds, &l.indexed, &l.keep, rel, &o, &on_stage)?;
    let main = o.main_metric();
    let ndcg = ev
        .per_query
        .iter()
        .map(|pq| {
            // Images outside a sample of queries keep NaN: browsable, not scored.
            let mut v = vec![f64::NAN; l.ds.samples.len()];
            if let Some(vals) = pq.values.get(&main) {
                for (&p, &x) in ev.queries.iter().zip(vals) {
                    v[l.keep[p]] = x;
                }
            }
            v
        })
        .collect();
    sink(EngineEvent::Evaluated(Evaluated { report: Box::new(ev.report), ndcg }));
    Ok(())
}

/// A dot product in 8 lanes (vectorises; the order differs from a plain sum only in the last
/// bits).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Every model's exact top [`MAX_NEIGHBOURS`] among the evaluated images, for dataset id `q`.
fn neighbours(l: &Loaded, q: usize) -> Vec<Vec<Hit>> {
    let rel = l.relevance.get();
    l.indexed
        .iter()
        .map(|x| {
            let Some(v) = x.vectors.get(q).and_then(Option::as_deref) else { return Vec::new() };
            let mut scored: Vec<(f32, u32)> = l
                .keep
                .iter()
                .filter(|&&d| d != q)
                .map(|&d| (dot(v, x.vectors[d].as_deref().unwrap_or(&[])), d as u32))
                .collect();
            let k = MAX_NEIGHBOURS.min(scored.len());
            if k == 0 {
                return Vec::new();
            }
            let better = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
            scored.select_nth_unstable_by(k - 1, better);
            scored.truncate(k);
            scored.sort_unstable_by(better);
            scored
                .into_iter()
                .map(|(score, d)| Hit {
                    id: d,
                    score,
                    rel: rel
                        .zip(l.position.get(&q))
                        .zip(l.position.get(&(d as usize)))
                        .map(|((r, &pq), &pd)| r.pair(pq, pd)),
                })
                .collect()
        })
        .collect()
}

/// Each model's top hits for an outside query; models without a text tower get none for text.
fn outside(
    cfg: &Config,
    entries: &[ModelEntry],
    l: &Loaded,
    encoders: &mut QueryEmbedders,
    q: &Query,
) -> anyhow::Result<OutsideHits> {
    let mut out = Vec::new();
    for (e, x) in entries.iter().zip(&l.indexed) {
        if matches!(q, Query::Text(_)) && e.text.is_none() {
            out.push((e.name.clone(), Vec::new()));
            continue;
        }
        let v = encoders.embed(cfg, e, q, true)?;
        let stored = l.keep.iter().map(|&d| (d as u32, x.vectors[d].as_deref().unwrap_or(&[])));
        let hits = crate::rank::rank(stored, &v).into_iter().take(MAX_NEIGHBOURS);
        out.push((e.name.clone(), hits.map(|(id, score)| Hit { id, score, rel: None }).collect()));
    }
    Ok(out)
}
