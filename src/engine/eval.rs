//! `eval`: exact neighbours per model, caption relevance, metrics, baselines, comparisons.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rayon::prelude::*;

use super::index::{index_all, Indexed};
use crate::cli::{EvalArgs, MetricArgs};
use crate::config::Config;
use crate::dataset::Dataset;
use crate::metrics as m;
use crate::rank::exact_ranking;
use crate::relevance::{Method, Relevance};
use crate::report::{
    self, Ann, Baselines, Comparison, DatasetInfo, EvalReport, ModelReport, RelevanceInfo, Skipped,
    Stat,
};
use crate::store::{IndexMeta, Store};
use crate::{say, warn};

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub ks: Vec<usize>,
    pub method: Method,
    pub threshold: f32,
    pub bootstrap: usize,
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self { ks: vec![1, 5, 10], method: Method::Tfidf, threshold: 0.3, bootstrap: 1000, seed: 0 }
    }
}

impl From<&MetricArgs> for EvalOptions {
    fn from(a: &MetricArgs) -> Self {
        Self {
            ks: a.k.clone(),
            method: a.relevance,
            threshold: a.threshold,
            bootstrap: a.bootstrap,
            ..Self::default()
        }
    }
}

impl EvalOptions {
    /// The largest cut-off: the one the main metric (nDCG) is reported at.
    pub fn k_max(&self) -> usize {
        self.ks.iter().max().copied().unwrap_or(10)
    }

    /// The metric that ranks models and that comparisons test.
    pub fn main_metric(&self) -> String {
        format!("ndcg@{}", self.k_max())
    }
}

/// `embtui eval`.
pub fn run(cfg: &Config, a: &EvalArgs) -> anyhow::Result<ExitCode> {
    let opts = EvalOptions::from(&a.metric);
    // Read the baseline first: a bad path should fail before minutes of embedding.
    let baseline = a.check.as_deref().map(load_report).transpose()?;
    let ds = cfg.dataset(&a.data)?;
    if !ds.has_captions() {
        bail!("{} is a plain image folder: metrics need captions (Flickr30k, Flickr8k or COCO layout); `embtui search` works without them", ds.root.display());
    }
    let store = Store::open(&cfg.store_dir)?;
    let indexed = index_all(cfg, &store, &ds, &a.models.names, a.batch.size)?;
    let rep = evaluate(&store, &ds, &indexed, &opts)?.report;
    let text = serde_json::to_string_pretty(&rep)?;
    if let Some(p) = &a.out {
        std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        writeln!(stdout, "{text}")?;
    } else {
        write!(stdout, "{}", crate::text::sanitize_lines(&report::table(&rep)))?;
    }
    let (Some(b), Some(path)) = (baseline, &a.check) else { return Ok(ExitCode::SUCCESS) };
    let regs = report::regressions(&rep, &b, a.tolerance);
    for r in &regs {
        warn!("regression: {r}");
    }
    if !regs.is_empty() {
        return Ok(ExitCode::from(1));
    }
    say!("check passed against {} (tolerance {})", path.display(), a.tolerance);
    Ok(ExitCode::SUCCESS)
}

/// Reads a saved report for `--check`.
fn load_report(p: &Path) -> anyhow::Result<EvalReport> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("reading baseline {}", p.display()))?;
    let r: EvalReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an embtui eval report; write one with `embtui eval --json --out FILE`",
            p.display()
        )
    })?;
    if r.schema != report::SCHEMA {
        bail!("{} has schema {:?}, this embtui reads {:?}", p.display(), r.schema, report::SCHEMA);
    }
    Ok(r)
}

/// The per-query values of every metric, for one ranking.
pub struct PerQuery {
    pub values: BTreeMap<String, Vec<f64>>,
    pub without_relevant: usize,
}

/// Metrics for each query of a ranking function (`rank(q)` returns candidate ids, best first).
pub fn per_query(
    rel: &Relevance,
    o: &EvalOptions,
    rank: impl Fn(usize) -> Vec<u32> + Sync,
) -> PerQuery {
    let n = rel.len();
    let rows: Vec<(BTreeMap<String, f64>, bool)> = (0..n)
        .into_par_iter()
        .map(|q| {
            let row = rel.row(q);
            let ranked: Vec<f32> = rank(q).iter().map(|&d| row[d as usize]).collect();
            let ideal = ideal_desc(&row, q);
            let r = ideal.iter().filter(|&&x| x >= o.threshold).count();
            let mut vals = BTreeMap::new();
            for &k in &o.ks {
                vals.insert(format!("ndcg@{k}"), m::ndcg_at_k(&ranked, &ideal, k));
                vals.insert(format!("overlap@{k}"), m::overlap_at_k(&ranked, k));
                vals.insert(format!("p@{k}"), m::precision_at_k(&ranked, k, o.threshold));
            }
            if let Some(ap) = m::map_at_r(&ranked, r, o.threshold) {
                vals.insert("map@r".into(), ap);
                vals.insert("mrr".into(), m::reciprocal_rank(&ranked, o.threshold));
            }
            (vals, r == 0)
        })
        .collect();
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut without_relevant = 0;
    for (vals, none) in rows {
        without_relevant += usize::from(none);
        for (k, v) in vals {
            values.entry(k).or_default().push(v);
        }
    }
    PerQuery { values, without_relevant }
}

/// Every candidate's relevance to query `q` (itself excluded), sorted descending.
fn ideal_desc(row: &[f32], q: usize) -> Vec<f32> {
    let mut ideal: Vec<f32> =
        row.iter().enumerate().filter(|&(d, _)| d != q).map(|(_, &r)| r).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    ideal
}

/// Expected metric values of a uniformly random ranking, averaged over queries.
pub fn random_baseline(rel: &Relevance, o: &EvalOptions) -> BTreeMap<String, f64> {
    let rows: Vec<BTreeMap<String, f64>> = (0..rel.len())
        .into_par_iter()
        .map(|q| {
            let row = rel.row(q);
            let ideal = ideal_desc(&row, q);
            let m_count = ideal.len();
            let mean_rel = ideal.iter().map(|&x| f64::from(x)).sum::<f64>() / m_count.max(1) as f64;
            let r = ideal.iter().filter(|&&x| x >= o.threshold).count();
            let mut vals = BTreeMap::new();
            for &k in &o.ks {
                vals.insert(format!("ndcg@{k}"), m::random_ndcg_at_k(mean_rel, &ideal, k, m_count));
                vals.insert(format!("overlap@{k}"), m::random_overlap_at_k(mean_rel, k, m_count));
                vals.insert(format!("p@{k}"), m::random_precision_at_k(r, m_count, k));
            }
            if let Some(ap) = m::random_map_at_r(r, m_count) {
                vals.insert("map@r".into(), ap);
                vals.insert("mrr".into(), m::random_mrr(m_count, r));
            }
            vals
        })
        .collect();
    average(rows)
}

fn average(rows: Vec<BTreeMap<String, f64>>) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for row in rows {
        for (k, v) in row {
            let e = sums.entry(k).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    sums.into_iter().map(|(k, (s, n))| (k, s / n.max(1) as f64)).collect()
}

/// recall@10 of arroy's ANN against the exact top 10, over up to 1000 queries.
pub fn ann_recall(
    store: &Store,
    meta: &IndexMeta,
    vectors: &[&[f32]],
    ids: &[u32],
    search_k: usize,
) -> anyhow::Result<f64> {
    let step = (vectors.len() / 1000).max(1);
    let mut total = 0.0;
    let mut count = 0usize;
    for q in (0..vectors.len()).step_by(step) {
        let exact: Vec<u32> =
            exact_ranking(vectors, q).iter().take(10).map(|&(i, _)| ids[i as usize]).collect();
        let ann: Vec<u32> = store
            .ann(meta, vectors[q], 11, Some(search_k))?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|&id| id != ids[q])
            .take(10)
            .collect();
        let hit = exact.iter().filter(|e| ann.contains(e)).count();
        total += hit as f64 / exact.len().max(1) as f64;
        count += 1;
    }
    Ok(total / count.max(1) as f64)
}

/// Default `search_k` for the ANN: arroy's "precise" setting, k · n_trees · 15.
pub fn default_search_k(n_trees: usize) -> usize {
    10 * n_trees * 15
}

/// An evaluation: the report plus what the TUI needs to explain it.
pub struct Evaluation {
    pub report: EvalReport,
    /// Dataset ids of the evaluated images (embedded by every model); position = query index.
    pub keep: Vec<usize>,
    /// Per model, the main metric (nDCG at the largest k) of each query (query index order).
    pub per_query_ndcg: Vec<Vec<f64>>,
    pub relevance: Relevance,
}

/// One model's report and its per-query main metric.
struct Scored {
    report: ModelReport,
    main: Vec<f64>,
    without_relevant: usize,
}

/// Evaluates indexed models on the images every model embedded.
pub fn evaluate(
    store: &Store,
    ds: &Dataset,
    indexed: &[Indexed],
    o: &EvalOptions,
) -> anyhow::Result<Evaluation> {
    let keep: Vec<usize> =
        (0..ds.samples.len()).filter(|&i| indexed.iter().all(|x| x.vectors[i].is_some())).collect();
    if keep.len() < 2 {
        bail!("fewer than 2 images could be embedded by every model; nothing to evaluate");
    }
    let captions: Vec<Vec<String>> = keep.iter().map(|&i| ds.samples[i].captions.clone()).collect();
    let rel = Relevance::new(o.method, &captions);
    let scored: Vec<Scored> =
        indexed.iter().map(|x| score_model(store, x, &keep, &rel, o)).collect::<Result<_, _>>()?;
    let oracle = oracle(&rel, o);
    let comparisons = comparisons(&scored, o);
    let without_relevant = scored.first().map_or(0, |s| s.without_relevant);
    let per_query_ndcg = scored.iter().map(|s| s.main.clone()).collect();
    let report = EvalReport {
        schema: report::SCHEMA.into(),
        dataset: dataset_info(ds, indexed, keep.len(), without_relevant),
        relevance: RelevanceInfo {
            method: o.method.to_string(),
            threshold: o.threshold,
            mean_pair_relevance: mean_pair_relevance(&rel),
            bootstrap_resamples: o.bootstrap,
            seed: o.seed,
        },
        k: o.ks.clone(),
        models: scored.into_iter().map(|s| s.report).collect(),
        baselines: Baselines { random: random_baseline(&rel, o), oracle },
        comparisons,
        environment: super::environment(),
    };
    Ok(Evaluation { report, keep, per_query_ndcg, relevance: rel })
}

/// Metrics of one model's exact rankings, with intervals and ANN recall.
fn score_model(
    store: &Store,
    x: &Indexed,
    keep: &[usize],
    rel: &Relevance,
    o: &EvalOptions,
) -> anyhow::Result<Scored> {
    let vectors: Vec<&[f32]> =
        keep.iter().map(|&i| x.vectors[i].as_deref().unwrap_or(&[])).collect();
    let ids: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
    let pq =
        per_query(rel, o, |q| exact_ranking(&vectors, q).into_iter().map(|(i, _)| i).collect());
    let metrics: report::Metrics = pq.values.iter().map(|(k, v)| (k.clone(), stat(v, o))).collect();
    let search_k = default_search_k(x.meta.n_trees);
    let report = ModelReport {
        name: x.meta.model.clone(),
        dim: x.meta.dim,
        device: x.device.clone(),
        onnx_sha256: x.meta.onnx_sha256.clone(),
        images_per_second: x.images_per_second(),
        embed_seconds: x.embed_seconds,
        embedded: x.embedded,
        cached: x.cached,
        metrics,
        ann: Ann {
            recall_at_10: ann_recall(store, &x.meta, &vectors, &ids, search_k)?,
            n_trees: x.meta.n_trees,
            search_k,
            build_seconds: x.meta.build_seconds,
        },
    };
    let main = pq.values.get(&o.main_metric()).cloned().unwrap_or_default();
    Ok(Scored { report, main, without_relevant: pq.without_relevant })
}

/// Mean metric values of the ideal ranking (candidates sorted by relevance).
fn oracle(rel: &Relevance, o: &EvalOptions) -> BTreeMap<String, f64> {
    let pq = per_query(rel, o, |q| {
        let row = rel.row(q);
        let mut c: Vec<u32> = (0..row.len() as u32).filter(|&d| d as usize != q).collect();
        c.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
        c
    });
    pq.values
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / v.len().max(1) as f64))
        .collect()
}

/// Paired permutation tests of the main metric between every two models.
fn comparisons(scored: &[Scored], o: &EvalOptions) -> Vec<Comparison> {
    let mut out = Vec::new();
    for (i, a) in scored.iter().enumerate() {
        for b in &scored[i + 1..] {
            let (delta, p_value) = m::paired_permutation(&a.main, &b.main, o.bootstrap, o.seed);
            out.push(Comparison {
                a: a.report.name.clone(),
                b: b.report.name.clone(),
                metric: o.main_metric(),
                delta,
                p_value,
            });
        }
    }
    out
}

/// The mean relevance of two different evaluated images.
fn mean_pair_relevance(rel: &Relevance) -> f64 {
    let total: f64 = (0..rel.len())
        .into_par_iter()
        .map(|q| {
            let row = rel.row(q);
            (row.iter().map(|&x| f64::from(x)).sum::<f64>() - f64::from(row[q]))
                / (row.len() - 1) as f64
        })
        .sum();
    total / rel.len() as f64
}

fn dataset_info(
    ds: &Dataset,
    indexed: &[Indexed],
    queries: usize,
    queries_without_relevant: usize,
) -> DatasetInfo {
    let mut skipped: Vec<Skipped> = Vec::new();
    for x in indexed {
        for (image, reason) in &x.skipped {
            if !skipped.iter().any(|s| &s.image == image) {
                skipped.push(Skipped { image: image.clone(), reason: reason.clone() });
            }
        }
    }
    DatasetInfo {
        root: ds.root.display().to_string(),
        format: ds.format.to_string(),
        images: ds.samples.len(),
        queries,
        queries_without_relevant,
        skipped,
        issues: ds.issues.len(),
        fingerprint: ds.fingerprint(),
    }
}

fn stat(v: &[f64], o: &EvalOptions) -> Stat {
    let (mean, ci95) = m::mean_ci(v, o.bootstrap, o.seed);
    Stat { mean, ci95 }
}
