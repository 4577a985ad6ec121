//! `embtui bench …`: measurements behind `just bench` (docs/performance.md). Each prints one
//! JSON object on stdout; bench/run.py runs them beside the Python/faiss baselines.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;

use super::embed::{self, Job};
use crate::cli::{BenchArgs, BenchCmd, DatasetArgs};
use crate::config::Config;
use crate::rng::SplitMix64;
use crate::store::{IndexMeta, Store, DEFAULT_N_TREES, SEED};

/// Runs one `embtui bench` measurement and prints it (one JSON object with `--json`).
pub fn run(cfg: &Config, a: BenchArgs) -> anyhow::Result<ExitCode> {
    let tmp = std::env::temp_dir();
    let line = match a.what {
        BenchCmd::Embed { data, model, batch } => {
            serde_json::to_string(&embed(cfg, &data, &model.name, batch.size)?)?
        }
        BenchCmd::Search { n, dim, queries } => {
            let (n, dim) = (usize::try_from(n)?, usize::try_from(dim)?);
            let label = format!("synthetic-{n}x{dim}");
            serde_json::to_string(&search(&synthetic(n, dim, 7), queries, &label, &tmp)?)?
        }
        BenchCmd::SearchReal { data, model } => {
            let ds = cfg.dataset(&data)?;
            let store = Store::open(&cfg.store_dir)?;
            let entry = cfg.model(&model.name)?;
            let x = super::index::index_model(
                cfg,
                &store,
                &ds,
                &entry,
                crate::cli::DEFAULT_BATCH,
                None,
                None,
                super::index::Vectors::Resident,
            )?;
            let rows: Vec<f32> = x.vectors.iter().flatten().flatten().copied().collect();
            let n = rows.len() / entry.dim;
            let a = Array2::from_shape_vec((n, entry.dim), rows)?;
            serde_json::to_string(&search(&a, n, &format!("{}-{n}", model.name), &tmp)?)?
        }
        BenchCmd::Tui { .. } => unreachable!("main dispatches `bench tui` to the TUI"),
    };
    print(&line, a.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a measurement: the JSON object with `--json`, else one `key: value` line per
/// figure (nested objects indented).
pub fn print(json_line: &str, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{json_line}")?;
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_str(json_line)?;
    walk(&mut out, &v, 0)?;
    Ok(())
}

/// `bench embed`: images/s of each stage.
#[derive(Debug, Serialize)]
pub struct EmbedBench {
    bench: &'static str,
    model: String,
    images: usize,
    batch: usize,
    device: String,
    end_to_end_images_per_s: f64,
    inference_only_images_per_s: f64,
    ratio: f64,
    decode_preprocess_images_per_s_per_core: f64,
    decode_only_images_per_s_per_core: f64,
    /// Starting every lane's ONNX Runtime session (on CUDA: with the warm-up batch).
    session_start_seconds: f64,
    /// Where the end-to-end run spent its time.
    pipeline: embed::Stats,
}

/// End to end vs inference alone vs decode + preprocess alone, for one model.
pub fn embed(
    cfg: &Config,
    data: &DatasetArgs,
    model: &str,
    batch: usize,
) -> anyhow::Result<EmbedBench> {
    let ds = cfg.dataset(data)?;
    let mut emb = super::open_model(cfg, model, true, super::Workload::Many)?;
    let jobs: Vec<Job> =
        ds.samples.iter().enumerate().map(|(i, s)| Job { key: i, path: s.path.clone() }).collect();
    let n = jobs.len();
    let plan = embed::plan(emb.device, cfg.threads);
    let opts = cfg.decode;
    // Warm-up, not timed: every lane's session made and run once (ONNX Runtime allocates its
    // arenas on the first runs).
    let warm = (batch * plan.lanes).min(n);
    embed::run(&mut emb, &jobs[..warm], batch, &opts, plan, |_| true)?;
    let t = Instant::now();
    let mut done = 0usize;
    let stats = embed::run(&mut emb, &jobs, batch, &opts, plan, |o| {
        done += o.iter().filter(|(_, r)| r.is_ok()).count();
        true
    })?;
    let end_to_end = done as f64 / t.elapsed().as_secs_f64();
    // Inference alone on ready tensors, in the same plan: one batch preprocessed once, run
    // n / batch times over all lanes at once.
    let per = (emb.entry.size as usize).pow(2) * 3;
    let mut tensor = vec![0.0f32; per * batch];
    for (i, job) in jobs.iter().take(batch).enumerate() {
        crate::model::preprocess::load_tensor(
            &job.path,
            &emb.entry,
            &opts,
            &mut tensor[i * per..(i + 1) * per],
        )?;
    }
    let (n_lanes, even) = embed::lane_layout(n, batch, plan.lanes);
    let lanes = emb.lanes(n_lanes)?;
    let n_lanes = lanes.len(); // 1 on CUDA
    let rounds = n.div_ceil(even);
    let t = Instant::now();
    std::thread::scope(|scope| {
        let runs: Vec<_> = lanes
            .into_iter()
            .enumerate()
            .map(|(i, mut lane)| {
                let tensor = &tensor;
                scope.spawn(move || -> Result<(), crate::model::ModelError> {
                    for _ in (i..rounds).step_by(n_lanes) {
                        lane.embed_batch(&tensor[..even * per], even)?;
                    }
                    Ok(())
                })
            })
            .collect();
        runs.into_iter().try_for_each(|r| r.join().unwrap_or(Ok(())))
    })?;
    let infer = (rounds * even) as f64 / t.elapsed().as_secs_f64();
    // Decode + preprocess alone, on one core.
    let t = Instant::now();
    let mut buf = vec![0.0f32; per];
    for job in &jobs {
        let _ = crate::model::preprocess::load_tensor(&job.path, &emb.entry, &opts, &mut buf);
    }
    let decode_per_core = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for job in &jobs {
        let _ = crate::decode::load_rgb(&job.path);
    }
    let decode_only = n as f64 / t.elapsed().as_secs_f64();
    Ok(EmbedBench {
        bench: "embed",
        model: model.to_owned(),
        images: n,
        batch,
        device: emb.device.to_string(),
        end_to_end_images_per_s: end_to_end,
        inference_only_images_per_s: infer,
        ratio: end_to_end / infer,
        decode_preprocess_images_per_s_per_core: decode_per_core,
        decode_only_images_per_s_per_core: decode_only,
        session_start_seconds: emb.start_seconds,
        pipeline: stats,
    })
}

/// Writes a JSON value as indented `key: value` lines.
fn walk(out: &mut impl Write, v: &serde_json::Value, indent: usize) -> std::io::Result<()> {
    let pad = " ".repeat(indent);
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match x {
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        writeln!(out, "{pad}{k}:")?;
                        walk(out, x, indent + 2)?;
                    }
                    serde_json::Value::Number(n) => match n.as_f64() {
                        Some(f) if n.is_f64() => writeln!(out, "{pad}{k}: {f:.3}")?,
                        _ => writeln!(out, "{pad}{k}: {n}")?,
                    },
                    other => writeln!(
                        out,
                        "{pad}{k}: {}",
                        other.as_str().map_or(other.to_string(), str::to_owned)
                    )?,
                }
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                writeln!(out, "{pad}[{i}]")?;
                walk(out, x, indent + 2)?;
            }
        }
        other => writeln!(out, "{pad}{other}")?,
    }
    Ok(())
}

/// Unit vectors drawn from a fixed-seed Gaussian (Box–Muller on SplitMix64).
pub fn synthetic(n: usize, dim: usize, seed: u64) -> Array2<f32> {
    let mut rng = SplitMix64(seed);
    let mut u = || rng.unit();
    let mut a = Array2::<f32>::zeros((n, dim));
    for mut row in a.rows_mut() {
        for x in &mut row {
            *x = ((-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos()) as f32;
        }
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.mapv_inplace(|x| x / norm);
    }
    a
}

/// Exact top-k by inner product for each row of `q` against `v` (blocked, all cores).
pub fn exact_topk(v: &ArrayView2<f32>, q: &ArrayView2<f32>, k: usize) -> Vec<Vec<(u32, f32)>> {
    let block = 256;
    (0..q.nrows().div_ceil(block))
        .into_par_iter()
        .flat_map_iter(|b| {
            let qb = q.slice(s![b * block..((b + 1) * block).min(q.nrows()), ..]);
            let scores = qb.dot(&v.t());
            scores
                .rows()
                .into_iter()
                .map(|row| {
                    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
                    for (i, &sc) in row.iter().enumerate() {
                        if best.len() < k || sc > best[best.len() - 1].1 {
                            let pos = best.partition_point(|&(_, s)| s >= sc);
                            best.insert(pos, (i as u32, sc));
                            best.truncate(k);
                        }
                    }
                    best
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// arroy at one `search_k`: latency and recall.
#[derive(Debug, Serialize)]
pub struct AnnPoint {
    search_k: usize,
    p50_ms: f64,
    p99_ms: f64,
    #[serde(rename = "recall@10")]
    recall_at_10: f64,
}

/// `bench search` / `bench search-real`.
#[derive(Debug, Serialize)]
pub struct SearchBench {
    bench: &'static str,
    vectors: String,
    n: usize,
    dim: usize,
    queries: usize,
    exact_top10_seconds: f64,
    exact_queries_per_s: f64,
    arroy_build_seconds: f64,
    n_trees: usize,
    ann: Vec<AnnPoint>,
}

/// Exact top-10 and arroy (build, p50/p99 latency, recall@10) on `vectors`.
pub fn search(
    vectors: &Array2<f32>,
    queries: usize,
    label: &str,
    store_dir: &std::path::Path,
) -> anyhow::Result<SearchBench> {
    let (n, dim) = vectors.dim();
    let nq = queries.min(n);
    let qs = vectors.slice(s![..nq, ..]).to_owned();
    let t = Instant::now();
    let exact = exact_topk(&vectors.view(), &qs.view(), 11);
    let exact_s = t.elapsed().as_secs_f64();
    let dir = tempfile::Builder::new()
        .prefix("embtui-bench")
        .tempdir_in(store_dir)
        .context("temp store")?;
    let store = Store::open(dir.path())?;
    let items: Vec<(u32, Vec<f32>)> =
        vectors.rows().into_iter().enumerate().map(|(i, r)| (i as u32, r.to_vec())).collect();
    let meta = IndexMeta {
        model: label.into(),
        onnx_sha256: String::new(),
        dim,
        entry: serde_json::Value::Null,
        embtui_version: env!("CARGO_PKG_VERSION").into(),
        dataset_fingerprint: label.into(),
        n_trees: DEFAULT_N_TREES,
        seed: SEED,
        ..IndexMeta::default()
    };
    let meta = store.build_index(&meta, &items)?;
    let mut per_k = Vec::new();
    for search_k in [
        super::eval::default_search_k(DEFAULT_N_TREES) / 4,
        super::eval::default_search_k(DEFAULT_N_TREES),
        super::eval::default_search_k(DEFAULT_N_TREES) * 4,
    ] {
        let mut lat = Vec::with_capacity(nq);
        let mut recall = 0.0;
        for (qi, row) in qs.rows().into_iter().enumerate() {
            let v = row.to_vec();
            let t = Instant::now();
            let hits = store.ann(&meta, &v, 11, Some(search_k))?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            let want: Vec<u32> =
                exact[qi].iter().map(|h| h.0).filter(|&i| i as usize != qi).take(10).collect();
            let got: Vec<u32> =
                hits.iter().map(|h| h.0).filter(|&i| i as usize != qi).take(10).collect();
            recall +=
                want.iter().filter(|w| got.contains(w)).count() as f64 / want.len().max(1) as f64;
        }
        lat.sort_by(f64::total_cmp);
        per_k.push(AnnPoint {
            search_k,
            p50_ms: percentile(&lat, 0.5),
            p99_ms: percentile(&lat, 0.99),
            recall_at_10: recall / nq as f64,
        });
    }
    Ok(SearchBench {
        bench: "search",
        vectors: label.to_owned(),
        n,
        dim,
        queries: nq,
        exact_top10_seconds: exact_s,
        exact_queries_per_s: nq as f64 / exact_s,
        arroy_build_seconds: meta.build_seconds,
        n_trees: DEFAULT_N_TREES,
        ann: per_k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_topk_matches_brute_force_on_a_small_case() {
        let v = ndarray::array![[1.0f32, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]];
        let q = ndarray::array![[1.0f32, 0.0]];
        let top = exact_topk(&v.view(), &q.view(), 3);
        assert_eq!(top[0].iter().map(|h| h.0).collect::<Vec<_>>(), [0, 2, 1]);
        assert_eq!(top[0][1].1, 0.6);
    }

    #[test]
    fn synthetic_vectors_are_unit_length_and_seeded() {
        let a = synthetic(5, 8, 1);
        assert!(a.rows().into_iter().all(|r| (r.dot(&r) - 1.0).abs() < 1e-5));
        assert_eq!(a, synthetic(5, 8, 1));
    }
}
