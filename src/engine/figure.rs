//! `figure`: the article's contact sheet as PNG or SVG. Layout and drawing live in
//! `report::figure`; this file evaluates, picks the queries and lays out their blocks.

use std::collections::{BTreeSet, HashMap};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::eval::{evaluate, EvalOptions, QuerySet};
use super::html::thumbnails;
use super::index::index_all;
use super::output::{check_writable, say_stages, write_atomic};
use crate::cli::{FigureArgs, Pick};
use crate::config::Config;
use crate::report::figure::{self, Block, Row, Spec};
use crate::report::{self, EvalReport, QueryResult};
use crate::rng::SplitMix64;
use crate::say;
use crate::store::Store;

/// `embtui figure`.
pub fn run(cfg: &Config, a: &FigureArgs) -> anyhow::Result<ExitCode> {
    let svg = a.svg
        || match a.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref()
        {
            Some("svg") => true,
            Some("png") => false,
            _ => bail!("--out {}: name a .png or .svg file (or pass --svg)", a.out.display()),
        };
    check_writable(&a.out)?;
    let pick = a.pick.clone().unwrap_or(Pick::Disagree(6));
    let (count, named) = queries_arg(&a.queries)?;
    if named.is_empty() && matches!(pick, Pick::Disagree(_)) && a.models.names.len() < 2 {
        bail!("--pick disagree compares models: name two or more with --model, or use --pick random:N or --queries");
    }
    let ds = cfg.dataset(&a.data)?;
    if !ds.has_captions() {
        bail!("{} is a plain image folder: the figure frames neighbours by caption relevance, which needs captions", ds.root.display());
    }
    let queries = if named.is_empty() {
        let (set, announce) = QuerySet::resolve(count, ds.samples.len(), a.data.seed)?;
        if let Some(line) = announce {
            say!("{line}");
        }
        set
    } else {
        QuerySet::Images(named_ids(&ds, named)?)
    };
    let store = Store::open(&cfg.store_dir)?;
    let indexed = index_all(cfg, &store, &ds, &a.models.names, a.batch.size, true)?;
    let k = usize::try_from(a.k).unwrap_or(5);
    let threshold = a.threshold.unwrap_or_else(|| a.relevance.default_threshold());
    let opts = EvalOptions {
        ks: vec![k],
        method: a.relevance,
        threshold,
        threshold_given: a.threshold.is_some(),
        bootstrap: 100,
        per_query: true,
        queries,
        ..EvalOptions::default()
    };
    let on_stage = say_stages("figure");
    let rep = evaluate(cfg, &store, &ds, &indexed, &opts, &on_stage)?.report;
    let chosen = choose(&rep, named, &pick, a.data.seed)?;
    let spec = spec_of(&rep, &chosen);
    let layout = figure::layout(&spec);
    let names: BTreeSet<String> = layout.tiles.iter().map(|t| t.image.clone()).collect();
    let thumbs = thumbnails(&ds.images_dir, &names);
    let get = |n: &str| thumbs.get(n).cloned();
    let bytes =
        if svg { figure::svg(&layout, &get)?.into_bytes() } else { figure::png(&layout, &get)? };
    write_atomic(&a.out, &bytes)?;
    say!(
        "wrote {} ({}×{} px, {} queries, {} tiles, {} KB)",
        a.out.display(),
        layout.width,
        layout.height,
        chosen.len(),
        layout.tiles.len(),
        bytes.len() / 1024
    );
    if a.json {
        let doc = serde_json::json!({
            "out": a.out,
            "format": if svg { "svg" } else { "png" },
            "width": layout.width,
            "height": layout.height,
            "threshold": threshold,
            "metric": rep.main_metric(),
            "queries": chosen.iter().map(|&i| &rep.per_query[i].image).collect::<Vec<_>>(),
            "tiles": layout.tiles,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--queries N` or `all` (how many to evaluate), or names (the queries themselves).
fn queries_arg(arg: &[String]) -> anyhow::Result<(Option<crate::cli::QueryCount>, &[String])> {
    if let [one] = arg {
        if one == "0" {
            bail!("--queries 0 evaluates nothing; give at least 1, or `all`");
        }
        if let Ok(count) = crate::cli::parse_queries(one) {
            return Ok((Some(count), &[]));
        }
    }
    Ok((None, arg))
}

/// Dataset ids of the images named by `--queries a.jpg,b.jpg`.
fn named_ids(ds: &crate::dataset::Dataset, names: &[String]) -> anyhow::Result<Vec<usize>> {
    positions(names, ds.samples.iter().map(|s| s.name.as_str()), "image of the dataset")
}

/// Where each of `names` is among `items`; an unknown name is an error naming the first item
/// as an example.
fn positions<'a>(
    names: &[String],
    items: impl Iterator<Item = &'a str>,
    what: &str,
) -> anyhow::Result<Vec<usize>> {
    let items: Vec<&str> = items.collect();
    let at: HashMap<&str, usize> = items.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    names
        .iter()
        .map(|n| {
            at.get(n.as_str()).copied().with_context(|| {
                format!(
                    "--queries: no {what} is named {:?}; use names as in the caption file, e.g. {}",
                    crate::text::sanitize(n),
                    items.first().copied().unwrap_or("")
                )
            })
        })
        .collect()
}

/// The queries (indices into `per_query`) a figure shows: the named ones, the most
/// disagreed on, or a seeded random draw.
fn choose(
    rep: &EvalReport,
    named: &[String],
    pick: &Pick,
    seed: u64,
) -> anyhow::Result<Vec<usize>> {
    let pq = &rep.per_query;
    if !named.is_empty() {
        return positions(named, pq.iter().map(|q| q.image.as_str()), "evaluated image");
    }
    Ok(match *pick {
        Pick::Disagree(n) => report::most_disagreeing(pq, &rep.main_metric(), n),
        Pick::Random(n) => {
            let mut rng = SplitMix64(seed);
            let mut order: Vec<usize> = (0..pq.len()).collect();
            for i in 0..n.min(order.len()) {
                let j = i + rng.below(order.len() - i);
                order.swap(i, j);
            }
            order.truncate(n.min(pq.len()));
            order
        }
    })
}

/// The figure's content: a block per chosen query, a row per model (report order).
fn spec_of(rep: &EvalReport, chosen: &[usize]) -> Spec {
    let metric = rep.main_metric();
    let blocks = chosen.iter().map(|&i| block_of(rep, &rep.per_query[i], &metric)).collect();
    Spec {
        title: format!(
            "embtui · {} ({} images) · caption relevance {} τ={}",
            rep.dataset.root, rep.dataset.images, rep.relevance.method, rep.relevance.threshold
        ),
        threshold: rep.relevance.threshold,
        metric,
        blocks,
    }
}

fn block_of(rep: &EvalReport, q: &QueryResult, metric: &str) -> Block {
    Block {
        query: q.image.clone(),
        caption: q.caption.clone(),
        rows: rep
            .models
            .iter()
            .filter_map(|m| {
                let qm = q.models.get(&m.name)?;
                Some(Row {
                    model: m.name.clone(),
                    hits: qm.top.clone(),
                    score: qm.metrics.get(metric).copied().unwrap_or(0.0),
                })
            })
            .collect(),
    }
}
