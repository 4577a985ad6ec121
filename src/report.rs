//! The evaluation report (`embtui.eval/2`, see docs/report.md and eval/report.schema.json) and
//! its writers: JSON, a terminal table (`table`), Markdown and CSV leaderboards (`formats`), the
//! article's figure as PNG/SVG (`figure`), the HTML report (`html`), and the regression check
//! against a saved report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod check;
pub mod figure;
pub mod formats;
pub mod html;
pub mod table;

pub use table::{metrics_lines, table};

/// Version 2: `device` and `images_per_second` describe the run(s) that computed the vectors
/// (also when this run reused them, `reused_vectors`), not "cached".
pub const SCHEMA: &str = "embtui.eval/2";
/// Reports of these schemas can serve as `--check` baselines (metrics kept their meaning).
pub const READABLE_SCHEMAS: [&str; 2] = ["embtui.eval/1", "embtui.eval/2"];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub ci95: [f64; 2],
}

pub type Metrics = BTreeMap<String, Stat>;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Skipped {
    pub image: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub root: String,
    pub format: String,
    pub images: usize,
    pub queries: usize,
    /// Set when the queries are a sample of the evaluated images (`--queries N`); every
    /// evaluated image is still a candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_sample: Option<QuerySample>,
    pub queries_without_relevant: usize,
    pub skipped: Vec<Skipped>,
    pub issues: usize,
    pub fingerprint: String,
    /// Truncated images embedded anyway this run (`--accept-truncated`).
    #[serde(default)]
    pub truncated_accepted: usize,
}

/// How the queries were drawn: `size` of the `of` evaluated images, with `seed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerySample {
    pub size: usize,
    pub of: usize,
    pub seed: u64,
    pub drawn: String,
}

impl DatasetInfo {
    /// "31783 queries", or "5000 queries drawn with seed 0" for a sample.
    pub fn queries_label(&self) -> String {
        match &self.query_sample {
            Some(q) => format!("{} queries drawn with seed {}", q.size, q.seed),
            None => format!("{} queries", self.queries),
        }
    }
}

/// How `--queries N --seed S` draws: what a report's `query_sample.drawn` says.
pub const QUERY_DRAW: &str = "uniform without replacement: SplitMix64(seed) Fisher-Yates over the evaluated images sorted by name, first N kept";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RelevanceInfo {
    pub method: String,
    pub threshold: f32,
    /// How τ was chosen: the method's calibrated default, or `--threshold`.
    #[serde(default)]
    pub threshold_source: String,
    /// How the semantic part was computed (`semantic` and `hybrid`; `relevance::SEMANTIC_VERSION`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub semantic: String,
    pub mean_pair_relevance: f64,
    pub bootstrap_resamples: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ann {
    #[serde(rename = "recall@10")]
    pub recall_at_10: f64,
    pub n_trees: usize,
    pub search_k: usize,
    pub build_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelReport {
    pub name: String,
    pub dim: usize,
    /// Where the vectors were computed (`cpu`, `cuda:0`, `cpu+cuda:0` for runs on both), as the
    /// store recorded it, also when this run only reused them.
    pub device: String,
    pub onnx_sha256: String,
    /// Where the weights came from: the manifest's `source`, e.g. `hf:ORG/NAME@COMMIT
    /// (onnx/model.onnx)` for a model pulled from the Hugging Face Hub (absent in reports
    /// written before embtui 0.1 recorded it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Speed of the run(s) that computed the vectors, images per second end to end.
    pub images_per_second: Option<f64>,
    /// This run: seconds spent embedding, images embedded, images whose vectors it reused.
    pub embed_seconds: f64,
    /// This run: seconds spent starting ONNX Runtime sessions (0 when it embedded nothing).
    #[serde(default)]
    pub session_start_seconds: f64,
    pub embedded: usize,
    pub cached: usize,
    /// True when this run embedded nothing (every vector came from the store).
    #[serde(default)]
    pub reused_vectors: bool,
    pub metrics: Metrics,
    pub ann: Ann,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Baselines {
    pub random: BTreeMap<String, f64>,
    pub oracle: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub metric: String,
    pub delta: f64,
    pub p_value: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    pub embtui_version: String,
    pub onnxruntime_version: Option<String>,
    pub cpu: String,
    pub gpu: Option<String>,
    pub threads: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EvalReport {
    pub schema: String,
    pub dataset: DatasetInfo,
    pub relevance: RelevanceInfo,
    pub k: Vec<usize>,
    pub models: Vec<ModelReport>,
    pub baselines: Baselines,
    pub comparisons: Vec<Comparison>,
    pub environment: Environment,
    /// Each query's metrics and top-k neighbours per model (`eval --per-query`), in query
    /// order; absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_query: Vec<QueryResult>,
    /// The regression check this run made (`eval --check`): verdicts and the queries that got
    /// worse, which `embtui report` renders; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<check::CheckReport>,
}

/// One query of `per_query`: the image, its first caption, how many images are relevant to
/// it (R at τ) and, per model (keyed by model name), its scores and neighbours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueryResult {
    pub image: String,
    pub caption: String,
    pub relevant: usize,
    pub models: BTreeMap<String, QueryModel>,
}

/// One model's view of one query: every metric's value and the top k neighbours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueryModel {
    pub metrics: BTreeMap<String, f64>,
    pub top: Vec<Hit>,
}

/// A neighbour: the image, its cosine to the query, and the caption relevance of the pair.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hit {
    pub image: String,
    pub cosine: f32,
    pub relevance: f32,
}

impl EvalReport {
    /// The metric models are ranked by: nDCG at the largest k.
    pub fn main_metric(&self) -> String {
        format!("ndcg@{}", self.k.iter().max().copied().unwrap_or(10))
    }
}

/// How far the models disagree on a query: the spread (max − min) of their main metric.
pub fn disagreement(q: &QueryResult, metric: &str) -> f64 {
    let v: Vec<f64> = q.models.values().filter_map(|m| m.metrics.get(metric).copied()).collect();
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    if v.len() < 2 {
        0.0
    } else {
        max - min
    }
}

/// Queries (indices into `per_query`) where the models disagree most, the largest spread
/// first (ties: query order).
pub fn most_disagreeing(per_query: &[QueryResult], metric: &str, n: usize) -> Vec<usize> {
    let mut order: Vec<(usize, f64)> =
        per_query.iter().enumerate().map(|(i, q)| (i, disagreement(q, metric))).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.into_iter().take(n).map(|(i, _)| i).collect()
}

/// The colour of a caption relevance, as in the TUI: green at or above τ, amber above τ/3,
/// red below.
pub fn relevance_rgb(relevance: f32, threshold: f32) -> [u8; 3] {
    if relevance >= threshold {
        [34, 139, 34]
    } else if relevance >= threshold / 3.0 {
        [222, 150, 0]
    } else {
        [200, 40, 40]
    }
}

/// "0.394 [.383,.407]": a mean with its interval, short enough for narrow terminals.
pub fn ci_cell(mean: f64, ci: [f64; 2]) -> String {
    let short = |x: f64| format!("{x:.3}").trim_start_matches('0').to_owned();
    format!("{mean:.3} [{},{}]", short(ci[0]), short(ci[1]))
}

/// Why `baseline` cannot be compared with a run on `fingerprint` with these settings (a
/// check against another dataset, relevance method, threshold or k would pass or fail for
/// reasons that are not regressions), or None when it can.
pub fn incomparable(
    baseline: &EvalReport,
    fingerprint: &str,
    images: usize,
    method: &str,
    threshold: f32,
    semantic: &str,
    ks: &[usize],
) -> Option<String> {
    if baseline.models.is_empty() {
        return Some("the baseline holds no models, so every check would pass".into());
    }
    let b = &baseline.dataset;
    if b.fingerprint != fingerprint {
        return Some(format!(
            "it was made on another selection of images ({} images, fingerprint {}; now {images} images, fingerprint {fingerprint})",
            b.images, b.fingerprint
        ));
    }
    let r = &baseline.relevance;
    if r.method != method || (r.threshold - threshold).abs() > f32::EPSILON {
        return Some(format!(
            "it used relevance {} τ={} (now {method} τ={threshold})",
            r.method, r.threshold
        ));
    }
    if r.semantic != semantic {
        let was =
            if r.semantic.is_empty() { "uncentred MiniLM caption means" } else { &r.semantic };
        return Some(format!(
            "its {method} relevance was computed differently ({was}; now {semantic})"
        ));
    }
    if baseline.k != ks {
        return Some(format!("it used --k {:?} (now {ks:?})", baseline.k));
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn report(ndcg: f64) -> EvalReport {
        let mut metrics = Metrics::new();
        metrics.insert("ndcg@10".into(), Stat { mean: ndcg, ci95: [ndcg - 0.01, ndcg + 0.01] });
        EvalReport {
            schema: SCHEMA.into(),
            dataset: DatasetInfo {
                root: "d".into(),
                format: "flickr8k".into(),
                images: 3,
                queries: 3,
                query_sample: None,
                queries_without_relevant: 0,
                skipped: vec![],
                issues: 0,
                fingerprint: "f".into(),
                truncated_accepted: 0,
            },
            relevance: RelevanceInfo {
                method: "tfidf".into(),
                threshold: 0.3,
                threshold_source: "--threshold".into(),
                semantic: String::new(),
                mean_pair_relevance: 0.1,
                bootstrap_resamples: 10,
                seed: 0,
            },
            k: vec![10],
            models: vec![ModelReport {
                name: "m".into(),
                dim: 2,
                device: "cpu".into(),
                onnx_sha256: "x".into(),
                source: String::new(),
                images_per_second: None,
                embed_seconds: 0.0,
                session_start_seconds: 0.0,
                embedded: 0,
                cached: 3,
                reused_vectors: true,
                metrics,
                ann: Ann { recall_at_10: 1.0, n_trees: 1, search_k: 1, build_seconds: 0.0 },
            }],
            baselines: Baselines { random: BTreeMap::new(), oracle: BTreeMap::new() },
            comparisons: vec![],
            environment: Environment {
                embtui_version: "0".into(),
                onnxruntime_version: None,
                cpu: "c".into(),
                gpu: None,
                threads: 1,
            },
            per_query: vec![],
            check: None,
        }
    }

    #[test]
    fn table_marks_the_best_model() {
        let t = table(&report(0.45), 120);
        assert!(t.contains("*m") && t.contains("0.450 [.440,.460]"), "{t}");
    }
}
