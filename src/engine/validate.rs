//! `validate`: how far caption relevance agrees with people. Human ratings of image pairs (CxC's
//! Semantic Image Similarity, Flickr8k's expert scores, or any `image1,image2,score` CSV) against
//! each relevance method: Spearman ρ and Kendall τ-b with bootstrap intervals that resample the
//! first images of the pairs (pairs sharing a query image are not independent), the mean
//! relevance at each human level, and the threshold τ that best separates pairs people rate
//! ≥ 4 from pairs they rate ≤ 1.
//!
//! Also the pair reader behind `relevance --pairs`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::ValidateArgs;
use crate::config::Config;
use crate::dataset::Dataset;
use crate::metrics as m;
use crate::relevance::{Method, Relevance};
use crate::report::Stat;
use crate::rng::SplitMix64;
use crate::text::{sanitize, terminal_width, Table};

/// Pairs people rate at least this are "top-rated" (CxC: 4 = same meaning, minor details differ).
const TOP: f64 = 4.0;
/// Pairs people rate at most this are "unrelated".
const UNRELATED: f64 = 1.0;

/// One rated pair, as dataset sample indices.
#[derive(Debug, Clone)]
pub struct Rated {
    pub a: usize,
    pub b: usize,
    pub score: f64,
}

/// A CSV row: its fields, and the pair's sample indices when both images are known.
pub type PairRow = (Vec<String>, Option<(usize, usize)>);

/// The pairs of a CSV whose images are in the dataset.
pub struct PairFile {
    pub header: Vec<String>,
    /// Every row in file order.
    pub rows: Vec<PairRow>,
    /// Column of the score, if any.
    pub score_col: Option<usize>,
    pub unknown: usize,
}

/// Reads a pair CSV (header, columns image1,image2[,score|agg_score], more columns allowed).
pub fn read_pairs(path: &Path, ds: &Dataset) -> anyhow::Result<PairFile> {
    let text = crate::files::read_to_string(path, 1 << 30, "a pair CSV")
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{}: no CSV header", path.display()))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let col = |names: &[&str]| {
        header.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let (Some(ia), Some(ib)) = (col(&["image1", "image_1", "a"]), col(&["image2", "image_2", "b"]))
    else {
        bail!(
            "{}: the header names no image1,image2 columns (found: {}); the first line must be e.g. `image1,image2,score`",
            path.display(),
            sanitize(&header.join(","))
        );
    };
    let score_col = col(&["score", "agg_score", "rating", "human"]);
    let index: HashMap<&str, usize> =
        ds.samples.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut rows = Vec::new();
    let mut unknown = 0;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            anyhow::anyhow!(
                "{}:{line}: {e}; every row needs {} fields",
                path.display(),
                header.len()
            )
        })?;
        let fields: Vec<String> = rec.iter().map(|f| f.trim().to_owned()).collect();
        let pair = if let (Some(&a), Some(&b)) =
            (index.get(fields[ia].as_str()), index.get(fields[ib].as_str()))
        {
            Some((a, b))
        } else {
            unknown += 1;
            None
        };
        rows.push((fields, pair));
    }
    Ok(PairFile { header, rows, score_col, unknown })
}

/// One level of human rating (the score rounded).
#[derive(Debug, Serialize)]
#[allow(clippy::struct_field_names)] // `level` is the JSON name users read
pub struct Level {
    pub level: i64,
    pub pairs: usize,
    pub mean_relevance: f64,
    /// Share of the level's pairs at or above the method's threshold.
    pub share_relevant: f64,
}

/// The threshold that best separates top-rated from unrelated pairs (largest difference of the
/// two shares above it).
#[derive(Debug, Serialize)]
pub struct Separation {
    pub threshold: f32,
    pub top_rated_relevant: f64,
    pub unrelated_relevant: f64,
}

/// One method's agreement with people.
#[derive(Debug, Serialize)]
pub struct Agreement {
    pub method: Method,
    pub spearman: Stat,
    pub kendall_tau_b: Stat,
    /// The threshold `eval` uses for this method by default.
    pub threshold: f32,
    pub top_rated_relevant: f64,
    pub unrelated_relevant: f64,
    pub best: Separation,
    pub levels: Vec<Level>,
}

/// `embtui validate --json`.
#[derive(Debug, Serialize)]
pub struct ValidateReport {
    pub dataset: String,
    pub human: String,
    pub pairs: usize,
    pub first_images: usize,
    pub unknown_pairs: usize,
    pub bootstrap_resamples: usize,
    pub seed: u64,
    pub methods: Vec<Agreement>,
}

/// `embtui validate`.
pub fn run(cfg: &Config, a: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let ds = Dataset::open_captions(&a.dataset, a.format)?;
    let methods: Vec<Method> = a.relevance.map_or_else(|| Method::ALL.to_vec(), |m| vec![m]);
    let Some(human) = &a.human else {
        return halves(cfg, &ds, &methods, a.json);
    };
    let file = read_pairs(human, &ds)?;
    let Some(sc) = file.score_col else {
        bail!("{}: no score column (score or agg_score) in the header", human.display());
    };
    let mut rated = Vec::new();
    for (i, (fields, pair)) in file.rows.iter().enumerate() {
        let Some((x, y)) = pair else { continue };
        let score: f64 = fields[sc].parse().map_err(|_| {
            anyhow::anyhow!(
                "{}:{}: score `{}` is not a number; fix or remove the row",
                human.display(),
                i + 2,
                sanitize(&fields[sc])
            )
        })?;
        rated.push(Rated { a: *x, b: *y, score });
    }
    if rated.len() < 10 {
        bail!(
            "{}: only {} of {} pairs name images of {} (names as in its caption file)",
            human.display(),
            rated.len(),
            file.rows.len(),
            ds.root.display()
        );
    }
    if file.unknown > 0 {
        crate::warn!("{} pairs name images that are not in the dataset; left out", file.unknown);
    }
    let captions: Vec<Vec<String>> = ds.samples.iter().map(|s| s.captions.clone()).collect();
    let out: Vec<Agreement> = super::captions::relevances(cfg, &methods, &captions)?
        .iter()
        .map(|rel| agreement(rel, &rated, a.bootstrap, a.seed))
        .collect();
    let first_images = rated.iter().map(|r| r.a).collect::<std::collections::HashSet<_>>().len();
    let report = ValidateReport {
        dataset: ds.root.display().to_string(),
        human: human.display().to_string(),
        pairs: rated.len(),
        first_images,
        unknown_pairs: file.unknown,
        bootstrap_resamples: a.bootstrap,
        seed: a.seed,
        methods: out,
    };
    let mut stdout = std::io::stdout().lock();
    if a.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(stdout, "{}", render(&report, terminal_width()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Spearman and Kendall τ-b of `r` against `h`, with 95% intervals from resampling the pairs'
/// first images (all of an image's pairs go in or out together).
fn intervals(rated: &[Rated], r: &[f64], h: &[f64], resamples: usize, seed: u64) -> (Stat, Stat) {
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, p) in rated.iter().enumerate() {
        groups.entry(p.a).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    // One seed per resample, drawn from one stream: SplitMix64 states that differ by a
    // multiple of its increment would replay each other's draws, shifted.
    let mut master = SplitMix64(seed);
    let seeds: Vec<u64> = (0..resamples).map(|_| master.next_u64()).collect();
    let stats: Vec<(f64, f64)> = seeds
        .par_iter()
        .map(|&s| {
            let mut rng = SplitMix64(s);
            let mut x = Vec::with_capacity(r.len());
            let mut y = Vec::with_capacity(r.len());
            for _ in 0..groups.len() {
                for &i in &groups[rng.below(groups.len())] {
                    x.push(r[i]);
                    y.push(h[i]);
                }
            }
            (m::spearman(&x, &y), m::kendall_tau_b(&x, &y))
        })
        .collect();
    let interval = |mut v: Vec<f64>| -> [f64; 2] {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        [at(0.025), at(0.975)]
    };
    (
        Stat { mean: m::spearman(r, h), ci95: interval(stats.iter().map(|s| s.0).collect()) },
        Stat { mean: m::kendall_tau_b(r, h), ci95: interval(stats.iter().map(|s| s.1).collect()) },
    )
}

/// Mean relevance and the share at or above `threshold` per rounded human score.
fn levels(r: &[f64], h: &[f64], threshold: f32) -> Vec<Level> {
    let mut out: Vec<Level> = Vec::new();
    for level in 0..=5i64 {
        let at: Vec<f64> =
            r.iter().zip(h).filter(|(_, &s)| s.round() as i64 == level).map(|(x, _)| *x).collect();
        if at.is_empty() {
            continue;
        }
        out.push(Level {
            level,
            pairs: at.len(),
            mean_relevance: at.iter().sum::<f64>() / at.len() as f64,
            share_relevant: at.iter().filter(|&&x| x >= f64::from(threshold)).count() as f64
                / at.len() as f64,
        });
    }
    out
}

/// One method against the ratings.
pub fn agreement(rel: &Relevance, rated: &[Rated], resamples: usize, seed: u64) -> Agreement {
    let r: Vec<f64> = rated.iter().map(|p| f64::from(rel.pair(p.a, p.b))).collect();
    let h: Vec<f64> = rated.iter().map(|p| p.score).collect();
    let (spearman, kendall_tau_b) = intervals(rated, &r, &h, resamples, seed);
    let threshold = rel.method.default_threshold();
    let share = |sel: &dyn Fn(f64) -> bool, tau: f64| {
        let (mut n, mut above) = (0usize, 0usize);
        for (x, &s) in r.iter().zip(&h) {
            if sel(s) {
                n += 1;
                above += usize::from(*x >= tau);
            }
        }
        above as f64 / n.max(1) as f64
    };
    let top = |s: f64| s >= TOP;
    let unrelated = |s: f64| s <= UNRELATED;
    let best = (0..=100)
        .map(|t| {
            let tau = f64::from(t) / 100.0;
            (tau, share(&top, tau), share(&unrelated, tau))
        })
        .max_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)).then(b.0.total_cmp(&a.0)))
        .map_or(
            Separation { threshold, top_rated_relevant: 0.0, unrelated_relevant: 0.0 },
            |(tau, t, u)| Separation {
                threshold: tau as f32,
                top_rated_relevant: t,
                unrelated_relevant: u,
            },
        );
    let levels = levels(&r, &h, threshold);
    Agreement {
        method: rel.method,
        spearman,
        kendall_tau_b,
        threshold,
        top_rated_relevant: share(&top, f64::from(threshold)),
        unrelated_relevant: share(&unrelated, f64::from(threshold)),
        best,
        levels,
    }
}

/// The report as tables.
pub fn render(r: &ValidateReport, width: usize) -> String {
    let mut s = format!(
        "caption relevance vs people: {} rated pairs ({} first images; {} resamples of them)\n",
        r.pairs, r.first_images, r.bootstrap_resamples
    );
    let mut t = Table::new(&[
        ("method", false, 0),
        ("Spearman ρ [95% CI]", true, 0),
        ("Kendall τ-b [95% CI]", true, 3),
        ("τ", true, 0),
        ("≥4 rel.", true, 1),
        ("≤1 rel.", true, 1),
        ("best τ", true, 2),
        ("≥4 / ≤1 there", true, 2),
    ]);
    for a in &r.methods {
        t.row(vec![
            a.method.to_string(),
            format!(
                "{:.3} [{:.3}, {:.3}]",
                a.spearman.mean, a.spearman.ci95[0], a.spearman.ci95[1]
            ),
            format!(
                "{:.3} [{:.3}, {:.3}]",
                a.kendall_tau_b.mean, a.kendall_tau_b.ci95[0], a.kendall_tau_b.ci95[1]
            ),
            format!("{:.2}", a.threshold),
            format!("{:.1}%", 100.0 * a.top_rated_relevant),
            format!("{:.1}%", 100.0 * a.unrelated_relevant),
            format!("{:.2}", a.best.threshold),
            format!(
                "{:.1}% / {:.1}%",
                100.0 * a.best.top_rated_relevant,
                100.0 * a.best.unrelated_relevant
            ),
        ]);
    }
    s.push_str(&t.render(width));
    s.push_str("\nmean relevance per human level (rounded score)\n");
    let mut cols: Vec<(String, bool, u8)> =
        vec![("level".into(), true, 0), ("pairs".into(), true, 1)];
    cols.extend(r.methods.iter().map(|a| (a.method.to_string(), true, 0)));
    let refs: Vec<(&str, bool, u8)> =
        cols.iter().map(|(h, right, d)| (h.as_str(), *right, *d)).collect();
    let mut t = Table::new(&refs);
    if let Some(first) = r.methods.first() {
        for (i, l) in first.levels.iter().enumerate() {
            let mut row = vec![l.level.to_string(), l.pairs.to_string()];
            row.extend(r.methods.iter().map(|a| format!("{:.3}", a.levels[i].mean_relevance)));
            t.row(row);
        }
    }
    s.push_str(&t.render(width));
    s
}

/// How one method finds a photo's other captions.
#[derive(Debug, Serialize)]
pub struct HalvesRow {
    pub method: Method,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    pub mrr: f64,
    pub median_rank: usize,
}

/// `validate --halves --json`.
#[derive(Debug, Serialize)]
pub struct HalvesReport {
    pub dataset: String,
    pub images: usize,
    pub methods: Vec<HalvesRow>,
}

/// `validate --halves`: each image with at least 4 captions becomes two pseudo-images (its
/// first 2 captions, the rest: different annotators of the same photo); each first half ranks
/// every second half by relevance, and a method that captures what people describe ranks its
/// own photo's other half first. Ties count against the true partner.
fn halves(cfg: &Config, ds: &Dataset, methods: &[Method], json: bool) -> anyhow::Result<ExitCode> {
    let photos: Vec<&crate::dataset::Sample> =
        ds.samples.iter().filter(|s| s.captions.len() >= 4).collect();
    let n = photos.len();
    if n < 10 {
        bail!("{}: fewer than 10 images have 4 or more captions", ds.root.display());
    }
    let mut captions: Vec<Vec<String>> = photos.iter().map(|s| s.captions[..2].to_vec()).collect();
    captions.extend(photos.iter().map(|s| s.captions[2..].to_vec()));
    let mut rows = Vec::new();
    for rel in super::captions::relevances(cfg, methods, &captions)? {
        let method = rel.method;
        let ranks = partner_ranks(&rel, n);
        let mut sorted = ranks.clone();
        sorted.sort_unstable();
        rows.push(HalvesRow {
            method,
            recall_at_1: ranks.iter().filter(|&&r| r == 1).count() as f64 / n as f64,
            recall_at_10: ranks.iter().filter(|&&r| r <= 10).count() as f64 / n as f64,
            mrr: ranks.iter().map(|&r| 1.0 / r as f64).sum::<f64>() / n as f64,
            median_rank: sorted[n / 2],
        });
    }
    let report = HalvesReport { dataset: ds.root.display().to_string(), images: n, methods: rows };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} photos: do 2 annotators' captions find the photo the other 3 described, among {n}?",
        report.images
    )?;
    let mut t = Table::new(&[
        ("method", false, 0),
        ("recall@1", true, 0),
        ("recall@10", true, 1),
        ("MRR", true, 0),
        ("median rank", true, 2),
    ]);
    for r in &report.methods {
        t.row(vec![
            r.method.to_string(),
            format!("{:.3}", r.recall_at_1),
            format!("{:.3}", r.recall_at_10),
            format!("{:.3}", r.mrr),
            r.median_rank.to_string(),
        ]);
    }
    write!(out, "{}", t.render(terminal_width()))?;
    Ok(ExitCode::SUCCESS)
}

/// For each first half q (rows 0..n), the rank of its own second half (row n + q) among all
/// second halves; ties count against it.
fn partner_ranks(rel: &Relevance, n: usize) -> Vec<usize> {
    const BLOCK: usize = 16;
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map_init(
            || vec![0f32; BLOCK * 2 * n],
            |buf, b| {
                let q0 = b * BLOCK;
                let count = BLOCK.min(n - q0);
                let block = &mut buf[..count * 2 * n];
                rel.rows_into(q0, block);
                block
                    .chunks(2 * n)
                    .enumerate()
                    .map(|(i, row)| {
                        let partner = row[n + q0 + i];
                        1 + row[n..]
                            .iter()
                            .enumerate()
                            .filter(|&(j, &x)| j != q0 + i && x >= partner)
                            .count()
                    })
                    .collect::<Vec<_>>()
            },
        )
        .flatten()
        .collect()
}
