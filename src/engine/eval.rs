//! `eval`: exact neighbours per model, caption relevance, metrics, baselines, comparisons.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::metrics as m;
use crate::relevance::{Method, Relevance};
use crate::report::{
    self, Ann, Baselines, Comparison, DatasetInfo, EvalReport, ModelReport, RelevanceInfo, Skipped,
    Stat,
};
use crate::store::{IndexMeta, Store};

use super::index::Indexed;

/// Evaluation settings.
pub struct EvalOptions {
    pub ks: Vec<usize>,
    pub method: Method,
    pub threshold: f32,
    pub bootstrap: usize,
    pub seed: u64,
}

/// The per-query values of every metric, for one ranking.
pub struct PerQuery {
    pub values: BTreeMap<String, Vec<f64>>,
    pub without_relevant: usize,
}

/// Exact cosine ranking of all `cands` for query `q` (excluded), best first, ties by id.
pub fn exact_ranking(vectors: &[&[f32]], q: usize) -> Vec<(u32, f32)> {
    let others = vectors.iter().enumerate().filter(|&(i, _)| i != q);
    rank(others.map(|(i, v)| (i as u32, *v)), vectors[q])
}

/// Candidates `(id, vector)` scored by cosine (dot product of unit vectors) against `query`,
/// best first, ties broken by id.
pub fn rank<'a>(
    candidates: impl Iterator<Item = (u32, &'a [f32])>,
    query: &[f32],
) -> Vec<(u32, f32)> {
    let mut scored: Vec<(u32, f32)> =
        candidates.map(|(i, v)| (i, v.iter().zip(query).map(|(a, b)| a * b).sum())).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
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
            let mut ideal: Vec<f32> =
                row.iter().enumerate().filter(|&(d, _)| d != q).map(|(_, &r)| r).collect();
            ideal.sort_by(|a, b| b.total_cmp(a));
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

/// Expected metric values of a uniformly random ranking, averaged over queries.
pub fn random_baseline(rel: &Relevance, o: &EvalOptions) -> BTreeMap<String, f64> {
    let n = rel.len();
    let rows: Vec<BTreeMap<String, f64>> = (0..n)
        .into_par_iter()
        .map(|q| {
            let row = rel.row(q);
            let others: Vec<f32> =
                row.iter().enumerate().filter(|&(d, _)| d != q).map(|(_, &r)| r).collect();
            let mcount = others.len().max(1) as f64;
            let mean_rel = others.iter().map(|&x| f64::from(x)).sum::<f64>() / mcount;
            let r = others.iter().filter(|&&x| x >= o.threshold).count();
            let mut ideal = others.clone();
            ideal.sort_by(|a, b| b.total_cmp(a));
            let mut vals = BTreeMap::new();
            for &k in &o.ks {
                let kk = k.min(others.len());
                let disc: f64 = (0..kk).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
                let idcg: f64 = ideal
                    .iter()
                    .take(k)
                    .enumerate()
                    .map(|(i, &x)| f64::from(x) / ((i + 2) as f64).log2())
                    .sum();
                vals.insert(
                    format!("ndcg@{k}"),
                    if idcg > 0.0 { mean_rel * disc / idcg } else { 0.0 },
                );
                vals.insert(format!("overlap@{k}"), mean_rel * kk as f64 / k as f64);
                vals.insert(format!("p@{k}"), r as f64 / mcount * kk as f64 / k as f64);
            }
            if r > 0 {
                // E[AP@R] for a random ranking ≈ R / M (the share of relevant items).
                vals.insert("map@r".into(), r as f64 / mcount);
                vals.insert("mrr".into(), m::random_mrr(others.len(), r));
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
    /// Per model, nDCG at the largest k for each query (query index order).
    pub per_query_ndcg: Vec<Vec<f64>>,
    pub relevance: Relevance,
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
        anyhow::bail!("fewer than 2 images could be embedded by every model; nothing to evaluate");
    }
    let captions: Vec<Vec<String>> = keep.iter().map(|&i| ds.samples[i].captions.clone()).collect();
    let rel = Relevance::new(o.method, &captions);
    let ids: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
    let mut models = Vec::new();
    let mut per_model: Vec<(String, Vec<f64>)> = Vec::new();
    let main_key = format!("ndcg@{}", o.ks.iter().max().copied().unwrap_or(10));
    let mut without_relevant = 0;
    for x in indexed {
        let vectors: Vec<&[f32]> =
            keep.iter().map(|&i| x.vectors[i].as_deref().unwrap_or(&[])).collect();
        let pq = per_query(&rel, o, |q| {
            exact_ranking(&vectors, q).into_iter().map(|(i, _)| i).collect()
        });
        without_relevant = pq.without_relevant;
        let metrics: report::Metrics =
            pq.values.iter().map(|(k, v)| (k.clone(), stat(v, o))).collect();
        per_model
            .push((x.meta.model.clone(), pq.values.get(&main_key).cloned().unwrap_or_default()));
        let search_k = default_search_k(x.meta.n_trees);
        models.push(ModelReport {
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
        });
    }
    let oracle = per_query(&rel, o, |q| {
        let row = rel.row(q);
        let mut c: Vec<u32> = (0..row.len() as u32).filter(|&d| d as usize != q).collect();
        c.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
        c
    });
    let oracle_means = oracle
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / v.len().max(1) as f64))
        .collect();
    let mut comparisons = Vec::new();
    for i in 0..per_model.len() {
        for j in i + 1..per_model.len() {
            let (delta, p_value) =
                m::paired_permutation(&per_model[i].1, &per_model[j].1, o.bootstrap, o.seed);
            comparisons.push(Comparison {
                a: per_model[i].0.clone(),
                b: per_model[j].0.clone(),
                metric: main_key.clone(),
                delta,
                p_value,
            });
        }
    }
    let mean_pair = (0..rel.len())
        .into_par_iter()
        .map(|q| {
            let row = rel.row(q);
            (row.iter().map(|&x| f64::from(x)).sum::<f64>() - f64::from(row[q]))
                / (row.len() - 1) as f64
        })
        .sum::<f64>()
        / rel.len() as f64;
    let mut skipped: Vec<Skipped> = Vec::new();
    for x in indexed {
        for (image, reason) in &x.skipped {
            if !skipped.iter().any(|s| &s.image == image) {
                skipped.push(Skipped { image: image.clone(), reason: reason.clone() });
            }
        }
    }
    let report = EvalReport {
        schema: report::SCHEMA.into(),
        dataset: DatasetInfo {
            root: ds.root.display().to_string(),
            format: serde_json::to_value(ds.format)?.as_str().unwrap_or("").to_owned(),
            images: ds.samples.len(),
            queries: keep.len(),
            queries_without_relevant: without_relevant,
            skipped,
            issues: ds.issues.len(),
            fingerprint: ds.fingerprint(),
        },
        relevance: RelevanceInfo {
            method: serde_json::to_value(o.method)?.as_str().unwrap_or("").to_owned(),
            threshold: o.threshold,
            mean_pair_relevance: mean_pair,
            bootstrap_resamples: o.bootstrap,
            seed: o.seed,
        },
        k: o.ks.clone(),
        models,
        baselines: Baselines { random: random_baseline(&rel, o), oracle: oracle_means },
        comparisons,
        environment: super::environment(),
    };
    let per_query_ndcg = per_model.into_iter().map(|(_, v)| v).collect();
    Ok(Evaluation { report, keep, per_query_ndcg, relevance: rel })
}

fn stat(v: &[f64], o: &EvalOptions) -> Stat {
    let (mean, ci95) = m::mean_ci(v, o.bootstrap, o.seed);
    Stat { mean, ci95 }
}
