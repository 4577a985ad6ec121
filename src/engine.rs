//! Pipelines behind each subcommand: export, index, search, eval, models, doctor.

pub mod bench;
pub mod browse;
pub mod embed;
pub mod eval;
pub mod index;
pub mod sanity;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::Command;
use crate::config::Config;
use crate::model::Embedder;
use crate::relevance::Method;
use crate::report::{self, EvalReport};
use crate::store::Store;

/// Runs one subcommand.
pub fn dispatch(cfg: &Config, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Export { data, model, out, batch, logits } => {
            export(cfg, &data, &model, &out, batch, logits)
        }
        Command::Index { data, model, batch } => {
            let ds = cfg.dataset(&data)?;
            index_all(cfg, &Store::open(&cfg.store_dir)?, &ds, &model, batch)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            data,
            model,
            k,
            relevance,
            threshold,
            bootstrap,
            json,
            out,
            check,
            tolerance,
            batch,
        } => {
            let method: Method = relevance.parse().map_err(anyhow::Error::msg)?;
            let opts = eval::EvalOptions { ks: k, method, threshold, bootstrap, seed: 0 };
            let output = EvalOutput { json, out, check, tolerance };
            eval_cmd(cfg, &data, &model, opts, &output, batch)
        }
        Command::Search { image, text, data, model, k, exact, json, show } => {
            let query = match (&image, &text) {
                (Some(p), _) => Query::Image(p),
                (None, Some(t)) => Query::Text(t),
                (None, None) => bail!("give a query image or --text"),
            };
            search(cfg, &query, &data, &model, k, exact, json, show)
        }
        Command::TextEmbed { model, text } => text_embed(cfg, &model, &text),
        Command::Models { json } => models(cfg, json),
        Command::Dataset { data, json } => sanity::dataset_summary(&cfg.dataset(&data)?, json),
        Command::Relevance { data, subjects, pair, relevance, json } => {
            let methods: Vec<Method> = match relevance {
                Some(r) => vec![r.parse().map_err(anyhow::Error::msg)?],
                None => vec![Method::Tfidf, Method::Jaccard],
            };
            sanity::relevance_cmd(&cfg.dataset(&data)?, &subjects, &pair, &methods, json)
        }
        Command::Bench(b) => {
            writeln!(std::io::stdout(), "{}", bench::run(cfg, b)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Browse { data, model, image_protocol } => {
            browse::browse(cfg, &data, &model, image_protocol)
        }
        Command::Doctor => doctor(cfg),
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "embtui", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Indexes `ds` with every named model, reporting data issues and a summary per model.
pub fn index_all(
    cfg: &Config,
    store: &Store,
    ds: &crate::dataset::Dataset,
    models: &[String],
    batch: usize,
) -> anyhow::Result<Vec<index::Indexed>> {
    report_issues(ds);
    let mut indexed = Vec::new();
    for entry in cfg.models(models)? {
        let x = index::index_model(cfg, store, ds, &entry, batch, None)?;
        summary(&x);
        indexed.push(x);
    }
    Ok(indexed)
}

/// Where an evaluation's report goes and what it is checked against.
struct EvalOutput {
    json: bool,
    out: Option<std::path::PathBuf>,
    check: Option<std::path::PathBuf>,
    tolerance: f64,
}

fn eval_cmd(
    cfg: &Config,
    data: &crate::cli::DatasetArgs,
    models: &[String],
    opts: eval::EvalOptions,
    o: &EvalOutput,
    batch: usize,
) -> anyhow::Result<ExitCode> {
    if opts.ks.is_empty() || opts.ks.contains(&0) {
        bail!("--k needs cut-offs of at least 1, e.g. --k 1,5,10");
    }
    // Read the baseline first: a bad path should fail before minutes of embedding.
    let baseline = o.check.as_deref().map(load_report).transpose()?;
    let ds = cfg.dataset(data)?;
    if !ds.has_captions() {
        bail!("{} is a plain image folder: metrics need captions (Flickr30k, Flickr8k or COCO layout); `embtui search` works without them", ds.root.display());
    }
    let store = Store::open(&cfg.store_dir)?;
    let indexed = index_all(cfg, &store, &ds, models, batch)?;
    let rep = eval::evaluate(&store, &ds, &indexed, &opts)?.report;
    let text = serde_json::to_string_pretty(&rep)?;
    if let Some(p) = &o.out {
        std::fs::write(p, format!("{text}\n"))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if o.json {
        writeln!(stdout, "{text}")?;
    } else {
        write!(stdout, "{}", crate::text::sanitize_lines(&report::table(&rep)))?;
    }
    let (Some(b), Some(path)) = (baseline, &o.check) else { return Ok(ExitCode::SUCCESS) };
    let regs = report::regressions(&rep, &b, o.tolerance);
    for r in &regs {
        eprintln!("embtui: regression: {r}");
    }
    if !regs.is_empty() {
        return Ok(ExitCode::from(1));
    }
    eprintln!("embtui: check passed against {} (tolerance {})", path.display(), o.tolerance);
    Ok(ExitCode::SUCCESS)
}

fn text_embed(cfg: &Config, model: &str, texts: &[String]) -> anyhow::Result<ExitCode> {
    let entry = cfg.models(&[model.to_owned()])?.remove(0);
    let mut t = crate::model::TextEmbedder::open(&entry, &cfg.models_dir)?;
    let mut out = std::io::stdout().lock();
    for line in texts {
        let ids = t.token_ids(line)?;
        let v = t.embed(line)?;
        let row = serde_json::json!({"model": model, "text": line, "ids": ids, "embedding": v});
        writeln!(out, "{row}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens one model, saying on stderr when `auto` fell back to CPU.
pub fn open_model(cfg: &Config, name: &str, say_fallback: bool) -> anyhow::Result<Embedder> {
    let entry = cfg.models(&[name.to_owned()])?.remove(0);
    let e = Embedder::open(&entry, &cfg.models_dir, cfg.device, cfg.threads)?;
    if let (true, Some(why)) = (say_fallback, &e.fallback) {
        eprintln!("embtui: {}: using CPU ({})", e.entry.name, crate::text::sanitize(why));
    }
    Ok(e)
}

fn export(
    cfg: &Config,
    data: &crate::cli::DatasetArgs,
    model: &str,
    out: &std::path::Path,
    batch: usize,
    logits: bool,
) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(data)?;
    let mut emb = open_model(cfg, model, true)?;
    if logits && emb.entry.logits.is_none() {
        bail!("model `{model}` has no `logits` output in its manifest entry; drop --logits");
    }
    emb.with_logits = logits;
    let jobs: Vec<embed::Job> = ds
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| embed::Job { key: i, path: s.path.clone() })
        .collect();
    let dim = emb.entry.dim;
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::with_capacity(jobs.len());
    let mut skipped = 0usize;
    let t0 = std::time::Instant::now();
    embed::run(&mut emb, &jobs, batch, |outcomes| {
        for (key, r) in outcomes {
            match r {
                Ok(v) => rows.push((key, v)),
                Err(e) => {
                    skipped += 1;
                    eprintln!(
                        "embtui: skipped {}: {e}",
                        crate::text::sanitize(&ds.samples[key].name)
                    );
                }
            }
        }
        true
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if logits {
        let lrows: Vec<(usize, Vec<f32>)> =
            rows.iter_mut().map(|(k, v)| (*k, v.split_off(dim))).collect();
        let classes = lrows.first().map_or(0, |r| r.1.len());
        let lpath = out.with_extension("logits.npy");
        write_npy(&lpath, &lrows, classes)
            .with_context(|| format!("writing {}", lpath.display()))?;
    }
    write_npy(out, &rows, dim).with_context(|| format!("writing {}", out.display()))?;
    let ids = out.with_extension("ids.txt");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&ids).with_context(|| format!("creating {}", ids.display()))?,
    );
    for (key, _) in &rows {
        writeln!(f, "{}", ds.samples[*key].name)?;
    }
    f.flush()?;
    eprintln!(
        "embtui: {} images → {} ({}×{dim}, {skipped} skipped) on {} in {secs:.1} s = {:.1} images/s",
        rows.len(),
        out.display(),
        rows.len(),
        emb.device,
        rows.len() as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a float32 `.npy` (format 1.0) with `rows.len()` rows of `dim`.
pub fn write_npy(
    path: &std::path::Path,
    rows: &[(usize, Vec<f32>)],
    dim: usize,
) -> std::io::Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", rows.len());
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let tmp = path.with_extension("npy.partial");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for (_, v) in rows {
        for x in v {
            f.write_all(&x.to_le_bytes())?;
        }
    }
    f.flush()?;
    drop(f);
    std::fs::rename(tmp, path)
}

fn report_issues(ds: &crate::dataset::Dataset) {
    for i in ds.issues.iter().take(10) {
        let line = i.line.map_or(String::new(), |l| format!(":{l}"));
        eprintln!(
            "embtui: {}{line}: {}",
            crate::text::sanitize(&i.file),
            crate::text::sanitize(&i.message)
        );
    }
    if ds.issues.len() > 10 {
        eprintln!(
            "embtui: … and {} more data issues (counted in the report)",
            ds.issues.len() - 10
        );
    }
}

fn summary(x: &index::Indexed) {
    let rate = x
        .images_per_second()
        .map_or(String::new(), |r| format!(" at {r:.1} images/s on {}", x.device));
    eprintln!(
        "embtui: {}: {} embedded{rate}, {} cached, {} skipped; index of {} items ({} trees)",
        x.meta.model,
        x.embedded,
        x.cached,
        x.skipped.len(),
        x.meta.n_items,
        x.meta.n_trees
    );
    for (img, why) in x.skipped.iter().take(10) {
        eprintln!(
            "embtui:   skipped {}: {}",
            crate::text::sanitize(img),
            crate::text::sanitize(why)
        );
    }
}

fn load_report(p: &std::path::Path) -> anyhow::Result<EvalReport> {
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

/// Machine facts recorded in every report.
pub fn environment() -> report::Environment {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    // Loading the runtime takes milliseconds; a fully cached run has not needed it otherwise.
    let _ = crate::model::runtime(false);
    let gpu = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
        .filter(|s| !s.is_empty());
    report::Environment {
        embtui_version: env!("CARGO_PKG_VERSION").into(),
        onnxruntime_version: crate::model::runtime_version(),
        cpu,
        gpu,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// What a search starts from.
pub enum Query<'a> {
    Image(&'a std::path::Path),
    Text(&'a str),
}

impl Query<'_> {
    fn label(&self) -> String {
        match self {
            Query::Image(p) => p.display().to_string(),
            Query::Text(t) => format!("text: {t}"),
        }
    }
}

/// Query encoders, opened on first use and kept: the TUI embeds many queries per session.
#[derive(Default)]
pub struct QueryEmbedders {
    images: std::collections::HashMap<String, Embedder>,
    texts: std::collections::HashMap<String, crate::model::TextEmbedder>,
}

impl QueryEmbedders {
    /// Embeds a query (image file or text) with `entry`'s model, in the dataset's vector space.
    pub fn embed(
        &mut self,
        cfg: &Config,
        entry: &crate::model::ModelEntry,
        query: &Query<'_>,
        say_fallback: bool,
    ) -> anyhow::Result<Vec<f32>> {
        match query {
            Query::Image(path) => {
                let emb = match self.images.entry(entry.name.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(open_model(cfg, &entry.name, say_fallback)?)
                    }
                };
                let mut input = vec![0.0f32; (entry.size as usize).pow(2) * 3];
                crate::model::preprocess::load_tensor(path, entry, &mut input)
                    .with_context(|| format!("query image {}", path.display()))?;
                Ok(emb.embed_batch(&input, 1)?)
            }
            Query::Text(text) => {
                let t = match self.texts.entry(entry.name.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(crate::model::TextEmbedder::open(entry, &cfg.models_dir)?)
                    }
                };
                Ok(t.embed(text)?)
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // one per flag of `embtui search`
fn search(
    cfg: &Config,
    query: &Query<'_>,
    data: &crate::cli::DatasetArgs,
    model: &str,
    k: usize,
    exact: bool,
    json: bool,
    show: bool,
) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(data)?;
    let store = Store::open(&cfg.store_dir)?;
    let entry = cfg.models(&[model.to_owned()])?.remove(0);
    let x = index::index_model(cfg, &store, &ds, &entry, 16, None)?;
    let q = QueryEmbedders::default().embed(cfg, &entry, query, true)?;
    let hits: Vec<(u32, f32)> = if exact {
        let stored = x.vectors.iter().enumerate();
        let mut all = eval::rank(stored.filter_map(|(i, v)| Some((i as u32, v.as_deref()?))), &q);
        all.truncate(k);
        all
    } else {
        store.ann(&x.meta, &q, k, Some(eval::default_search_k(x.meta.n_trees)))?
    };
    if hits.is_empty() {
        eprintln!("embtui: nothing found");
        return Ok(ExitCode::from(1));
    }
    let mut stdout = std::io::stdout().lock();
    if json {
        let v: Vec<serde_json::Value> = hits
            .iter()
            .map(|&(id, score)| {
                let s = &ds.samples[id as usize];
                serde_json::json!({"image": s.name, "score": score, "caption": s.captions.first()})
            })
            .collect();
        writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"query": query.label(), "model": model, "exact": exact, "hits": v})
            )?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let (true, Query::Image(image)) = (show, query) {
        show_thumb(image, "query");
    }
    for (rank, &(id, score)) in hits.iter().enumerate() {
        let s = &ds.samples[id as usize];
        if show {
            show_thumb(&s.path, &s.name);
        }
        let cap = s.captions.first().map_or("", String::as_str);
        writeln!(
            stdout,
            "{:>2}. {score:.3}  {}  {}",
            rank + 1,
            crate::text::sanitize(&s.name),
            crate::text::sanitize(cap)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show_thumb(path: &std::path::Path, label: &str) {
    let conf = viuer::Config { width: Some(24), absolute_offset: false, ..Default::default() };
    match crate::model::preprocess::load_rgb(path) {
        Ok(img) => {
            if let Err(e) = viuer::print(&image::DynamicImage::ImageRgb8(img), &conf) {
                eprintln!("embtui: cannot draw {}: {e}", crate::text::sanitize(label));
            }
        }
        Err(e) => eprintln!("embtui: cannot draw {}: {e}", crate::text::sanitize(label)),
    }
}

/// A manifest model's file on disk against the sha256 `just setup` recorded.
struct ModelFile {
    path: std::path::PathBuf,
    sha256: Option<String>,
    recorded: Option<String>,
}

impl ModelFile {
    fn check(cfg: &Config, lock: &serde_json::Value, m: &crate::model::ModelEntry) -> Self {
        let path = cfg.models_dir.join(&m.file);
        let sha256 = path.is_file().then(|| crate::hash::file_sha256(&path).ok()).flatten();
        let recorded = lock[&m.name]["sha256"].as_str().map(str::to_owned);
        Self { path, sha256, recorded }
    }

    /// Some(true) when the file matches its recorded hash, Some(false) when it changed.
    fn verified(&self) -> Option<bool> {
        Some(self.sha256.as_ref()? == self.recorded.as_ref()?)
    }
}

fn read_lock(cfg: &Config) -> serde_json::Value {
    std::fs::read_to_string(cfg.models_dir.join("models.lock.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn models(cfg: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let lock = read_lock(cfg);
    let rows: Vec<serde_json::Value> = cfg
        .manifest
        .models
        .iter()
        .map(|m| {
            let f = ModelFile::check(cfg, &lock, m);
            serde_json::json!({"name": m.name, "family": m.family, "dim": m.dim, "size": m.size,
                "license": m.license, "source": m.source, "installed": f.sha256.is_some(),
                "sha256": f.sha256, "verified": f.verified(), "file": f.path.display().to_string()})
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        writeln!(
            out,
            "{:<22}{:>6}{:>6}  {:<14}{:<11}verified",
            "model", "dim", "px", "licence", "installed"
        )?;
        for r in &rows {
            let verified = match r["verified"].as_bool() {
                Some(true) => "sha256 ok",
                Some(false) => "CHANGED",
                None => "-",
            };
            writeln!(
                out,
                "{:<22}{:>6}{:>6}  {:<14}{:<11}{}",
                r["name"].as_str().unwrap_or(""),
                r["dim"],
                r["size"],
                r["license"].as_str().unwrap_or(""),
                if r["installed"].as_bool() == Some(true) { "yes" } else { "no" },
                verified
            )?;
        }
        writeln!(out, "models folder: {}", cfg.models_dir.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn doctor(cfg: &Config) -> anyhow::Result<ExitCode> {
    let mut problems = 0;
    let mut out = std::io::stdout().lock();
    match crate::model::runtime(cfg.device != crate::model::Device::Cpu) {
        Ok(_) => writeln!(
            out,
            "ok   ONNX Runtime {} from {}",
            crate::model::runtime_version().unwrap_or_default(),
            crate::model::runtime_path().map_or(String::new(), |p| p.display().to_string())
        )?,
        Err(e) => {
            problems += 1;
            writeln!(out, "FAIL {e}")?;
        }
    }
    if let Some(entry) = cfg.manifest.models.iter().find(|m| cfg.models_dir.join(&m.file).is_file())
    {
        match Embedder::open(entry, &cfg.models_dir, crate::model::Device::Cuda, 0) {
            Ok(e) => writeln!(
                out,
                "ok   CUDA usable ({} ran a warm-up batch on {})",
                entry.name, e.device
            )?,
            Err(e) => writeln!(out, "info CUDA not usable: {e}")?,
        }
    }
    let lock = read_lock(cfg);
    for m in &cfg.manifest.models {
        let f = ModelFile::check(cfg, &lock, m);
        let Some(sha) = &f.sha256 else {
            writeln!(out, "info {}: not installed ({}); `just setup` installs the offline models, `just export-hf {}` the others", m.name, f.path.display(), m.name)?;
            continue;
        };
        match f.verified() {
            Some(true) => writeln!(out, "ok   {}: sha256 {} verified", m.name, &sha[..16])?,
            Some(false) => {
                problems += 1;
                writeln!(
                    out,
                    "FAIL {}: sha256 {} differs from models.lock.json; run `just setup` again",
                    m.name,
                    &sha[..16]
                )?;
            }
            None => writeln!(
                out,
                "info {}: sha256 {} (not recorded in models.lock.json)",
                m.name,
                &sha[..16]
            )?,
        }
    }
    match Store::open(&cfg.store_dir) {
        Ok(s) => writeln!(
            out,
            "ok   store {}: {} cached vectors, {} indexes",
            s.path().display(),
            s.n_cached()?,
            s.indexes()?.len()
        )?,
        Err(e) => {
            problems += 1;
            writeln!(out, "FAIL {e:#}")?;
        }
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
