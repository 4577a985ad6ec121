//! Models: the manifest, preprocessing, ONNX Runtime sessions and execution providers.
//! The only user of `ort`.

pub mod manifest;
pub mod preprocess;
pub mod resample;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::{TensorRef, ValueType};

pub use manifest::{Manifest, ModelEntry, Pooling};

/// The ONNX Runtime version embtui is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// Which execution provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA on GPU 0 if it works, else CPU (says why).
    Auto,
    Cpu,
    Cuda,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found; looked in: {searched}. Run `just setup` (downloads the \
         onnxruntime=={ORT_VERSION} wheel's library into .ort/), or set ORT_DYLIB_PATH to a \
         libonnxruntime.so"
    )]
    RuntimeMissing { searched: String },
    #[error("could not load ONNX Runtime from {path}: {message}; run `just setup` or fix ORT_DYLIB_PATH")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error(
        "model `{name}` is not in the manifest; known models: {known}. Add an entry to a \
             manifest passed with --manifest"
    )]
    UnknownModel { name: String, known: String },
    #[error(
        "model file {path} for `{name}` is missing; run `just setup` (offline models) or \
             `just export-hf {name}`"
    )]
    FileMissing { name: String, path: PathBuf },
    #[error("model `{name}`: {tensor} {what}: expected {expected}, found {found}")]
    Mismatch { name: String, tensor: String, what: String, expected: String, found: String },
    #[error(
        "CUDA was requested (--device cuda) but is unusable: {0}; on an NVIDIA machine run \
             `just setup-gpu` and check with `embtui doctor`, or use --device cpu"
    )]
    CudaUnusable(String),
    #[error("ONNX Runtime failed on model `{name}`: {message}")]
    Ort { name: String, message: String },
}

type Result<T, E = ModelError> = std::result::Result<T, E>;

static ENV: OnceLock<std::result::Result<(ort::environment::Environment, PathBuf), String>> =
    OnceLock::new();

/// Candidate paths for `libonnxruntime.so`, in search order.
pub fn runtime_candidates(prefer_gpu: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
        return out;
    }
    let lib = format!("libonnxruntime.so.{ORT_VERSION}");
    let flavours: &[&str] = if prefer_gpu { &["gpu", "cpu"] } else { &["cpu", "gpu"] };
    if let Ok(exe) = std::env::current_exe() {
        let exe = exe.canonicalize().unwrap_or(exe);
        if let Some(dir) = exe.parent() {
            out.push(dir.join("libonnxruntime.so"));
            for anc in dir.ancestors().take(4) {
                for f in flavours {
                    out.push(anc.join(".ort").join(f).join(&lib));
                }
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        for f in flavours {
            out.push(PathBuf::from(&home).join(".local/share/embtui/ort").join(f).join(&lib));
        }
    }
    out
}

/// Loads ONNX Runtime once per process and returns the library path used.
pub fn runtime(prefer_gpu: bool) -> Result<&'static ort::environment::Environment> {
    let res = ENV.get_or_init(|| {
        let cands = runtime_candidates(prefer_gpu);
        let Some(path) = cands.iter().find(|p| p.exists()).cloned() else {
            let searched = cands.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
            return Err(format!("missing:{}", searched.join(", ")));
        };
        let env = ort::init_from(&path)
            .map_err(|e| format!("load:{}\u{0}{e}", path.display()))?
            .with_name("embtui")
            .build()
            .map_err(|e| format!("load:{}\u{0}{e}", path.display()))?;
        Ok((env, path))
    });
    match res {
        Ok((env, _)) => Ok(env),
        Err(e) if e.starts_with("missing:") => {
            Err(ModelError::RuntimeMissing { searched: e["missing:".len()..].to_owned() })
        }
        Err(e) => {
            let (path, message) = e["load:".len()..].split_once('\u{0}').unwrap_or((e, ""));
            Err(ModelError::RuntimeLoad { path: path.into(), message: message.to_owned() })
        }
    }
}

/// Path of the loaded ONNX Runtime library, once [`runtime`] succeeded.
pub fn runtime_path() -> Option<&'static Path> {
    ENV.get().and_then(|r| r.as_ref().ok()).map(|(_, p)| p.as_path())
}

/// ONNX Runtime's version, once loaded: from the library's file name (`libonnxruntime.so.1.31.1`,
/// following links), else the commit in its build info.
pub fn runtime_version() -> Option<String> {
    let path = runtime_path()?;
    let from_name =
        |p: &Path| p.file_name()?.to_str()?.strip_prefix("libonnxruntime.so.").map(str::to_owned);
    from_name(path).or_else(|| from_name(&path.canonicalize().ok()?)).or_else(|| {
        let info = ort::info();
        info.split(',')
            .find_map(|p| p.trim().strip_prefix("git-commit-id="))
            .map(|c| format!("commit {c}"))
    })
}

/// A model ready to embed: its manifest entry and an ONNX Runtime session on a device.
pub struct Embedder {
    pub entry: ModelEntry,
    pub path: PathBuf,
    pub sha256: String,
    /// "cpu" or "cuda:0": the device actually used.
    pub device: String,
    /// Why `auto` fell back to CPU, when it did.
    pub fallback: Option<String>,
    /// When set, each row [`Embedder::embed_batch`] returns is the embedding followed by the
    /// manifest's `logits` output (for classification sanity checks such as `export --logits`).
    pub with_logits: bool,
    session: Session,
}

impl Embedder {
    /// Opens `entry`'s ONNX file from `models_dir` on `device`, checking it against the entry.
    pub fn open(
        entry: &ModelEntry,
        models_dir: &Path,
        device: Device,
        threads: usize,
    ) -> Result<Self> {
        let path = models_dir.join(&entry.file);
        if !path.is_file() {
            return Err(ModelError::FileMissing { name: entry.name.clone(), path });
        }
        let sha256 = crate::hash::file_sha256(&path)
            .map_err(|e| ModelError::Ort { name: entry.name.clone(), message: e.to_string() })?;
        runtime(device != Device::Cpu)?;
        let (session, device_used, fallback) = match device {
            Device::Cpu => (cpu_session(entry, &path, threads)?, "cpu".to_owned(), None),
            Device::Cuda => {
                let s = cuda_session(entry, &path).map_err(ModelError::CudaUnusable)?;
                (s, "cuda:0".to_owned(), None)
            }
            Device::Auto => match cuda_session(entry, &path) {
                Ok(s) => (s, "cuda:0".to_owned(), None),
                Err(why) => (cpu_session(entry, &path, threads)?, "cpu".to_owned(), Some(why)),
            },
        };
        let mut e = Self {
            entry: entry.clone(),
            path,
            sha256,
            device: device_used,
            fallback,
            with_logits: false,
            session,
        };
        e.check_io()?;
        if e.device.starts_with("cuda") {
            // cuDNN loads lazily: one warm-up batch proves the provider really works.
            let n = (e.entry.size as usize).pow(2) * 3;
            if let Err(err) = e.embed_batch(&vec![0.0; n], 1) {
                if device == Device::Cuda {
                    return Err(ModelError::CudaUnusable(err.to_string()));
                }
                let session = cpu_session(entry, &e.path, threads)?;
                e.session = session;
                e.device = "cpu".into();
                e.fallback = Some(format!("CUDA warm-up failed: {err}"));
            }
        }
        Ok(e)
    }

    /// Refuses an ONNX file whose input or output does not match the manifest entry.
    fn check_io(&self) -> Result<()> {
        let m = &self.entry;
        let mismatch =
            |tensor: &str, what: &str, expected: String, found: String| ModelError::Mismatch {
                name: m.name.clone(),
                tensor: tensor.to_owned(),
                what: what.to_owned(),
                expected,
                found,
            };
        let inputs: Vec<&str> = self.session.inputs().iter().map(|i| i.name()).collect();
        let input =
            self.session.inputs().iter().find(|i| i.name() == m.input).ok_or_else(|| {
                mismatch("input", "name", format!("`{}`", m.input), format!("{inputs:?}"))
            })?;
        let s = i64::from(m.size);
        let want: [i64; 4] = match m.entry_layout_is_nchw() {
            true => [-1, 3, s, s],
            false => [-1, s, s, 3],
        };
        check_tensor(input.dtype(), &want, &m.input)
            .map_err(|(what, exp, found)| mismatch(&m.input, &what, exp, found))?;
        let outputs: Vec<&str> = self.session.outputs().iter().map(|o| o.name()).collect();
        if !outputs.contains(&m.output.as_str()) {
            return Err(mismatch(
                "output",
                "name",
                format!("`{}`", m.output),
                format!("{outputs:?}"),
            ));
        }
        Ok(())
    }

    /// Runs one batch of `n` preprocessed images (`input` holds n×size×size×3 floats) and
    /// returns `n` L2-normalised embeddings of `entry.dim` floats, row after row.
    pub fn embed_batch(&mut self, input: &[f32], n: usize) -> Result<Vec<f32>> {
        let (out, logits) = self.run(input, n, self.with_logits)?;
        let Some(logits) = logits else { return Ok(out) };
        let (d, c) = (self.entry.dim, logits.len() / n.max(1));
        Ok((0..n)
            .flat_map(|i| {
                out[i * d..(i + 1) * d].iter().chain(&logits[i * c..(i + 1) * c]).copied()
            })
            .collect())
    }

    /// Like [`Embedder::embed_batch`], also returning the manifest's `logits` output (if any).
    pub fn run(
        &mut self,
        input: &[f32],
        n: usize,
        logits: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let m = &self.entry;
        let s = m.size as usize;
        let shape: Vec<usize> =
            if m.entry_layout_is_nchw() { vec![n, 3, s, s] } else { vec![n, s, s, 3] };
        let ort_err =
            |e: ort::Error| ModelError::Ort { name: m.name.clone(), message: e.to_string() };
        let tensor = TensorRef::from_array_view((shape, input)).map_err(ort_err)?;
        let outputs =
            self.session.run(ort::inputs![m.input.as_str() => tensor]).map_err(ort_err)?;
        let value = outputs.get(&m.output).ok_or_else(|| ModelError::Ort {
            name: m.name.clone(),
            message: format!("output `{}` missing from the run", m.output),
        })?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let mut emb = pool(data, &dims, m.pooling).map_err(|found| ModelError::Mismatch {
            name: m.name.clone(),
            tensor: m.output.clone(),
            what: format!("shape for pooling `{:?}`", m.pooling),
            expected: "a shape that pooling accepts".into(),
            found,
        })?;
        if emb.len() != n * m.dim {
            return Err(ModelError::Mismatch {
                name: m.name.clone(),
                tensor: m.output.clone(),
                what: "embedding dimension".into(),
                expected: m.dim.to_string(),
                found: (emb.len() / n.max(1)).to_string(),
            });
        }
        for row in emb.chunks_mut(m.dim) {
            l2_normalise(row);
        }
        let logit_values = match (&m.logits, logits) {
            (Some(name), true) => {
                let v = outputs.get(name).ok_or_else(|| ModelError::Ort {
                    name: m.name.clone(),
                    message: format!("logits output `{name}` missing"),
                })?;
                Some(v.try_extract_tensor::<f32>().map_err(ort_err)?.1.to_vec())
            }
            _ => None,
        };
        Ok((emb, logit_values))
    }
}

impl ModelEntry {
    fn entry_layout_is_nchw(&self) -> bool {
        self.layout == manifest::Layout::Nchw
    }
}

fn check_tensor(
    dtype: &ValueType,
    want: &[i64],
    _name: &str,
) -> std::result::Result<(), (String, String, String)> {
    let ValueType::Tensor { ty, shape, .. } = dtype else {
        return Err(("type".into(), "a tensor".into(), format!("{dtype:?}")));
    };
    if *ty != ort::value::TensorElementType::Float32 {
        return Err(("element type".into(), "float32".into(), format!("{ty:?}")));
    }
    let dims: Vec<i64> = shape.iter().copied().collect();
    let ok =
        dims.len() == want.len() && dims.iter().zip(want).skip(1).all(|(&d, &w)| d == w || d < 0);
    if !ok {
        return Err(("shape".into(), format!("{want:?} (-1 = any)"), format!("{dims:?}")));
    }
    Ok(())
}

/// Pools a raw output tensor to `[N, D]`, following the manifest's `pooling`.
pub fn pool(
    data: &[f32],
    dims: &[usize],
    pooling: Pooling,
) -> std::result::Result<Vec<f32>, String> {
    let bad = || format!("{dims:?}");
    match (pooling, dims) {
        (Pooling::None, [_, _]) => Ok(data.to_vec()),
        (Pooling::Cls, &[n, t, d]) if t > 0 => {
            Ok((0..n).flat_map(|i| data[i * t * d..i * t * d + d].iter().copied()).collect())
        }
        (Pooling::MeanTokens, &[n, t, d]) if t > 0 => {
            let mut out = vec![0.0f32; n * d];
            for i in 0..n {
                for tok in data[i * t * d..(i + 1) * t * d].chunks(d) {
                    out[i * d..(i + 1) * d]
                        .iter_mut()
                        .zip(tok)
                        .for_each(|(o, v)| *o += v / t as f32);
                }
            }
            Ok(out)
        }
        (Pooling::MeanSpatial, &[n, c, h, w]) if h * w > 0 => {
            let hw = h * w;
            Ok((0..n * c)
                .map(|i| data[i * hw..(i + 1) * hw].iter().sum::<f32>() / hw as f32)
                .collect())
        }
        _ => Err(bad()),
    }
}

/// Scales `v` to unit length (left as is when it is all zeros).
pub fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

fn cpu_session(entry: &ModelEntry, path: &Path, threads: usize) -> Result<Session> {
    let env = runtime(false)?;
    let err = |e: String| ModelError::Ort { name: entry.name.clone(), message: e };
    let mut b = Session::builder(env).map_err(|e| err(e.to_string()))?;
    if threads > 0 {
        b = b.with_intra_threads(threads).map_err(|e| err(e.to_string()))?;
    }
    b.commit_from_file(path).map_err(|e| err(e.to_string()))
}

fn cuda_session(entry: &ModelEntry, path: &Path) -> std::result::Result<Session, String> {
    let env = runtime(true).map_err(|e| e.to_string())?;
    let cuda = ort::ep::CUDA::default().with_device_id(0).build().error_on_failure();
    let mut b = Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_execution_providers([cuda])
        .map_err(|e| format!("CUDA execution provider did not register: {e}"))?;
    b.commit_from_file(path)
        .map_err(|e| format!("model `{}` did not load on CUDA: {e}", entry.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cls_pooling_takes_token_zero() {
        // N=2, T=2, D=2
        let data = [1.0, 2.0, 9.0, 9.0, 3.0, 4.0, 9.0, 9.0];
        assert_eq!(pool(&data, &[2, 2, 2], Pooling::Cls).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn mean_pooling_averages_tokens_and_space() {
        let data = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(pool(&data, &[1, 2, 2], Pooling::MeanTokens).unwrap(), vec![2.0, 3.0]);
        assert_eq!(pool(&data, &[1, 1, 2, 2], Pooling::MeanSpatial).unwrap(), vec![2.5]);
        assert!(pool(&data, &[4], Pooling::None).is_err());
    }

    #[test]
    fn l2_normalise_gives_unit_length() {
        let mut v = [3.0, 4.0];
        l2_normalise(&mut v);
        assert_eq!(v, [0.6, 0.8]);
    }
}

/// A text tower: tokenizer + ONNX text encoder, giving vectors in its image model's space.
pub struct TextEmbedder {
    pub name: String,
    tower: manifest::TextTower,
    tokenizer: tokenizers::Tokenizer,
    session: Session,
}

impl TextEmbedder {
    /// Opens `entry`'s text tower, or explains that the model has none.
    pub fn open(entry: &ModelEntry, models_dir: &Path) -> Result<Self> {
        let tower = entry.text.clone().ok_or_else(|| ModelError::Ort {
            name: entry.name.clone(),
            message: "this model has no text tower; text queries need CLIP or SigLIP (`just export-hf clip-vit-b32`)".into(),
        })?;
        let tok_path = models_dir.join(&tower.tokenizer);
        let tokenizer =
            tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| ModelError::Ort {
                name: entry.name.clone(),
                message: format!("cannot read tokenizer {}: {e}", tok_path.display()),
            })?;
        let path = models_dir.join(&tower.file);
        if !path.is_file() {
            return Err(ModelError::FileMissing {
                name: format!("{} (text tower)", entry.name),
                path,
            });
        }
        let session = cpu_session(entry, &path, 0)?;
        Ok(Self { name: entry.name.clone(), tower, tokenizer, session })
    }

    /// Token ids for `text` as the tower expects them (special tokens, truncation, padding).
    pub fn token_ids(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| ModelError::Ort {
            name: self.name.clone(),
            message: format!("tokenizer: {e}"),
        })?;
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        ids.truncate(self.tower.max_length);
        if let Some(n) = self.tower.pad_to {
            let pad = self
                .tower
                .pad_id
                .or_else(|| self.tokenizer.get_padding().map(|p| i64::from(p.pad_id)))
                .unwrap_or(0);
            ids.resize(n.max(ids.len()), pad);
        }
        Ok(ids)
    }

    /// The L2-normalised embedding of `text`.
    pub fn embed(&mut self, text: &str) -> Result<Vec<f32>> {
        let ids = self.token_ids(text)?;
        let n = ids.len();
        let ort_err =
            |e: ort::Error| ModelError::Ort { name: self.name.clone(), message: e.to_string() };
        let ids_t = ort::value::Tensor::from_array((vec![1usize, n], ids)).map_err(ort_err)?;
        let mut inputs = ort::inputs![self.tower.input_ids.as_str() => ids_t];
        if let Some(mask) = &self.tower.attention_mask {
            let m = ort::value::Tensor::from_array((vec![1usize, n], vec![1i64; n]))
                .map_err(ort_err)?;
            inputs.push((mask.clone().into(), m.into()));
        }
        let outputs = self.session.run(inputs).map_err(ort_err)?;
        let value = outputs.get(&self.tower.output).ok_or_else(|| ModelError::Ort {
            name: self.name.clone(),
            message: format!("output `{}` missing", self.tower.output),
        })?;
        let (_, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
        let mut v = data.to_vec();
        l2_normalise(&mut v);
        Ok(v)
    }
}
