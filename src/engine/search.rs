//! `search` (nearest dataset images to an image file or a text) and `text-embed`, with the
//! query encoders they and the TUI share.

use std::collections::hash_map::{Entry, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::index::index_model;
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
                    Entry::Vacant(e) => e.insert(super::open_model(cfg, &entry.name, quiet)?),
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
    let x = index_model(cfg, &store, &ds, &entry, DEFAULT_BATCH, None, None)?;
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
    if let (true, Query::Image(image)) = (show, &query) {
        show_thumb(image, "query");
    }
    let width = crate::text::terminal_width();
    let mut table = crate::text::Table::new(&[
        ("#", true, 0),
        ("cosine", true, 0),
        ("image", false, 0),
        ("first caption", false, 0),
    ])
    .flexible(3);
    for (rank, (h, &(id, _))) in result.hits.iter().zip(&hits).enumerate() {
        let cap = h.caption.clone().unwrap_or_default();
        if show {
            show_thumb(&ds.samples[id as usize].path, &h.image);
            let line = format!(
                "{:>2}. {:.3}  {}  {}",
                rank + 1,
                h.score,
                sanitize(&h.image),
                sanitize(&cap)
            );
            writeln!(stdout, "{}", crate::text::fit(&line, width))?;
        }
        table.row(vec![(rank + 1).to_string(), format!("{:.3}", h.score), h.image.clone(), cap]);
    }
    if !show {
        write!(stdout, "{}", table.render(width))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show_thumb(path: &Path, label: &str) {
    let conf = viuer::Config { width: Some(24), absolute_offset: false, ..Default::default() };
    match crate::decode::load_rgb(path) {
        Ok(img) => {
            if let Err(e) = viuer::print(&image::DynamicImage::ImageRgb8(img), &conf) {
                warn!("cannot draw {label}: {e}");
            }
        }
        Err(e) => warn!("cannot draw {label}: {e}"),
    }
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
