//! `models` (the zoo and its sha256 checks) and `doctor` (is everything in place, and how to
//! fix what is not). Both read one typed row per model.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::config::Config;
use crate::model::{Device, ModelEntry};
use crate::store::Store;
use crate::text::{fit, terminal_width, Table};

/// One model of the zoo as `models` shows it (table and `--json` alike).
#[derive(Debug, Serialize)]
pub struct ModelRow {
    pub name: String,
    pub family: String,
    pub dim: usize,
    pub size: u32,
    pub license: String,
    pub source: String,
    pub installed: bool,
    pub sha256: Option<String>,
    /// True when the file matches the sha256 `just setup` recorded, false when it changed,
    /// null when nothing was recorded.
    pub verified: Option<bool>,
    /// Recorded side files (e.g. `NAME.onnx.data`) that are missing or differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    pub file: PathBuf,
}

impl ModelRow {
    fn check(cfg: &Config, lock: &serde_json::Value, m: &ModelEntry) -> Self {
        let file = cfg.models_dir.join(&m.file);
        let sha256 = file.is_file().then(|| crate::hash::file_sha256(&file).ok()).flatten();
        let recorded = lock[&m.name]["sha256"].as_str().map(str::to_owned);
        // The model's other files (external data, text tower, tokenizer), each as recorded.
        let changed: Vec<String> = lock[&m.name]["files"]
            .as_object()
            .map(|files| {
                files
                    .iter()
                    .filter(|(f, h)| {
                        crate::hash::file_sha256(&cfg.models_dir.join(f)).ok().as_deref()
                            != h.as_str()
                    })
                    .map(|(f, _)| f.clone())
                    .collect()
            })
            .unwrap_or_default();
        let verified =
            sha256.as_ref().zip(recorded.as_ref()).map(|(a, b)| a == b && changed.is_empty());
        Self {
            name: m.name.clone(),
            family: m.family.clone(),
            dim: m.dim,
            size: m.size,
            license: m.license.clone(),
            source: m.source.clone(),
            installed: sha256.is_some(),
            sha256,
            verified,
            changed,
            file,
        }
    }

    fn verified_label(&self) -> &'static str {
        match self.verified {
            Some(true) => "sha256 ok",
            Some(false) => "CHANGED",
            None => "-",
        }
    }
}

fn read_lock(cfg: &Config) -> serde_json::Value {
    std::fs::read_to_string(cfg.models_dir.join("models.lock.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn rows(cfg: &Config) -> Vec<ModelRow> {
    let lock = read_lock(cfg);
    cfg.manifest.models.iter().map(|m| ModelRow::check(cfg, &lock, m)).collect()
}

/// `embtui models`.
pub fn models(cfg: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let rows = rows(cfg);
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        ("model", false, 0),
        ("dim", true, 0),
        ("px", true, 3),
        ("licence", false, 4),
        ("installed", false, 2),
        ("verified", false, 1),
    ]);
    for r in &rows {
        let installed = if r.installed { "yes" } else { "no" };
        t.row(vec![
            r.name.clone(),
            r.dim.to_string(),
            r.size.to_string(),
            r.license.clone(),
            installed.into(),
            r.verified_label().into(),
        ]);
    }
    let width = terminal_width();
    write!(out, "{}", t.render(width))?;
    writeln!(out, "{}", fit(&format!("models folder: {}", cfg.models_dir.display()), width))?;
    Ok(ExitCode::SUCCESS)
}

/// `embtui doctor`: exit 1 when something needs fixing.
pub fn doctor(cfg: &Config) -> anyhow::Result<ExitCode> {
    let mut problems = 0;
    let mut out = FitLines(Vec::new());
    match crate::model::runtime::environment(cfg.device != Device::Cpu) {
        Ok(_) => writeln!(
            out,
            "ok   ONNX Runtime {} from {}",
            crate::model::runtime::version().unwrap_or_default(),
            crate::model::runtime::loaded_path().map_or(String::new(), |p| p.display().to_string())
        )?,
        Err(e) => {
            problems += 1;
            writeln!(out, "FAIL {e}")?;
        }
    }
    let gpu = match cfg.device {
        Device::Cuda(k) => Some(k),
        Device::Auto => Some(0),
        Device::Cpu => None,
    };
    if let (Some(k), Some(entry)) =
        (gpu, cfg.manifest.models.iter().find(|m| cfg.models_dir.join(&m.file).is_file()))
    {
        match crate::model::probe_cuda(entry, &cfg.models_dir, k) {
            Ok(()) => {
                writeln!(out, "ok   CUDA usable ({} ran a warm-up batch on cuda:{k})", entry.name)?;
            }
            Err(why) if cfg.device == Device::Auto => writeln!(out, "info CUDA not used: {why}")?,
            Err(why) => {
                problems += 1;
                writeln!(out, "FAIL --device cuda:{k}: {why}")?;
            }
        }
    }
    problems += model_files(cfg, &mut out)?;
    problems += caption_encoder(cfg, &mut out)?;
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
            writeln!(out, "FAIL {:#}", anyhow::Error::from(e))?;
        }
    }
    let width = terminal_width();
    let text = String::from_utf8_lossy(&out.0).into_owned();
    let mut stdout = std::io::stdout().lock();
    for line in text.lines() {
        writeln!(stdout, "{}", fit(&crate::text::sanitize(line), width))?;
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Collects `doctor`'s lines, which are then cut to the terminal's width.
struct FitLines(Vec<u8>);

impl Write for FitLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every model's files against models.lock.json. Returns the number of problems.
fn model_files(cfg: &Config, out: &mut impl std::io::Write) -> anyhow::Result<usize> {
    let mut problems = 0;
    for r in rows(cfg) {
        let Some(sha) = &r.sha256 else {
            if r.source.starts_with("hf:") {
                writeln!(
                    out,
                    "info {}: not installed ({}); `embtui models pull {}` fetches it again",
                    r.name,
                    r.file.display(),
                    r.name
                )?;
            } else {
                writeln!(out, "info {}: not installed ({}); `just setup` installs the offline models, `just export-hf {}` the others", r.name, r.file.display(), r.name)?;
            }
            continue;
        };
        match r.verified {
            Some(true) => writeln!(out, "ok   {}: sha256 {} verified", r.name, &sha[..16])?,
            Some(false) => {
                problems += 1;
                let what = if r.changed.is_empty() {
                    format!("sha256 {}", &sha[..16])
                } else {
                    r.changed.join(", ")
                };
                let fix = if r.source.starts_with("hf:") {
                    format!("`embtui models pull {}`", r.name)
                } else {
                    format!("`just setup` (or `just export-hf {}`)", r.name)
                };
                writeln!(
                    out,
                    "FAIL {}: {what} differs from models.lock.json (missing or changed); run {fix} again",
                    r.name
                )?;
            }
            None => writeln!(
                out,
                "info {}: sha256 {} (not recorded in models.lock.json)",
                r.name,
                &sha[..16]
            )?,
        }
    }
    Ok(problems)
}

/// The MiniLM caption encoder (hybrid and semantic relevance): every file present and as
/// `models.lock.json` recorded it. Returns the number of problems.
fn caption_encoder(cfg: &Config, out: &mut impl std::io::Write) -> anyhow::Result<usize> {
    use crate::model::sentence::NAME;
    let dir = cfg.encoder_dir();
    let lock: serde_json::Value = std::fs::read_to_string(dir.join("models.lock.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let entry = &lock[NAME];
    let mut files: Vec<(String, Option<String>)> =
        vec![(format!("{NAME}.onnx"), entry["sha256"].as_str().map(str::to_owned))];
    if let Some(side) = entry["files"].as_object() {
        files.extend(side.iter().map(|(f, h)| (f.clone(), h.as_str().map(str::to_owned))));
    } else {
        files.push((format!("{NAME}.tokenizer.json"), None));
    }
    let mut problems = 0;
    for (file, want) in files {
        let path = dir.join(&file);
        let Ok(sha) = crate::hash::file_sha256(&path) else {
            problems += 1;
            writeln!(out, "FAIL caption encoder: {} is missing; hybrid and semantic relevance (the default) need it: run `just setup`, or evaluate with --relevance tfidf", path.display())?;
            continue;
        };
        match want {
            Some(w) if w == sha => {
                writeln!(out, "ok   caption encoder {file}: sha256 {} verified", &sha[..16])?;
            }
            Some(_) => {
                problems += 1;
                writeln!(out, "FAIL caption encoder {file}: sha256 {} differs from models.lock.json; run `just setup` again", &sha[..16])?;
            }
            None => writeln!(
                out,
                "info caption encoder {file}: sha256 {} (not recorded in models.lock.json)",
                &sha[..16]
            )?,
        }
    }
    Ok(problems)
}
