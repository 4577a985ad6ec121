//! `browse`: the TUI's engine side. Indexes and evaluates on a worker thread, streams progress,
//! serves thumbnail and outside-query requests; the UI thread only draws.

use std::process::ExitCode;
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};
use ratatui::layout::Size;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::Resize;

use super::eval::{exact_ranking, EvalOptions};
use super::index::index_model;
use crate::cli::{DatasetArgs, ImageProtocol};
use crate::config::Config;
use crate::dataset::Dataset;
use crate::model::ModelEntry;
use crate::relevance::Method;
use crate::store::Store;
use crate::tui::event::{run_loop, Event, Events};
use crate::tui::{App, EngineEvent, Hit, ModelResult, Request, ThumbKey, TOP_K};

/// Thumbnail size in terminal cells.
pub const THUMB_CELLS: Size = Size { width: 8, height: 4 };

/// Opens the TUI on a dataset with the given models.
pub fn browse(
    cfg: &Config,
    data: &DatasetArgs,
    models: &[String],
    protocol: ImageProtocol,
) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(data)?;
    let entries = cfg.models(models)?;
    let items = ds.samples.iter().map(|s| (s.name.clone(), s.captions.clone())).collect();
    let mut app = App::new(
        &ds.root.display().to_string(),
        items,
        entries.iter().map(|e| e.name.clone()).collect(),
    );
    app.text_tower = entries.iter().any(|e| e.text.is_some());
    let mut terminal = ratatui::try_init()?;
    let picker = picker(protocol);
    let events = Events::new();
    events.spawn_input();
    let (req_tx, req_rx) = unbounded::<Request>();
    let (thumb_tx, thumb_rx) = unbounded::<ThumbKey>();
    let (query_tx, query_rx) = unbounded::<Request>();
    let paths: Vec<std::path::PathBuf> = ds.samples.iter().map(|s| s.path.clone()).collect();
    let external = std::sync::Arc::new(std::sync::Mutex::new(None::<std::path::PathBuf>));
    spawn_thumbs(picker, paths, external.clone(), thumb_rx, events.tx.clone());
    spawn_engine(cfg.clone(), ds, entries, query_rx, external, events.tx.clone());
    // Route requests: thumbnails to their worker, queries to the engine.
    thread::spawn(move || {
        for r in req_rx {
            let _ = match r {
                Request::Thumb(k) => thumb_tx.send(k).map_err(|_| ()),
                other => query_tx.send(other).map_err(|_| ()),
            };
        }
    });
    let res = run_loop(&mut terminal, &mut app, &events.rx, &req_tx);
    ratatui::restore();
    res.map(|()| ExitCode::SUCCESS)
}

fn picker(protocol: ImageProtocol) -> Picker {
    let queried = || Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks());
    match protocol {
        ImageProtocol::Auto => queried(),
        ImageProtocol::Halfblocks => Picker::halfblocks(),
        other => {
            let mut p = queried();
            p.set_protocol_type(match other {
                ImageProtocol::Sixel => ProtocolType::Sixel,
                ImageProtocol::Kitty => ProtocolType::Kitty,
                _ => ProtocolType::Iterm2,
            });
            p
        }
    }
}

/// Decodes, scales and encodes thumbnails off the UI thread; each is made once (the UI caches).
fn spawn_thumbs(
    picker: Picker,
    paths: Vec<std::path::PathBuf>,
    external: std::sync::Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
    rx: Receiver<ThumbKey>,
    tx: Sender<Event>,
) {
    thread::spawn(move || {
        for key in rx {
            let path = match key {
                ThumbKey::Image(id) => paths.get(id as usize).cloned(),
                ThumbKey::External => external.lock().ok().and_then(|g| g.clone()),
            };
            let Some(path) = path else { continue };
            let Ok(img) = crate::model::preprocess::load_rgb(&path) else { continue };
            let small = image::DynamicImage::ImageRgb8(image::imageops::thumbnail(&img, 160, 160));
            if let Ok(p) = picker.new_protocol(small, THUMB_CELLS, Resize::Fit(None)) {
                if tx
                    .send(Event::Engine(EngineEvent::Thumb { id: key, protocol: Box::new(p) }))
                    .is_err()
                {
                    return;
                }
            }
        }
    });
}

fn spawn_engine(
    cfg: Config,
    ds: Dataset,
    entries: Vec<ModelEntry>,
    rx: Receiver<Request>,
    external: std::sync::Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
    tx: Sender<Event>,
) {
    thread::spawn(move || {
        let send = |e: EngineEvent| tx.send(Event::Engine(e)).is_ok();
        let mut prepared = match prepare(&cfg, &ds, &entries, &send) {
            Ok(p) => p,
            Err(e) => {
                send(EngineEvent::Error(format!("{e:#}")));
                return;
            }
        };
        for r in rx {
            let ev = match r {
                Request::QueryImage(path) => {
                    match query(&cfg, &entries, &mut prepared, &super::Query::Image(&path)) {
                        Ok(hits) => {
                            if let Ok(mut g) = external.lock() {
                                *g = Some(path.clone());
                            }
                            EngineEvent::External { label: path.display().to_string(), hits }
                        }
                        Err(e) => EngineEvent::Error(format!("{e:#}")),
                    }
                }
                Request::QueryText(text) => {
                    match query(&cfg, &entries, &mut prepared, &super::Query::Text(&text)) {
                        Ok(hits) => {
                            if let Ok(mut g) = external.lock() {
                                *g = None; // a text query has no picture
                            }
                            EngineEvent::External { label: format!("text: {text}"), hits }
                        }
                        Err(e) => EngineEvent::Error(format!("{e:#}")),
                    }
                }
                Request::Thumb(_) => continue,
            };
            if !send(ev) {
                return;
            }
        }
    });
}

/// Per model: the vectors of the evaluated images (query index order) and their dataset ids.
struct Prepared {
    keep: Vec<usize>,
    vectors: Vec<Vec<Vec<f32>>>,
    /// Sessions for outside queries, opened once.
    encoders: super::QueryEmbedders,
}

fn prepare(
    cfg: &Config,
    ds: &Dataset,
    entries: &[ModelEntry],
    send: &(dyn Fn(EngineEvent) -> bool + Sync),
) -> anyhow::Result<Prepared> {
    let store = Store::open(&cfg.store_dir)?;
    let mut indexed = Vec::new();
    for e in entries {
        send(EngineEvent::Status(format!("opening {}", e.name)));
        let name = e.name.clone();
        let progress = |done: usize, total: usize| {
            send(EngineEvent::Progress { model: name.clone(), done, total });
        };
        indexed.push(index_model(cfg, &store, ds, e, 16, Some(&progress))?);
    }
    if !ds.has_captions() {
        anyhow::bail!(
            "{} has no captions: the TUI compares models by caption relevance",
            ds.root.display()
        );
    }
    send(EngineEvent::Status("evaluating".into()));
    let opts = EvalOptions {
        ks: vec![1, 5, 10],
        method: Method::Tfidf,
        threshold: 0.3,
        bootstrap: 1000,
        seed: 0,
    };
    let ev = super::eval::evaluate(&store, ds, &indexed, &opts)?;
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
                .take(TOP_K)
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
            ndcg10: ndcg,
        });
    }
    send(EngineEvent::Ready { models, report: Box::new(ev.report) });
    Ok(Prepared { keep: ev.keep, vectors, encoders: super::QueryEmbedders::default() })
}

/// Each model's top hits for an outside query; models without a text tower get none for text.
fn query(
    cfg: &Config,
    entries: &[ModelEntry],
    p: &mut Prepared,
    q: &super::Query<'_>,
) -> anyhow::Result<Vec<(String, Vec<Hit>)>> {
    let mut out = Vec::new();
    for (m, e) in entries.iter().enumerate() {
        if matches!(q, super::Query::Text(_)) && e.text.is_none() {
            out.push((e.name.clone(), Vec::new()));
            continue;
        }
        let v = p.encoders.embed(cfg, e, q, false)?;
        let stored = p.vectors[m].iter().enumerate().map(|(i, x)| (i as u32, x.as_slice()));
        let hits = super::eval::rank(stored, &v).into_iter().take(TOP_K);
        let hits = hits.map(|(i, score)| Hit { id: p.keep[i as usize] as u32, score, rel: None });
        out.push((e.name.clone(), hits.collect()));
    }
    Ok(out)
}
