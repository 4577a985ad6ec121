//! Resolves command-line values once: folders, manifest, dataset selection.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::cli::{DatasetArgs, Global};
use crate::dataset::{Dataset, Selection};
use crate::decode::DecodeOptions;
use crate::model::{Device, Manifest, ModelEntry, ModelError};

/// Everything derived from the global flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub models_dir: PathBuf,
    pub store_dir: PathBuf,
    pub manifest: Manifest,
    pub device: Device,
    pub threads: usize,
    pub decode: DecodeOptions,
    /// `--precision fp16`: model names resolve to their NAME-fp16 copies.
    pub fp16: bool,
    /// Where the Hugging Face Hub is and where its cache lives (HF_* variables).
    pub hub: crate::hub::Settings,
    /// Models pulled by this process (`--model ORG/NAME` on first use).
    pulled: std::sync::Arc<std::sync::Mutex<Vec<ModelEntry>>>,
}

impl Config {
    pub fn from_global(g: &Global) -> anyhow::Result<Self> {
        let models_dir = g
            .models_dir
            .clone()
            .or_else(|| std::env::var_os("EMBTUI_MODELS").map(PathBuf::from))
            .unwrap_or_else(default_models_dir);
        // Entries written by `just export-hf` live beside the ONNX files they describe.
        let mut manifests = Vec::new();
        for own in ["manifest.toml", crate::model::pull::HUB_MANIFEST] {
            let path = models_dir.join(own);
            if path.is_file() {
                manifests.push(path);
            }
        }
        manifests.extend(g.manifest.iter().cloned());
        Ok(Self {
            manifest: Manifest::load(&manifests)?,
            models_dir,
            store_dir: g
                .store
                .clone()
                .or_else(|| std::env::var_os("EMBTUI_STORE").map(PathBuf::from))
                .unwrap_or_else(default_store_dir),
            device: g.device,
            threads: cap_threads(g.threads),
            decode: DecodeOptions {
                max_pixels: g.max_megapixels * 1_000_000,
                accept_truncated: g.accept_truncated,
                exact: g.decode == crate::cli::DecodeMode::Exact,
                draft: None,
            },
            fp16: g.precision == crate::cli::Precision::Fp16,
            hub: crate::hub::Settings::from_env(),
            pulled: std::sync::Arc::default(),
        })
    }

    /// Where the MiniLM caption encoder is: the models folder, or else the installed one
    /// (`just setup`'s models/), so a `--models-dir` of exported models still gets the
    /// default hybrid relevance.
    pub fn encoder_dir(&self) -> PathBuf {
        let file = format!("{}.onnx", crate::model::sentence::NAME);
        if self.models_dir.join(&file).is_file() {
            return self.models_dir.clone();
        }
        let installed = default_models_dir();
        if installed.join(&file).is_file() {
            installed
        } else {
            self.models_dir.clone()
        }
    }

    /// The manifest entry of `name` (of its fp16 copy with `--precision fp16`), or an error
    /// listing the known ones.
    /// A Hub id (`ORG/NAME[@REV][:VARIANT]`) not pulled yet is pulled now; one with `@REV`
    /// is always resolved again (cached files are reused).
    pub fn model(&self, name: &str) -> Result<ModelEntry, ModelError> {
        let name = name.trim();
        let entry = match self.manifest.get(name) {
            Some(e) if !name.contains('@') => e.clone(),
            _ => self.pulled_model(name)?,
        };
        if !self.fp16 || name.ends_with("-fp16") || name.ends_with(":fp16") {
            return Ok(entry);
        }
        // A Hub model's fp16 copy is the repo's own fp16 variant.
        if let Some(r) = crate::hub::RepoRef::parse(name).filter(|r| r.variant == "fp32") {
            return self.model(&format!("{}:fp16", r.model_name())).map_err(|e| match e {
                ModelError::Pull(p)
                    if matches!(*p, crate::model::pull::PullError::NoVariant { .. }) =>
                {
                    ModelError::NoFp16Copy { name: crate::text::sanitize(name) }
                }
                other => other,
            });
        }
        let half = format!("{name}-fp16");
        self.manifest
            .get(&half)
            .cloned()
            .ok_or_else(|| ModelError::NoFp16Copy { name: crate::text::sanitize(name) })
    }

    /// The entry of a Hub model, pulled (or resolved from the cache) once per process.
    fn pulled_model(&self, name: &str) -> Result<ModelEntry, ModelError> {
        let unknown = || ModelError::UnknownModel {
            name: crate::text::sanitize(name),
            known: self.manifest.names().join(", "),
        };
        let r = crate::hub::RepoRef::parse(name).ok_or_else(unknown)?;
        let mut pulled = self.pulled.lock().map_err(|_| unknown())?;
        if let Some(e) = pulled.iter().find(|e| e.name == r.model_name()) {
            return Ok(e.clone());
        }
        crate::say!("{}: pulling from {} (first use)", r.model_name(), self.hub.endpoint);
        let p = crate::model::pull::install(&self.models_dir, &r, &self.hub)?;
        crate::say!(
            "{}: commit {}, {}-d, entry in {}",
            p.entry.name,
            &p.commit[..12],
            p.entry.dim,
            self.models_dir.join(crate::model::pull::HUB_MANIFEST).display()
        );
        pulled.push(p.entry.clone());
        Ok(p.entry)
    }

    /// The manifest entries for `names`, in order.
    pub fn models(&self, names: &[String]) -> Result<Vec<ModelEntry>, ModelError> {
        names.iter().map(|n| self.model(n)).collect()
    }

    /// Opens the dataset; refuses a store placed inside it.
    pub fn dataset(&self, a: &DatasetArgs) -> anyhow::Result<Dataset> {
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let sel = Selection {
            limit: a.limit.map(to_usize),
            sample: a.sample.map(|n| (to_usize(n), a.seed)),
            split: a.split.clone(),
        };
        let ds = Dataset::open(&a.dataset, a.format, &sel)?;
        if let (Ok(store), Ok(root)) = (absolute(&self.store_dir), a.dataset.canonicalize()) {
            if store.starts_with(&root) {
                bail!("store {} is inside the dataset folder {}; pass --store with a folder outside it", self.store_dir.display(), root.display());
            }
        }
        Ok(ds)
    }
}

/// ONNX Runtime threads beyond 4 per core only add contention (512 made runs crawl):
/// capped, and said.
fn cap_threads(asked: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cap = 4 * cores;
    if asked > cap {
        crate::warn!("--threads {asked} capped at {cap} (4 per core on this machine)");
        return cap;
    }
    asked
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let base = if p.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().context("current folder")?
    };
    Ok(base.join(p))
}

/// `models/` in the checkout the binary was built in (target/<profile>/embtui → ../../models),
/// else the data folder's (`$XDG_DATA_HOME/embtui/models`, `~/.local/share/embtui/models`).
pub fn default_models_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        let exe = exe.canonicalize().unwrap_or(exe);
        for anc in exe.ancestors().skip(1).take(4) {
            let p = anc.join("models");
            if p.join("models.lock.json").exists() {
                return p;
            }
        }
    }
    crate::files::data_dir().join("models")
}

/// `$XDG_CACHE_HOME/embtui/store` or `~/.cache/embtui/store`.
pub fn default_store_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("embtui/store")
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}
