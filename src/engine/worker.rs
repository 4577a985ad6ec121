//! The engine side of `browse`: a worker thread that indexes, evaluates and answers outside
//! queries. It owns its messages (`Request` in, `EngineEvent` out) and knows nothing of the
//! terminal: the UI hands it a sink for events and keeps the `Sender` it returns.

use std::thread;

use crossbeam_channel::{unbounded, Sender};

use super::eval::{evaluate, EvalOptions};
use super::index::index_model;
use super::search::{Query, QueryEmbedders};
use crate::cli::DEFAULT_BATCH;
use crate::config::Config;
use crate::dataset::Dataset;
use crate::model::ModelEntry;
use crate::rank::{exact_ranking, rank};
use crate::report::EvalReport;
use crate::store::Store;

/// Neighbours computed per query and model.
pub const NEIGHBOURS: usize = 5;

/// One neighbour of a query: dataset id, cosine score, caption relevance to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: u32,
    pub score: f32,
    pub rel: Option<f32>,
}

/// Everything the engine computed for one model.
#[derive(Debug, Clone)]
pub struct ModelResult {
    pub name: String,
    pub device: String,
    /// Top neighbours of every query (dataset id order; empty for images not evaluated).
    pub hits: Vec<Vec<Hit>>,
    /// nDCG at the largest k of every query (dataset id order).
    pub ndcg: Vec<f64>,
}

/// What the UI asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Neighbours of an image file or a text that is not in the dataset.
    Outside(Query),
}

/// Per model (name), its hits for an outside query.
pub type OutsideHits = Vec<(String, Vec<Hit>)>;

/// What the engine reports back.
#[derive(Debug)]
pub enum EngineEvent {
    Status(String),
    Progress { model: String, done: usize, total: usize },
    Ready { models: Vec<ModelResult>, report: Box<EvalReport> },
    Outside { query: Query, hits: OutsideHits },
    Error(String),
}

/// Starts the worker; events go to `sink` (which returns false once nobody listens).
pub fn spawn(
    cfg: Config,
    ds: Dataset,
    entries: Vec<ModelEntry>,
    sink: impl Fn(EngineEvent) -> bool + Send + Sync + 'static,
) -> Sender<Request> {
    let (tx, rx) = unbounded::<Request>();
    thread::spawn(move || {
        let mut prepared = match prepare(&cfg, &ds, &entries, &sink) {
            Ok(p) => p,
            Err(e) => {
                sink(EngineEvent::Error(format!("{e:#}")));
                return;
            }
        };
        for Request::Outside(q) in rx {
            let ev = match outside(&cfg, &entries, &mut prepared, &q) {
                Ok(hits) => EngineEvent::Outside { query: q, hits },
                Err(e) => EngineEvent::Error(format!("{e:#}")),
            };
            if !sink(ev) {
                return;
            }
        }
    });
    tx
}

/// Per model: the vectors of the evaluated images (query index order) and their dataset ids.
struct Prepared {
    keep: Vec<usize>,
    vectors: Vec<Vec<Vec<f32>>>,
    /// Sessions for outside queries, opened once.
    encoders: QueryEmbedders,
}

fn prepare(
    cfg: &Config,
    ds: &Dataset,
    entries: &[ModelEntry],
    sink: &(dyn Fn(EngineEvent) -> bool + Sync),
) -> anyhow::Result<Prepared> {
    let store = Store::open(&cfg.store_dir)?;
    let mut indexed = Vec::new();
    for e in entries {
        sink(EngineEvent::Status(format!("opening {}", e.name)));
        let name = e.name.clone();
        let progress = |done: usize, total: usize| {
            sink(EngineEvent::Progress { model: name.clone(), done, total });
        };
        indexed.push(index_model(cfg, &store, ds, e, DEFAULT_BATCH, Some(&progress))?);
    }
    if !ds.has_captions() {
        anyhow::bail!(
            "{} has no captions: the TUI compares models by caption relevance",
            ds.root.display()
        );
    }
    sink(EngineEvent::Status("evaluating".into()));
    let ev = evaluate(&store, ds, &indexed, &EvalOptions::default())?;
    let vectors: Vec<Vec<Vec<f32>>> = indexed
        .iter()
        .map(|x| ev.keep.iter().map(|&i| x.vectors[i].clone().unwrap_or_default()).collect())
        .collect();
    let mut models = Vec::new();
    for (m, x) in indexed.iter().enumerate() {
        let refs: Vec<&[f32]> = vectors[m].iter().map(Vec::as_slice).collect();
        // Hits per dataset id; images not evaluated have none.
        let mut hits = vec![Vec::new(); ds.samples.len()];
        let mut ndcg = vec![0.0; ds.samples.len()];
        for (qi, &q) in ev.keep.iter().enumerate() {
            let row = ev.relevance.row(qi);
            hits[q] = exact_ranking(&refs, qi)
                .into_iter()
                .take(NEIGHBOURS)
                .map(|(d, score)| Hit {
                    id: ev.keep[d as usize] as u32,
                    score,
                    rel: Some(row[d as usize]),
                })
                .collect();
            ndcg[q] = ev.per_query_ndcg[m][qi];
        }
        models.push(ModelResult {
            name: x.meta.model.clone(),
            device: x.device.clone(),
            hits,
            ndcg,
        });
    }
    sink(EngineEvent::Ready { models, report: Box::new(ev.report) });
    Ok(Prepared { keep: ev.keep, vectors, encoders: QueryEmbedders::default() })
}

/// Each model's top hits for an outside query; models without a text tower get none for text.
fn outside(
    cfg: &Config,
    entries: &[ModelEntry],
    p: &mut Prepared,
    q: &Query,
) -> anyhow::Result<OutsideHits> {
    let mut out = Vec::new();
    for (m, e) in entries.iter().enumerate() {
        if matches!(q, Query::Text(_)) && e.text.is_none() {
            out.push((e.name.clone(), Vec::new()));
            continue;
        }
        let v = p.encoders.embed(cfg, e, q, true)?;
        let stored = p.vectors[m].iter().enumerate().map(|(i, x)| (i as u32, x.as_slice()));
        let hits = rank(stored, &v).into_iter().take(NEIGHBOURS);
        let hits = hits.map(|(i, score)| Hit { id: p.keep[i as usize] as u32, score, rel: None });
        out.push((e.name.clone(), hits.collect()));
    }
    Ok(out)
}
