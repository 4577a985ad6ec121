//! A Hub repo made into a model of the zoo: choose its files (transformers.js layout
//! `onnx/model.onnx` / `onnx/vision_model.onnx` + `onnx/text_model.onnx`, or fastembed's
//! `model.onnx` at the root; variants `model_SUFFIX.onnx`; external data beside each graph),
//! pull them into the Hub cache, link the snapshot into the models folder
//! (`hub/ORG--NAME--COMMIT12`), derive the manifest entry, prove it on one batch, and record
//! it in `hub.toml` (entries) and `models.lock.json` (repo, commit, every file's sha256).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::derive::{derive, Derivation, DeriveError, GraphIo, Sources};
use super::manifest::ModelEntry;
use crate::hub::{HubError, Listing, RepoRef, Settings};

/// The manifest of pulled models, in the models folder.
pub const HUB_MANIFEST: &str = "hub.toml";

/// Why a repo could not become a model.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("{repo} at {commit}: {source}")]
    Derive { repo: String, commit: String, source: DeriveError },
    #[error(
        "{repo} has no ONNX file ({found}); export it with embtui's exporter: `just export-hf \
         NAME --source {repo}` (onnx/export_hf.py; needs torch), or pick a repo that publishes \
         ONNX (Xenova/…, onnx-community/…, Qdrant/…)"
    )]
    NoOnnx { repo: String, found: String },
    #[error("{repo} has no variant `{variant}`; it has: {have}. Pass one of them with --variant (or `{repo}:VARIANT`)")]
    NoVariant { repo: String, variant: String, have: String },
    #[error("{repo} has no {file}, which says how to preprocess images; {fix}")]
    NoConfig { repo: String, file: &'static str, fix: &'static str },
    #[error("{repo}: {what} could not be read: {message}")]
    Unreadable { repo: String, what: String, message: String },
    #[error("{repo}: the derived entry failed on a test batch: {message}; write a manifest entry by hand (onnx/models.toml) and pass it with --manifest")]
    Probe { repo: String, message: String },
    #[error("models folder {path}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What a pull did: the entry, how it was derived, where the files are.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    pub entry: ModelEntry,
    pub repo: String,
    pub revision: String,
    pub commit: String,
    pub how: Vec<Derivation>,
    /// Why there is no text tower (None when there is one, or the repo has no text graph).
    pub no_text: Option<String>,
    /// Repo paths of the files used, with their sha256.
    pub files: Vec<(String, String)>,
    pub snapshot: PathBuf,
}

/// The files of `l` a model needs: (image graph, its external data, text graph, its external
/// data + tokenizer).
struct Chosen {
    image: String,
    text: Option<String>,
    all: Vec<String>,
}

fn external_data<'l>(l: &'l Listing, graph: &str) -> impl Iterator<Item = String> + 'l {
    let (a, b) = (format!("{graph}_data"), format!("{graph}.data"));
    l.paths().filter(move |p| p.starts_with(&a) || p.starts_with(&b)).map(str::to_owned)
}

/// The variants a repo offers: `fp32` for `model.onnx`, SUFFIX for `model_SUFFIX.onnx`.
fn variants(l: &Listing) -> Vec<String> {
    let mut v: Vec<String> = l
        .paths()
        .filter_map(|p| p.rsplit('/').next())
        .filter_map(|f| f.strip_suffix(".onnx"))
        .filter_map(|stem| {
            let stem = stem.strip_prefix("vision_model").or_else(|| stem.strip_prefix("model"))?;
            Some(stem.strip_prefix('_').map_or_else(|| "fp32".to_owned(), str::to_owned))
        })
        .filter(|v| !v.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn choose(l: &Listing) -> Result<Chosen, PullError> {
    let r = &l.repo;
    let suffix = if r.variant == "fp32" { String::new() } else { format!("_{}", r.variant) };
    let candidates = [
        format!("onnx/vision_model{suffix}.onnx"),
        format!("onnx/model{suffix}.onnx"),
        format!("vision_model{suffix}.onnx"),
        format!("model{suffix}.onnx"),
    ];
    let Some(image) = candidates.iter().find(|c| l.has(c)).cloned() else {
        let have = variants(l);
        if have.is_empty() {
            let found: Vec<&str> = l.paths().filter(|p| !p.starts_with('.')).take(8).collect();
            return Err(PullError::NoOnnx { repo: r.repo.clone(), found: found.join(", ") });
        }
        return Err(PullError::NoVariant {
            repo: r.repo.clone(),
            variant: r.variant.clone(),
            have: have.join(", "),
        });
    };
    for (file, fix) in [
        (
            "preprocessor_config.json",
            "write a manifest entry by hand (onnx/models.toml) and pass it with --manifest",
        ),
        (
            "config.json",
            "write a manifest entry by hand (onnx/models.toml) and pass it with --manifest",
        ),
    ] {
        if !l.has(file) {
            return Err(PullError::NoConfig { repo: r.repo.clone(), file, fix });
        }
    }
    let mut all =
        vec!["config.json".to_owned(), "preprocessor_config.json".to_owned(), image.clone()];
    all.extend(external_data(l, &image));
    let dir = image.rsplit_once('/').map_or(String::new(), |(d, _)| format!("{d}/"));
    let text = [format!("{dir}text_model{suffix}.onnx"), format!("{dir}text_model.onnx")]
        .into_iter()
        .find(|t| image.contains("vision_model") && l.has(t) && l.has("tokenizer.json"));
    if let Some(t) = &text {
        all.push(t.clone());
        all.extend(external_data(l, t));
        all.push("tokenizer.json".into());
    }
    Ok(Chosen { image, text, all })
}

/// Pulls `r` (cached files are reused), derives its entry, checks it on one batch and records
/// it in the models folder. The entry is then found by name like any other.
pub fn install(models_dir: &Path, r: &RepoRef, hub: &Settings) -> Result<Pulled, PullError> {
    let listing = crate::hub::list(hub, r)?;
    let chosen = choose(&listing)?;
    let snapshot = crate::hub::fetch(hub, &listing, &chosen.all)?;
    let link_name = format!("{}--{}", r.repo.replace('/', "--"), &listing.commit[..12]);
    let link = models_dir.join("hub").join(&link_name);
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PullError::Io { path, source }
    };
    std::fs::create_dir_all(models_dir.join("hub")).map_err(io_err(models_dir))?;
    if std::fs::read_link(&link).ok().as_deref() != Some(snapshot.as_path()) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&snapshot, &link).map_err(io_err(&link))?;
    }
    let rel = |p: &str| format!("hub/{link_name}/{p}");
    let unreadable = |what: &str, message: String| PullError::Unreadable {
        repo: r.repo.clone(),
        what: what.to_owned(),
        message,
    };
    let json = |p: &str| -> Result<Value, PullError> {
        let bytes = crate::files::read(&snapshot.join(p), 64 << 20, "a JSON config")
            .map_err(|e| unreadable(p, e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| unreadable(p, e.to_string()))
    };
    let (pre, config) = (json("preprocessor_config.json")?, json("config.json")?);
    let (image_io, mut image_session) = super::graph_io(&snapshot.join(&chosen.image))
        .map_err(|e| unreadable(&chosen.image, format!("{e:#}")))?;
    let text = match &chosen.text {
        Some(t) => Some((
            super::graph_io(&snapshot.join(t)).map_err(|e| unreadable(t, format!("{e:#}")))?.0,
            json("tokenizer.json")?,
        )),
        None => None,
    };
    let name = r.model_name();
    let src = Sources {
        name: &name,
        source: format!("hf:{}@{} ({})", r.repo, listing.commit, chosen.image),
        image_file: rel(&chosen.image),
        preprocessor: &pre,
        config: &config,
        image: &image_io,
        text: chosen
            .text
            .as_ref()
            .zip(text.as_ref())
            .map(|(t, (io, tok))| (rel(t), rel("tokenizer.json"), io, tok)),
    };
    let derived = derive(&src).map_err(|source| PullError::Derive {
        repo: r.repo.clone(),
        commit: listing.commit.clone(),
        source,
    })?;
    let mut entry = derived.entry;
    entry.dim = super::probe_dim(&entry, &mut image_session)
        .map_err(|e| PullError::Probe { repo: r.repo.clone(), message: format!("{e:#}") })?;
    if let Err(problem) = super::manifest::check(&entry) {
        return Err(PullError::Probe { repo: r.repo.clone(), message: problem });
    }
    let mut files = Vec::new();
    for p in &chosen.all {
        let sha = crate::hash::file_sha256(&snapshot.join(p)).map_err(io_err(&snapshot.join(p)))?;
        files.push((p.clone(), sha));
    }
    record(models_dir, &entry, r, &listing.commit, &files, &link_name)?;
    Ok(Pulled {
        entry,
        repo: r.repo.clone(),
        revision: r.revision.clone(),
        commit: listing.commit,
        how: derived.how,
        no_text: derived.no_text,
        files,
        snapshot,
    })
}

/// Writes `entry` into `hub.toml` (replacing one of the same name) and the files' hashes with
/// the repo and commit into `models.lock.json`, each through a temporary file.
fn record(
    models_dir: &Path,
    entry: &ModelEntry,
    r: &RepoRef,
    commit: &str,
    files: &[(String, String)],
    link_name: &str,
) -> Result<(), PullError> {
    #[derive(serde::Serialize)]
    struct File<'a> {
        model: &'a [ModelEntry],
    }
    let io_err = |path: PathBuf| move |source| PullError::Io { path, source };
    let manifest = models_dir.join(HUB_MANIFEST);
    let mut entries: Vec<ModelEntry> = match std::fs::read_to_string(&manifest) {
        Ok(text) => super::manifest::parse(&text, &manifest).map_err(|e| PullError::Io {
            path: manifest.clone(),
            source: std::io::Error::other(e.to_string()),
        })?,
        Err(_) => Vec::new(),
    };
    entries.retain(|e| e.name != entry.name);
    entries.push(entry.clone());
    let text = toml::to_string(&File { model: &entries })
        .map_err(|e| PullError::Io { path: manifest.clone(), source: std::io::Error::other(e) })?;
    let text =
        format!("# Written by `embtui models pull`: entries derived from Hub repos.\n\n{text}");
    crate::files::write_atomic(&manifest, text.as_bytes()).map_err(io_err(manifest.clone()))?;
    let lock_path = models_dir.join("models.lock.json");
    let mut lock: serde_json::Map<String, Value> = std::fs::read_to_string(&lock_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let graph = files.iter().find(|(p, _)| entry.file.ends_with(&format!("/{p}")));
    let side: serde_json::Map<String, Value> = files
        .iter()
        .filter(|f| Some(*f) != graph)
        .map(|(p, sha)| (format!("hub/{link_name}/{p}"), Value::String(sha.clone())))
        .collect();
    lock.insert(
        entry.name.clone(),
        serde_json::json!({
            "sha256": graph.map(|(_, s)| s.clone()),
            "files": side,
            "hub": { "repo": r.repo, "revision": r.revision, "commit": commit, "variant": r.variant },
        }),
    );
    let text = serde_json::to_string_pretty(&Value::Object(lock)).unwrap_or_default() + "\n";
    crate::files::write_atomic(&lock_path, text.as_bytes()).map_err(io_err(lock_path.clone()))
}

/// The graph tensors of an ONNX file, for [`derive`].
pub fn io_of(session: &ort::session::Session) -> GraphIo {
    let dims = |t: &ort::value::ValueType| match t {
        ort::value::ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
        _ => Vec::new(),
    };
    GraphIo {
        inputs: session.inputs().iter().map(|o| (o.name().to_owned(), dims(o.dtype()))).collect(),
        outputs: session.outputs().iter().map(|o| (o.name().to_owned(), dims(o.dtype()))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RemoteFile;

    fn listing(repo: &str, paths: &[&str]) -> Listing {
        Listing {
            repo: RepoRef::parse(repo).unwrap(),
            commit: "c".repeat(40),
            files: paths
                .iter()
                .map(|p| RemoteFile { path: (*p).into(), size: None, sha256: None, blob_id: None })
                .collect(),
            from_cache: false,
        }
    }

    const JSONS: [&str; 3] = ["config.json", "preprocessor_config.json", "tokenizer.json"];

    #[test]
    fn transformers_js_clip_takes_both_towers_and_their_data() {
        let mut p = JSONS.to_vec();
        p.extend([
            "onnx/vision_model.onnx",
            "onnx/vision_model_fp16.onnx",
            "onnx/text_model.onnx",
            "onnx/text_model.onnx_data",
            "onnx/model.onnx",
        ]);
        let c = choose(&listing("Xenova/clip", &p)).unwrap();
        assert_eq!(c.image, "onnx/vision_model.onnx");
        assert_eq!(c.text.as_deref(), Some("onnx/text_model.onnx"));
        assert_eq!(
            c.all,
            [
                "config.json",
                "preprocessor_config.json",
                "onnx/vision_model.onnx",
                "onnx/text_model.onnx",
                "onnx/text_model.onnx_data",
                "tokenizer.json"
            ]
        );
        // fp16 has no text_model_fp16.onnx: the fp32 text tower goes with it.
        let c = choose(&listing("Xenova/clip:fp16", &p)).unwrap();
        assert_eq!(
            (c.image.as_str(), c.text.as_deref()),
            ("onnx/vision_model_fp16.onnx", Some("onnx/text_model.onnx"))
        );
    }

    #[test]
    fn fastembed_layout_and_missing_variants_are_named() {
        let mut p = JSONS[..2].to_vec();
        p.extend(["model.onnx", "model.onnx.data", "model_quantized.onnx"]);
        let c = choose(&listing("Qdrant/resnet50-onnx", &p)).unwrap();
        assert_eq!(
            c.all,
            ["config.json", "preprocessor_config.json", "model.onnx", "model.onnx.data"]
        );
        let err = choose(&listing("Qdrant/resnet50-onnx:q4", &p)).err().unwrap().to_string();
        assert!(err.contains("has no variant `q4`; it has: fp32, quantized"), "{err}");
    }

    #[test]
    fn a_repo_without_onnx_names_the_exporter() {
        let err = choose(&listing("google/vit", &["config.json", "model.safetensors"]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("has no ONNX file (config.json, model.safetensors)"), "{err}");
        assert!(err.contains("just export-hf NAME --source google/vit"), "{err}");
    }
}
