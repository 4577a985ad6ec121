//! `eval`: exact neighbours per model, caption relevance, metrics, baselines, comparisons.
//!
//! At full Flickr30k size (31,783 images) nothing N × N is ever held:
//! 1. the relevance pass walks the queries once (one relevance row at a time, from the
//!    captions' inverted index) and keeps what every model's metrics need: R (the number of
//!    relevant images), a bitset of which images are relevant (N² bits: 126 MB at 31,783),
//!    the best relevance values (the ideal ranking for nDCG) and the mean relevance;
//! 2. per model, `rank::top_lists` keeps each query's exact top max(k, R, 1,000) neighbours
//!    from symmetric blocked matrix products;
//! 3. metrics are read off those lists (graded relevance only for the top k, by pair);
//!    intervals come from shared bootstrap resamples.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use rayon::prelude::*;

use super::index::{index_all, Indexed};
use super::output::{check_writable, load_report, say_stages};
use crate::cli::{EvalArgs, MetricArgs, OutputFormat, QueryCount};
use crate::config::Config;
use crate::dataset::Dataset;
use crate::metrics as m;
use crate::rank::{top_lists_of, TopList};
use crate::relevance::{Method, Relevance};
use crate::report::{
    self, Ann, Baselines, Comparison, DatasetInfo, EvalReport, ModelReport, RelevanceInfo, Skipped,
    Stat,
};
use crate::store::Store;
use crate::{say, warn};

/// Ranks beyond which a first relevant image counts 0 in MRR (it would count < 0.001).
pub const MRR_DEPTH: usize = 1000;
/// Queries whose arroy neighbours are compared with the exact ones for ANN recall.
const ANN_QUERIES: usize = 300;

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub ks: Vec<usize>,
    pub method: Method,
    pub threshold: f32,
    /// True when τ came from `--threshold`, not the method's default.
    pub threshold_given: bool,
    pub bootstrap: usize,
    pub seed: u64,
    /// Keep each query's metrics and top-k neighbours per model in the report.
    pub per_query: bool,
    /// Which images are queries (every evaluated image stays a candidate).
    pub queries: QuerySet,
}

/// The queries of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuerySet {
    /// Every evaluated image.
    All,
    /// `size` evaluated images drawn with `seed` ([`crate::rng::draw`]).
    Sample { size: usize, seed: u64 },
    /// These dataset ids (`figure --queries a.jpg,b.jpg`).
    Images(Vec<usize>),
}

impl QuerySet {
    /// `--queries` resolved against a gallery of `images`: a sample of [`DEFAULT_QUERIES`]
    /// past [`SAMPLE_ABOVE`] images unless asked otherwise, with a line announcing it. Refuses
    /// more queries than images.
    pub fn resolve(
        asked: Option<QueryCount>,
        images: usize,
        seed: u64,
    ) -> anyhow::Result<(Self, Option<String>)> {
        Ok(match asked {
            Some(QueryCount::Sample(n)) if n > images => bail!(
                "--queries {n} asks for more queries than the {images} images selected; ask for at most {images}, or --queries all"
            ),
            Some(QueryCount::Sample(n)) if n < images => (Self::Sample { size: n, seed }, None),
            None if images > SAMPLE_ABOVE => (
                Self::Sample { size: DEFAULT_QUERIES, seed },
                Some(format!(
                    "{images} images: evaluating {DEFAULT_QUERIES} queries drawn with seed {seed} against all of them (--queries all for every query, O(N²); --queries N --seed S for another sample)"
                )),
            ),
            _ => (Self::All, None),
        })
    }

    /// The sample's size and seed, if the queries are a seeded sample.
    pub fn sample(&self) -> Option<(usize, u64)> {
        match *self {
            Self::Sample { size, seed } => Some((size, seed)),
            _ => None,
        }
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        let method = Method::Hybrid;
        Self {
            ks: vec![1, 5, 10],
            method,
            threshold: method.default_threshold(),
            threshold_given: false,
            bootstrap: 1000,
            seed: 0,
            per_query: false,
            queries: QuerySet::All,
        }
    }
}

impl From<&MetricArgs> for EvalOptions {
    fn from(a: &MetricArgs) -> Self {
        Self {
            ks: a.k.clone(),
            method: a.relevance,
            threshold: a.threshold.unwrap_or_else(|| a.relevance.default_threshold()),
            threshold_given: a.threshold.is_some(),
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

/// Galleries of more images than this are evaluated on a sample of queries unless
/// `--queries all` is given: past it the full run takes minutes (its cost grows as N², about
/// 1 min for 4 models at Flickr30k's 31,783 on 2 cores) and its relevance bitset alone is
/// N²/8 bytes (313 MB at 50,000, 1.9 GB at COCO's 123,287).
pub const SAMPLE_ABOVE: usize = 50_000;
/// The sample drawn by default past [`SAMPLE_ABOVE`]: 5,000 queries put a mean nDCG within
/// about ±0.005 (95%) of the all-queries value.
pub const DEFAULT_QUERIES: usize = 5_000;

/// Positions in the evaluated images (`keep`, dataset ids ascending) of the queries,
/// ascending.
pub fn query_positions(keep: &[usize], queries: &QuerySet) -> anyhow::Result<Vec<usize>> {
    let mut all: Vec<usize> = (0..keep.len()).collect();
    match queries {
        QuerySet::All => Ok(all),
        &QuerySet::Sample { size, seed } => {
            if size > keep.len() {
                bail!("--queries {size} asks for more queries than the {} images every model embedded; ask for at most {}, or --queries all", keep.len(), keep.len());
            }
            crate::rng::draw(&mut all, size, seed);
            all.sort_unstable();
            Ok(all)
        }
        QuerySet::Images(ids) => {
            let mut at: Vec<usize> = ids
                .iter()
                .map(|id| {
                    keep.binary_search(id).map_err(|_| {
                        anyhow::anyhow!("dataset image {id} was not embedded by every model, so it cannot be a query")
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            at.sort_unstable();
            at.dedup();
            Ok(at)
        }
    }
}

/// Told what the evaluation is doing: (stage, fraction done).
pub type OnStage<'a> = &'a (dyn Fn(&str, f64) + Sync);

/// `embtui eval`.
pub fn run(cfg: &Config, a: &EvalArgs) -> anyhow::Result<ExitCode> {
    let mut opts = EvalOptions::from(&a.metric);
    opts.per_query = a.per_query || a.html.is_some();
    // Read the baseline and check the output path first: a bad path should fail before
    // minutes of embedding.
    let baseline = a.check.as_deref().map(load_report).transpose()?;
    if a.check.is_none() {
        if let Some(flag) = [("--junit", a.junit.is_some()), ("--summary", a.summary.is_some())]
            .iter()
            .find(|f| f.1)
        {
            bail!("{} writes the result of a regression check: add --check BASELINE", flag.0);
        }
    }
    for p in a.out.iter().chain(&a.html).chain(&a.junit) {
        check_writable(p)?;
    }
    // A baseline with per-query scores is checked query by query: this run needs them too.
    opts.per_query |= baseline.as_ref().is_some_and(|b| !b.per_query.is_empty());
    let ds = cfg.dataset(&a.data)?;
    let (queries, announce) = QuerySet::resolve(a.queries, ds.samples.len(), a.data.seed)?;
    opts.queries = queries;
    if let (Some(b), Some(path)) = (&baseline, &a.check) {
        comparable(b, path, &ds, &opts)?;
    }
    if !ds.has_captions() {
        bail!("{} is a plain image folder: metrics need captions (Flickr30k, Flickr8k or COCO layout); `embtui search` works without them", ds.root.display());
    }
    if let Some(line) = announce {
        say!("{line}");
    }
    let store = Store::open(&cfg.store_dir)?;
    // Not resident: each model's vectors are read back when it is ranked (one model at a time).
    let indexed = index_all(cfg, &store, &ds, &a.models.names, a.batch.size, false)?;
    let on_stage = say_stages("eval");
    let mut rep = evaluate(cfg, &store, &ds, &indexed, &opts, &on_stage)?.report;
    if let (Some(b), Some(path)) = (&baseline, &a.check) {
        if let Some(why) = report::check::unpaired(&rep.per_query, &b.per_query) {
            bail!("cannot check against {} query by query: {why} (another sample of queries); make the baseline from the same queries, or remove its per_query field to compare means only", path.display());
        }
        let o = report::check::CheckOptions {
            tolerance: a.tolerance,
            alpha: a.alpha,
            worst: a.worst,
            resamples: opts.bootstrap,
            seed: opts.seed,
        };
        rep.check = Some(report::check::check(&rep, b, &path.display().to_string(), &o));
    }
    if let Some(p) = &a.html {
        super::html::write_html(&rep, &ds.images_dir, 6, p)?;
    }
    if !a.per_query {
        rep.per_query.clear();
    }
    let text = serde_json::to_string_pretty(&rep)?;
    if let Some(p) = &a.out {
        std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    let format = if a.json { OutputFormat::Json } else { a.output };
    match format {
        OutputFormat::Json => writeln!(stdout, "{text}")?,
        OutputFormat::Md => write!(stdout, "{}", report::formats::markdown(&rep))?,
        OutputFormat::Csv => write!(stdout, "{}", report::formats::csv(&rep))?,
        OutputFormat::Table => {
            let width = crate::text::terminal_width();
            write!(stdout, "{}", crate::text::sanitize_lines(&report::table(&rep, width)))?;
        }
    }
    let Some(c) = &rep.check else { return Ok(ExitCode::SUCCESS) };
    write_check_outputs(c, a)?;
    Ok(if c.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Refuses a baseline this run cannot be checked against: other queries, images, relevance or
/// cut-offs.
fn comparable(
    b: &EvalReport,
    path: &std::path::Path,
    ds: &Dataset,
    o: &EvalOptions,
) -> anyhow::Result<()> {
    if let Some(why) = report::check::other_draw(b, o.queries.sample()) {
        bail!("cannot check against {}: {why}", path.display());
    }
    let why = report::incomparable(
        b,
        &ds.fingerprint(),
        ds.samples.len(),
        &o.method.to_string(),
        o.threshold,
        o.method.semantic_version(),
        &o.ks,
    );
    if let Some(why) = why {
        bail!("cannot check against {}: {why}; make a baseline with the same settings (`embtui eval … --json --out BASELINE`)", path.display());
    }
    Ok(())
}

/// The check on stderr (a failed metric as a warning), as JUnit XML and as a Markdown summary
/// (appended, as `$GITHUB_STEP_SUMMARY` expects).
fn write_check_outputs(c: &report::check::CheckReport, a: &EvalArgs) -> anyhow::Result<()> {
    for line in report::check::lines(c) {
        if let Some(failed) = line.strip_prefix("FAIL ") {
            warn!("regression: {failed}");
        } else {
            say!("{line}");
        }
    }
    if let Some(p) = &a.junit {
        std::fs::write(p, report::check::junit(c))
            .with_context(|| format!("writing --junit {}", p.display()))?;
    }
    if let Some(p) = &a.summary {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .with_context(|| format!("--summary {} cannot be written", p.display()))?;
        f.write_all(report::check::summary(c).as_bytes())?;
    }
    Ok(())
}

/// What caption relevance says about each query, computed once for every model. Rows are
/// query slots: slot j is image `queries[j]` (a position in the evaluated images).
pub struct Truth {
    /// Gallery size: every evaluated image is a candidate.
    n: usize,
    words: usize,
    queries: Vec<usize>,
    /// Row j, bit d: rel(queries[j], d) ≥ τ (d ≠ queries[j]).
    relevant: Vec<u64>,
    /// R: images relevant to each query.
    pub r: Vec<usize>,
    /// The best `k_max` relevance values of each query (its ideal ranking), descending.
    ideal: Vec<Vec<f32>>,
    /// Mean relevance of each query to every other image.
    mean_rel: Vec<f64>,
}

impl Truth {
    fn is_relevant(&self, q: usize, d: u32) -> bool {
        self.relevant[q * self.words + d as usize / 64] >> (d % 64) & 1 == 1
    }

    /// Walks each query's relevance row once (in parallel, one block of rows per thread at a
    /// time): O(queries × images) time, queries × images bits.
    pub fn new(rel: &Relevance, o: &EvalOptions, queries: &[usize]) -> Self {
        let n = rel.len();
        let words = n.div_ceil(64);
        let k = o.k_max();
        // Rows in blocks of TRUTH_ROWS queries: one matrix product per block for semantic
        // relevance.
        let rows: Vec<(Vec<u64>, usize, Vec<f32>, f64)> = queries
            .par_chunks(TRUTH_ROWS)
            .map_init(
                || vec![0f32; TRUTH_ROWS * n],
                |buf, ids| {
                    let block = &mut buf[..ids.len() * n];
                    rel.rows_of(ids, block);
                    block
                        .chunks(n)
                        .zip(ids)
                        .map(|(row, &q)| truth_row(row, q, words, k, o.threshold))
                        .collect::<Vec<_>>()
                },
            )
            .flatten()
            .collect();
        let nq = queries.len();
        let mut t = Truth {
            n,
            words,
            queries: queries.to_vec(),
            relevant: Vec::with_capacity(nq * words),
            r: Vec::with_capacity(nq),
            ideal: Vec::with_capacity(nq),
            mean_rel: Vec::with_capacity(nq),
        };
        for (bits, r, top, mean) in rows {
            t.relevant.extend(bits);
            t.r.push(r);
            t.ideal.push(top);
            t.mean_rel.push(mean);
        }
        t
    }

    /// How many neighbours each query's metrics need from a ranking.
    fn list_lengths(&self, o: &EvalOptions) -> Vec<usize> {
        self.r.iter().map(|&r| r.max(o.k_max()).max(MRR_DEPTH).min(self.n - 1)).collect()
    }
}

/// Queries whose relevance rows the truth pass computes at once.
const TRUTH_ROWS: usize = 256;

/// What one query's relevance row says: its relevant bits, R, its best `k` relevances
/// (descending) and its mean relevance to every other image.
fn truth_row(
    row: &[f32],
    q: usize,
    words: usize,
    k: usize,
    threshold: f32,
) -> (Vec<u64>, usize, Vec<f32>, f64) {
    let n = row.len();
    let mut bits = vec![0u64; words];
    let (mut r, mut sum) = (0usize, 0f64);
    let mut top: Vec<f32> = Vec::with_capacity(k + 1);
    for (d, &x) in row.iter().enumerate().filter(|&(d, _)| d != q) {
        sum += f64::from(x);
        if x >= threshold {
            bits[d / 64] |= 1 << (d % 64);
            r += 1;
        }
        if top.len() < k || x > top[top.len() - 1] {
            let at = top.partition_point(|&t| t >= x);
            top.insert(at, x);
            top.truncate(k);
        }
    }
    (bits, r, top, sum / (n - 1).max(1) as f64)
}

/// The per-query values of every metric, for one ranking.
#[derive(Debug, Clone, Default)]
pub struct PerQuery {
    pub values: BTreeMap<String, Vec<f64>>,
}

impl PerQuery {
    fn from_rows(rows: Vec<BTreeMap<String, f64>>) -> Self {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for row in rows {
            for (k, v) in row {
                values.entry(k).or_default().push(v);
            }
        }
        Self { values }
    }

    fn means(&self) -> BTreeMap<String, f64> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / v.len().max(1) as f64))
            .collect()
    }
}

/// Every metric of every query, read off each query's exact top list (slot order; MAP@R
/// and MRR only where something is relevant).
fn metric_rows(
    lists: &[TopList],
    truth: &Truth,
    rel: &Relevance,
    o: &EvalOptions,
) -> Vec<BTreeMap<String, f64>> {
    lists
        .par_iter()
        .enumerate()
        .map(|(q, list)| {
            let image = truth.queries[q];
            let graded: Vec<f32> =
                list.iter().take(o.k_max()).map(|&(_, d)| rel.pair(image, d as usize)).collect();
            let relevant: Vec<f32> = list
                .iter()
                .map(|&(_, d)| if truth.is_relevant(q, d) { 1.0 } else { 0.0 })
                .collect();
            let mut vals = BTreeMap::new();
            for &k in &o.ks {
                vals.insert(format!("ndcg@{k}"), m::ndcg_at_k(&graded, &truth.ideal[q], k));
                vals.insert(format!("overlap@{k}"), m::overlap_at_k(&graded, k));
                vals.insert(format!("p@{k}"), m::precision_at_k(&relevant, k, 0.5));
            }
            if let Some(ap) = m::map_at_r(&relevant, truth.r[q], 0.5) {
                vals.insert("map@r".into(), ap);
                vals.insert("mrr".into(), m::reciprocal_rank(&relevant, 0.5));
            }
            vals
        })
        .collect()
}

/// Expected metric values of a uniformly random ranking, averaged over queries.
pub fn random_baseline(truth: &Truth, o: &EvalOptions) -> BTreeMap<String, f64> {
    let m_count = truth.n - 1;
    let depths = truth.list_lengths(o);
    let rows = (0..truth.r.len())
        .map(|q| {
            let (mean, ideal, r) = (truth.mean_rel[q], &truth.ideal[q], truth.r[q]);
            let mut vals = BTreeMap::new();
            for &k in &o.ks {
                vals.insert(format!("ndcg@{k}"), m::random_ndcg_at_k(mean, ideal, k, m_count));
                vals.insert(format!("overlap@{k}"), m::random_overlap_at_k(mean, k, m_count));
                vals.insert(format!("p@{k}"), m::random_precision_at_k(r, m_count, k));
            }
            if let Some(ap) = m::random_map_at_r(r, m_count) {
                vals.insert("map@r".into(), ap);
                vals.insert("mrr".into(), m::random_mrr(m_count, r, depths[q]));
            }
            vals
        })
        .collect();
    PerQuery::from_rows(rows).means()
}

/// Mean metric values of the ideal ranking (candidates sorted by relevance): nDCG 1 wherever
/// anything is relevant, overlap the mean of the best k relevances, p@k min(R, k) / k, MAP@R
/// and MRR 1 wherever R > 0.
pub fn oracle(truth: &Truth, o: &EvalOptions) -> BTreeMap<String, f64> {
    let rows = (0..truth.r.len())
        .map(|q| {
            let (ideal, r) = (&truth.ideal[q], truth.r[q]);
            let mut vals = BTreeMap::new();
            for &k in &o.ks {
                let any = ideal.first().is_some_and(|&x| x > 0.0);
                vals.insert(format!("ndcg@{k}"), if any { 1.0 } else { 0.0 });
                vals.insert(format!("overlap@{k}"), m::overlap_at_k(ideal, k));
                vals.insert(format!("p@{k}"), r.min(k) as f64 / k as f64);
            }
            if r > 0 {
                vals.insert("map@r".into(), 1.0);
                vals.insert("mrr".into(), 1.0);
            }
            vals
        })
        .collect();
    PerQuery::from_rows(rows).means()
}

/// recall@10 of arroy's ANN against the exact top 10, over up to [`ANN_QUERIES`] queries.
fn ann_recall(
    store: &Store,
    x: &Indexed,
    flat: &[f32],
    keep: &[usize],
    queries: &[usize],
    lists: &[TopList],
) -> anyhow::Result<(f64, usize)> {
    let Some(meta) = &x.index else { return Ok((0.0, 0)) };
    let search_k = default_search_k(meta.n_trees);
    let step = (queries.len() / ANN_QUERIES).max(1);
    let sampled: Vec<usize> = (0..queries.len()).step_by(step).collect();
    // Each search reads up to `search_k` leaves of arroy's trees from the memory map (24 MB
    // at 1,280 floats), so 300 of them would map most of a COCO-size index (1.8 GB resident
    // at 123,287 images). A few searches per thread at a time, then the pages are let go.
    let mut recalls = Vec::with_capacity(sampled.len());
    for chunk in sampled.chunks(rayon::current_num_threads()) {
        let part: Vec<f64> = chunk
            .par_iter()
            .map(|&j| {
                let image = keep[queries[j]];
                let exact: Vec<u32> =
                    lists[j].iter().take(10).map(|&(_, d)| keep[d as usize] as u32).collect();
                let v = &flat[queries[j] * x.dim..(queries[j] + 1) * x.dim];
                let ann: Vec<u32> = store
                    .ann(meta, v, 11, Some(search_k))?
                    .into_iter()
                    .map(|(id, _)| id)
                    .filter(|&id| id != image as u32)
                    .take(10)
                    .collect();
                let hit = exact.iter().filter(|e| ann.contains(e)).count();
                Ok(hit as f64 / exact.len().max(1) as f64)
            })
            .collect::<anyhow::Result<_>>()?;
        recalls.extend(part);
        store.release_mapped_pages();
    }
    Ok((recalls.iter().sum::<f64>() / recalls.len().max(1) as f64, search_k))
}

/// Default `search_k` for the ANN: arroy's "precise" setting, k · n_trees · 15.
pub fn default_search_k(n_trees: usize) -> usize {
    10 * n_trees * 15
}

/// An evaluation: the report plus what the TUI needs to explain it.
pub struct Evaluation {
    pub report: EvalReport,
    /// Per model, every metric of every query (in the order of `queries`).
    pub per_query: Vec<PerQuery>,
    /// The queries: positions in the evaluated images, ascending.
    pub queries: Vec<usize>,
}

/// One model's rankings and metrics.
struct Scored {
    report: ModelReport,
    per_query: PerQuery,
    /// With `per_query`: each query's metrics and its top k_max neighbours.
    rows: Vec<(BTreeMap<String, f64>, TopList)>,
}

/// Dataset ids of the images every model embedded: the queries and candidates of an
/// evaluation.
pub fn evaluated_images(ds: &Dataset, indexed: &[Indexed]) -> Vec<usize> {
    (0..ds.samples.len()).filter(|&i| indexed.iter().all(|x| x.vectors[i].is_some())).collect()
}

/// The relevance model of the evaluated images (`keep`, in that order); semantic methods
/// embed the captions first (cached in `store`).
pub fn relevance_of(
    cfg: &Config,
    store: Option<&Store>,
    ds: &Dataset,
    keep: &[usize],
    method: Method,
    say: &dyn Fn(&str),
) -> anyhow::Result<Relevance> {
    let captions: Vec<Vec<String>> = keep.iter().map(|&i| ds.samples[i].captions.clone()).collect();
    super::captions::relevance(cfg, store, method, &captions, say)
}

/// Evaluates indexed models on the images every model embedded.
pub fn evaluate(
    cfg: &Config,
    store: &Store,
    ds: &Dataset,
    indexed: &[Indexed],
    o: &EvalOptions,
    on_stage: OnStage<'_>,
) -> anyhow::Result<Evaluation> {
    let keep = evaluated_images(ds, indexed);
    if keep.len() < 2 {
        bail!("fewer than 2 images could be embedded by every model; nothing to evaluate");
    }
    on_stage(&format!("caption relevance of {} images ({})", keep.len(), o.method), 0.0);
    let rel = relevance_of(cfg, Some(store), ds, &keep, o.method, &|m| on_stage(m, 0.0))?;
    evaluate_with(store, ds, indexed, &keep, &rel, o, on_stage)
}

/// [`evaluate`] with the evaluated images and their relevance model given.
pub fn evaluate_with(
    store: &Store,
    ds: &Dataset,
    indexed: &[Indexed],
    keep: &[usize],
    rel: &Relevance,
    o: &EvalOptions,
    on_stage: OnStage<'_>,
) -> anyhow::Result<Evaluation> {
    let t = Instant::now();
    let queries = query_positions(keep, &o.queries)?;
    let truth = Truth::new(rel, o, &queries);
    on_stage(&format!("relevance done in {:.1} s", t.elapsed().as_secs_f64()), 1.0);
    let scored: Vec<Scored> = indexed
        .iter()
        .map(|x| score_model(store, x, keep, &truth, rel, o, on_stage))
        .collect::<anyhow::Result<_>>()?;
    on_stage("intervals and comparisons", 0.0);
    let mut report = assemble(ds, indexed, keep, &truth, &scored, o);
    if o.per_query {
        report.per_query = query_results(ds, keep, &truth, rel, &scored);
    }
    let per_query = scored.into_iter().map(|s| s.per_query).collect();
    Ok(Evaluation { report, per_query, queries })
}

/// Ranks with one model and scores its rankings.
fn score_model(
    store: &Store,
    x: &Indexed,
    keep: &[usize],
    truth: &Truth,
    rel: &Relevance,
    o: &EvalOptions,
    on_stage: OnStage<'_>,
) -> anyhow::Result<Scored> {
    let t = Instant::now();
    let stage = if truth.queries.len() == keep.len() {
        format!("ranking all {} images with {}", keep.len(), x.model)
    } else {
        format!(
            "ranking {} queries among {} images with {}",
            truth.queries.len(),
            keep.len(),
            x.model
        )
    };
    on_stage(&stage, 0.0);
    let flat = x.rows(store, keep)?;
    // The store pages just read are in `flat` now: they need not stay resident while ranking.
    store.release_mapped_pages();
    let lengths = truth.list_lengths(o);
    let lists = top_lists_of(&flat, x.dim, &truth.queries, &lengths, &|f| on_stage(&stage, f));
    let (recall, search_k) = ann_recall(store, x, &flat, keep, &truth.queries, &lists)?;
    drop(flat);
    let metric_rows = metric_rows(&lists, truth, rel, o);
    let rows = if o.per_query {
        metric_rows
            .iter()
            .cloned()
            .zip(lists.iter().map(|l| l.iter().take(o.k_max()).copied().collect()))
            .collect()
    } else {
        Vec::new()
    };
    let per_query = PerQuery::from_rows(metric_rows);
    store.release_mapped_pages();
    on_stage(&format!("{} ranked and scored in {:.1} s", x.model, t.elapsed().as_secs_f64()), 1.0);
    let meta = x.index.as_ref();
    let from = x.provenance.as_ref();
    let report = ModelReport {
        name: x.model.clone(),
        dim: x.dim,
        device: from
            .map(|p| p.devices.join("+"))
            .or_else(|| x.device.clone())
            .unwrap_or_else(|| "unknown".into()),
        onnx_sha256: x.onnx_sha256.clone(),
        source: x.source.clone(),
        images_per_second: from
            .and_then(crate::store::Provenance::images_per_second)
            .or_else(|| x.images_per_second()),
        embed_seconds: x.embed_seconds,
        session_start_seconds: x.session_start_seconds,
        embedded: x.embedded,
        cached: x.cached,
        reused_vectors: x.embedded == 0,
        metrics: report::Metrics::new(),
        ann: Ann {
            recall_at_10: recall,
            n_trees: meta.map_or(0, |m| m.n_trees),
            search_k,
            build_seconds: meta.map_or(0.0, |m| m.build_seconds),
        },
    };
    Ok(Scored { report, per_query, rows })
}

/// Each query's metrics and top neighbours per model (neighbours with cosine and relevance).
fn query_results(
    ds: &Dataset,
    keep: &[usize],
    truth: &Truth,
    rel: &Relevance,
    scored: &[Scored],
) -> Vec<report::QueryResult> {
    let name = |i: u32| ds.samples[keep[i as usize]].name.clone();
    (0..truth.queries.len())
        .map(|j| (j, truth.queries[j]))
        .map(|(j, q)| report::QueryResult {
            image: name(q as u32),
            caption: ds.samples[keep[q]].captions.first().cloned().unwrap_or_default(),
            relevant: truth.r[j],
            models: scored
                .iter()
                .map(|s| {
                    let (metrics, top) = &s.rows[j];
                    let top = top
                        .iter()
                        .map(|&(cosine, d)| report::Hit {
                            image: name(d),
                            cosine,
                            relevance: rel.pair(q, d as usize),
                        })
                        .collect();
                    (s.report.name.clone(), report::QueryModel { metrics: metrics.clone(), top })
                })
                .collect(),
        })
        .collect()
}

/// The report: intervals for every metric (shared resamples), baselines, comparisons.
fn assemble(
    ds: &Dataset,
    indexed: &[Indexed],
    keep: &[usize],
    truth: &Truth,
    scored: &[Scored],
    o: &EvalOptions,
) -> EvalReport {
    let mut models: Vec<ModelReport> = scored.iter().map(|s| s.report.clone()).collect();
    let names: Vec<(usize, &String, &Vec<f64>)> = scored
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.per_query.values.iter().map(move |(k, v)| (i, k, v)))
        .collect();
    let vectors: Vec<&[f64]> = names.iter().map(|(_, _, v)| v.as_slice()).collect();
    for ((i, k, _), (mean, ci95)) in
        names.iter().zip(m::mean_ci_many(&vectors, o.bootstrap, o.seed))
    {
        models[*i].metrics.insert((*k).clone(), Stat { mean, ci95 });
    }
    EvalReport {
        schema: report::SCHEMA.into(),
        dataset: dataset_info(ds, indexed, keep.len(), truth, o),
        relevance: RelevanceInfo {
            method: o.method.to_string(),
            threshold: o.threshold,
            threshold_source: if o.threshold_given {
                "--threshold".into()
            } else {
                format!(
                    "default for {}: separates pairs people rate >= 4 from pairs rated <= 1 on CxC (docs/metrics.md)",
                    o.method
                )
            },
            semantic: o.method.semantic_version().into(),
            mean_pair_relevance: truth.mean_rel.iter().sum::<f64>()
                / truth.mean_rel.len().max(1) as f64,
            bootstrap_resamples: o.bootstrap,
            seed: o.seed,
        },
        k: o.ks.clone(),
        models,
        baselines: Baselines { random: random_baseline(truth, o), oracle: oracle(truth, o) },
        comparisons: comparisons(scored, o),
        environment: super::environment(),
        per_query: Vec::new(),
        check: None,
    }
}

/// Paired permutation tests of the main metric between every two models.
fn comparisons(scored: &[Scored], o: &EvalOptions) -> Vec<Comparison> {
    let main = |s: &Scored| s.per_query.values.get(&o.main_metric()).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (i, a) in scored.iter().enumerate() {
        for b in &scored[i + 1..] {
            let (delta, p_value) = m::paired_permutation(&main(a), &main(b), o.bootstrap, o.seed);
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

fn dataset_info(
    ds: &Dataset,
    indexed: &[Indexed],
    evaluated: usize,
    truth: &Truth,
    o: &EvalOptions,
) -> DatasetInfo {
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for x in indexed {
        for (image, reason) in &x.skipped {
            if seen.insert(image.clone()) {
                skipped.push(Skipped { image: image.clone(), reason: reason.clone() });
            }
        }
    }
    DatasetInfo {
        root: ds.root.display().to_string(),
        format: ds.format.to_string(),
        images: ds.samples.len(),
        queries: truth.queries.len(),
        query_sample: o.queries.sample().map(|(size, seed)| report::QuerySample {
            size,
            of: evaluated,
            seed,
            drawn: report::QUERY_DRAW.into(),
        }),
        queries_without_relevant: truth.r.iter().filter(|&&r| r == 0).count(),
        skipped,
        issues: ds.issues.len(),
        fingerprint: ds.fingerprint(),
        truncated_accepted: indexed.iter().map(|x| x.truncated).max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_threshold_a_sample_is_the_default_and_is_announced() {
        let (set, said) = QuerySet::resolve(None, SAMPLE_ABOVE, 0).unwrap();
        assert_eq!((set, said), (QuerySet::All, None), "at the threshold: every query");
        let (set, said) = QuerySet::resolve(None, 123_287, 4).unwrap();
        assert_eq!(set, QuerySet::Sample { size: DEFAULT_QUERIES, seed: 4 });
        let said = said.unwrap();
        assert!(said.contains("123287 images") && said.contains("--queries all"), "{said}");
        let (set, said) = QuerySet::resolve(Some(QueryCount::All), 123_287, 4).unwrap();
        assert_eq!((set, said), (QuerySet::All, None));
        let err = QuerySet::resolve(Some(QueryCount::Sample(11)), 10, 0).unwrap_err();
        assert!(err.to_string().contains("ask for at most 10"), "{err}");
    }

    #[test]
    fn query_positions_draw_sorted_and_map_named_images() {
        let keep = [0, 2, 3, 5, 8, 9];
        let s = query_positions(&keep, &QuerySet::Sample { size: 3, seed: 1 }).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert_eq!(s, query_positions(&keep, &QuerySet::Sample { size: 3, seed: 1 }).unwrap());
        // Dataset ids 8 and 2 are at positions 4 and 1 of `keep`; id 4 was not embedded.
        assert_eq!(query_positions(&keep, &QuerySet::Images(vec![8, 2])).unwrap(), [1, 4]);
        assert!(query_positions(&keep, &QuerySet::Images(vec![4])).is_err());
        assert_eq!(query_positions(&keep, &QuerySet::All).unwrap(), [0, 1, 2, 3, 4, 5]);
    }
}
