//! `search` (nearest dataset images to an image file or a text) and `text-embed`, with the
//! query encoders they and the TUI share.

use std::collections::hash_map::{Entry, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::index::{index_model, Vectors};
use crate::cli::{SearchArgs, TextEmbedArgs, DEFAULT_BATCH};
use crate::config::Config;
use crate::model::{Embedder, ModelEntry, TextEmbedder};
use crate::rank::rank;
use crate::store::Store;
use crate::text::sanitize;
use crate::warn;

/// What a search starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Image(PathBuf),
    Text(String),
}

impl Query {
    /// How the query is shown: its path, or `text: …`.
    pub fn label(&self) -> String {
        match self {
            Query::Image(p) => p.display().to_string(),
            Query::Text(t) => format!("text: {t}"),
        }
    }
}

/// Query encoders, opened on first use and kept: the TUI embeds many queries per session.
#[derive(Default)]
pub struct QueryEmbedders {
    images: HashMap<String, Embedder>,
    texts: HashMap<String, TextEmbedder>,
}

impl QueryEmbedders {
    /// Embeds a query (image file or text) with `entry`'s model, in the dataset's vector space.
    pub fn embed(
        &mut self,
        cfg: &Config,
        entry: &ModelEntry,
        query: &Query,
        quiet: bool,
    ) -> anyhow::Result<Vec<f32>> {
        match query {
            Query::Image(path) => {
                let emb = match self.images.entry(entry.name.clone()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        e.insert(super::open_model(cfg, &entry.name, quiet, super::Workload::One)?)
                    }
                };
                let mut input = vec![0.0f32; (entry.size as usize).pow(2) * 3];
                crate::model::preprocess::load_tensor(path, entry, &cfg.decode, &mut input)
                    .with_context(|| format!("query image {}", path.display()))?;
                Ok(emb.embed_batch(&input, 1)?)
            }
            Query::Text(text) => {
                let t = match self.texts.entry(entry.name.clone()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(TextEmbedder::open(entry, &cfg.models_dir)?),
                };
                Ok(t.embed(text)?)
            }
        }
    }
}

/// One neighbour in `search --json`.
#[derive(Debug, Serialize)]
pub struct SearchHit {
    pub image: String,
    pub score: f32,
    pub caption: Option<String>,
}

/// The document `search --json` prints.
#[derive(Debug, Serialize)]
pub struct SearchResult {
    pub query: String,
    pub model: String,
    pub exact: bool,
    pub hits: Vec<SearchHit>,
}

/// `embtui search`.
pub fn run(cfg: &Config, a: &SearchArgs) -> anyhow::Result<ExitCode> {
    let query = match (&a.image, &a.text) {
        (Some(p), _) => Query::Image(p.clone()),
        (_, Some(t)) => Query::Text(t.clone()),
        (None, None) => anyhow::bail!("give a query image or --text"),
    };
    let ds = cfg.dataset(&a.data)?;
    let store = Store::open(&cfg.store_dir)?;
    let entry = cfg.model(&a.model.name)?;
    let x = index_model(cfg, &store, &ds, &entry, DEFAULT_BATCH, None, None, Vectors::Resident)?;
    let q = QueryEmbedders::default().embed(cfg, &entry, &query, false)?;
    let hits: Vec<(u32, f32)> = if a.exact {
        let stored = x.vectors.iter().enumerate();
        let mut all = rank(stored.filter_map(|(i, v)| Some((i as u32, v.as_deref()?))), &q);
        all.truncate(a.k);
        all
    } else {
        let meta = x.index.as_ref().context("the selection has no arroy index")?;
        let search_k = super::eval::default_search_k(meta.n_trees);
        store.ann(meta, &q, a.k, Some(search_k))?
    };
    if hits.is_empty() {
        warn!("nothing found");
        return Ok(ExitCode::from(1));
    }
    let result = SearchResult {
        query: query.label(),
        model: entry.name.clone(),
        exact: a.exact,
        hits: hits
            .iter()
            .map(|&(id, score)| {
                let s = &ds.samples[id as usize];
                SearchHit { image: s.name.clone(), score, caption: s.captions.first().cloned() }
            })
            .collect(),
    };
    let show = a.show && std::io::IsTerminal::is_terminal(&std::io::stdout());
    if a.show && !show {
        warn!("--show needs a terminal on stdout; printing the hits without thumbnails");
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&result)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = crate::text::terminal_width();
    if show {
        let paths: Vec<PathBuf> =
            hits.iter().map(|&(id, _)| ds.samples[id as usize].path.clone()).collect();
        show_hits(&mut stdout, &query, &result, &paths, width)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::text::Table::new(&[
        ("#", true, 0),
        ("cosine", true, 0),
        ("image", false, 0),
        ("first caption", false, 0),
    ])
    .flexible(3);
    for (rank, h) in result.hits.iter().enumerate() {
        let cap = h.caption.clone().unwrap_or_default();
        table.row(vec![(rank + 1).to_string(), format!("{:.3}", h.score), h.image.clone(), cap]);
    }
    write!(stdout, "{}", table.render(width))?;
    Ok(ExitCode::SUCCESS)
}

/// `search --show`: the query (when it is an image) and the hits as one labelled grid.
fn show_hits(
    stdout: &mut impl Write,
    query: &Query,
    result: &SearchResult,
    paths: &[PathBuf],
    width: usize,
) -> anyhow::Result<()> {
    let mut tiles: Vec<(PathBuf, String)> = Vec::new();
    if let Query::Image(image) = query {
        let name = image.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        tiles.push((image.clone(), format!("query {name}")));
    }
    for (rank, (h, path)) in result.hits.iter().zip(paths).enumerate() {
        tiles.push((path.clone(), format!("{}. {:.3} {}", rank + 1, h.score, h.image)));
    }
    show_grid(stdout, &tiles, width, crate::text::terminal_height())?;
    if let Query::Text(t) = query {
        writeln!(stdout, "{}", crate::text::fit(&format!("query: \"{}\"", sanitize(t)), width))?;
    }
    Ok(())
}

/// Tile sizes for `n` thumbnails in a `width × height` terminal: (columns per tile, rows of
/// image per tile, tiles per grid row), so that every grid row (image + one label line) fits
/// on one screen with a line to spare. Half blocks: a tile of w columns × h rows shows w × 2h
/// pixels, so h = w / 2 keeps photos square-ish.
pub fn grid_shape(n: usize, width: usize, height: usize) -> (usize, usize, usize) {
    let n = n.max(1);
    let mut best = (1, 1, n);
    for per_row in 1..=n {
        let rows = n.div_ceil(per_row);
        let w = ((width + 1) / per_row).saturating_sub(1).min(40);
        let h_fit = (height.saturating_sub(2) / rows).saturating_sub(1);
        let h = (w / 2).min(h_fit);
        if w < 6 || h < 2 {
            continue;
        }
        // Prefer the largest tiles; among equal sizes, fewer grid rows.
        if w.min(2 * h) > best.0.min(2 * best.1) {
            best = (w, h, per_row);
        }
    }
    best
}

/// The query and hits as a grid of thumbnails that fits one screen, each labelled (rank,
/// cosine, name) on the line below it.
fn show_grid(
    out: &mut impl Write,
    tiles: &[(PathBuf, String)],
    width: usize,
    height: usize,
) -> anyhow::Result<()> {
    let (w, h, per_row) = grid_shape(tiles.len(), width, height);
    let (pw, ph) = (w as u32, 2 * h as u32);
    for row in tiles.chunks(per_row) {
        let cols = row.len() as u32;
        let mut canvas = image::RgbImage::new(cols * pw + cols.saturating_sub(1), ph);
        for (i, (path, label)) in row.iter().enumerate() {
            match crate::decode::load_rgb(path) {
                Ok(img) => {
                    let t = image::imageops::thumbnail(&img, pw, ph);
                    let x = i as u32 * (pw + 1) + (pw - t.width()) / 2;
                    let y = (ph - t.height()) / 2;
                    image::imageops::overlay(&mut canvas, &t, i64::from(x), i64::from(y));
                }
                Err(e) => warn!("cannot draw {}: {e}", sanitize(label)),
            }
        }
        out.flush()?;
        let conf = viuer::Config {
            width: Some(canvas.width()),
            height: Some(h as u32),
            absolute_offset: false,
            truecolor: crate::text::truecolor(),
            ..Default::default()
        };
        if let Err(e) = viuer::print(&image::DynamicImage::ImageRgb8(canvas), &conf) {
            warn!("cannot draw thumbnails: {e}");
        }
        let labels: Vec<String> =
            row.iter().map(|(_, l)| format!("{:<w$}", crate::text::fit(&sanitize(l), w))).collect();
        writeln!(out, "{}", labels.join(" ").trim_end())?;
    }
    Ok(())
}

/// One line of `text-embed`.
#[derive(Debug, Serialize)]
struct TextEmbedding<'a> {
    model: &'a str,
    text: &'a str,
    ids: Vec<i64>,
    embedding: Vec<f32>,
}

/// `embtui text-embed`.
pub fn text_embed(cfg: &Config, a: &TextEmbedArgs) -> anyhow::Result<ExitCode> {
    let entry = cfg.model(&a.model.name)?;
    let mut t = TextEmbedder::open(&entry, &cfg.models_dir)?;
    let mut rows = Vec::new();
    for line in &a.text {
        rows.push(TextEmbedding {
            model: &entry.name,
            text: line,
            ids: t.token_ids(line)?,
            embedding: t.embed(line)?,
        });
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::text::Table::new(&[
        ("text", false, 0),
        ("tokens", true, 1),
        ("dim", true, 2),
        ("first values", false, 3),
    ])
    .flexible(0);
    for r in &rows {
        let head: Vec<String> = r.embedding.iter().take(4).map(|x| format!("{x:+.3}")).collect();
        table.row(vec![
            r.text.to_owned(),
            r.ids.len().to_string(),
            r.embedding.len().to_string(),
            head.join(" "),
        ]);
    }
    write!(out, "{}", table.render(crate::text::terminal_width()))?;
    Ok(ExitCode::SUCCESS)
}
