//! Models: the manifest, preprocessing, ONNX Runtime sessions and execution providers.
//! The only user of `ort`.

pub mod derive;
pub mod manifest;
pub mod preprocess;
pub mod pull;
pub mod resample;
pub mod runtime;
pub mod sentence;
pub mod text;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ort::session::Session;
use ort::value::{TensorRef, ValueType};

pub use manifest::{Manifest, ModelEntry, Pooling};
pub use runtime::ORT_VERSION;
pub use text::TextEmbedder;

/// Which execution provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// CUDA on GPU 0 if a GPU runtime is installed and works, else CPU.
    Auto,
    Cpu,
    /// CUDA on the GPU with this index.
    Cuda(u32),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|k| k.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("`{s}` is not a device; use auto, cpu, cuda or cuda:K")),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(k) => write!(f, "cuda:{k}"),
        }
    }
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("an embedding thread stopped before finishing batch {batch}; this is a bug, please report it with the command line")]
    Lane { batch: usize },
    #[error(
        "ONNX Runtime library not found; looked in: {searched}. Run `just setup` (downloads the \
         onnxruntime=={ORT_VERSION} wheel's library into .ort/), or set ORT_DYLIB_PATH to a \
         libonnxruntime.so"
    )]
    RuntimeMissing { searched: String },
    #[error("could not load ONNX Runtime from {path}: {message}; run `just setup` or fix ORT_DYLIB_PATH")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error(
        "model `{name}` is not in the manifest; known models: {known}. Name a Hugging Face Hub \
         repo that publishes ONNX (e.g. Xenova/clip-vit-base-patch32), or add an entry to a \
         manifest passed with --manifest"
    )]
    UnknownModel { name: String, known: String },
    #[error(
        "model file {path} for `{name}` is missing; run `just setup` (offline models) or \
         `just export-hf {name}`"
    )]
    FileMissing { name: String, path: PathBuf },
    #[error(
        "`{name}` has no fp16 copy (--precision fp16); make it once with `just fp16 {name}` \
         (installed models) or `just export-hf {name} --precision fp16`"
    )]
    NoFp16Copy { name: String },
    #[error("could not read model file {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("model `{name}`: {tensor} {what}: expected {expected}, found {found}")]
    Mismatch { name: String, tensor: String, what: String, expected: String, found: String },
    #[error(
        "--device {device} was asked for but CUDA is unusable: {reason}; on an NVIDIA machine run \
         `just setup-gpu` and check with `embtui doctor`, or use --device cpu"
    )]
    CudaUnusable { device: Device, reason: String },
    #[error("ONNX Runtime failed on model `{name}`")]
    Ort { name: String, source: ort::Error },
    #[error("model `{name}`: output `{output}` missing from the run")]
    OutputMissing { name: String, output: String },
    #[error(
        "model `{name}` has no text tower; text queries need CLIP or SigLIP \
         (`just export-hf clip-vit-b32`)"
    )]
    NoTextTower { name: String },
    #[error("model `{name}`: cannot use tokenizer {path}: {message}")]
    Tokenizer { name: String, path: PathBuf, message: String },
    #[error(transparent)]
    Pull(Box<pull::PullError>),
}

impl From<pull::PullError> for ModelError {
    fn from(e: pull::PullError) -> Self {
        Self::Pull(Box::new(e))
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// A model ready to embed: its manifest entry and an ONNX Runtime session on a device.
pub struct Embedder {
    pub entry: ModelEntry,
    pub path: PathBuf,
    pub sha256: String,
    /// The device actually used: `cpu` or `cuda:K`.
    pub device: Device,
    /// Why `auto` fell back to CPU although a GPU runtime is installed.
    pub fallback: Option<String>,
    /// When set, each row [`Embedder::embed_batch`] returns is the embedding followed by the
    /// manifest's `logits` output (for classification sanity checks such as `export --logits`).
    pub with_logits: bool,
    /// Seconds spent starting sessions: creating this one (with the CUDA warm-up batch, where
    /// cuDNN picks its algorithms), plus any lanes made later.
    pub start_seconds: f64,
    /// Intra-op threads of each CPU session (0 = ONNX Runtime's default, one per core).
    threads: usize,
    session: Session,
    /// More CPU sessions of the same file, made on demand by [`Embedder::lanes`].
    replicas: Vec<Session>,
}

/// One ONNX Runtime session of a model, for one thread to run batches on while other
/// threads use other lanes of the same [`Embedder`].
pub struct Lane<'a> {
    entry: &'a ModelEntry,
    with_logits: bool,
    session: &'a mut Session,
}

impl Lane<'_> {
    /// Runs one batch of `n` preprocessed images (`input` holds n×size×size×3 floats) and
    /// returns `n` L2-normalised embeddings of `entry.dim` floats, row after row (each
    /// followed by the manifest's `logits` output when the embedder has `with_logits`).
    pub fn embed_batch(&mut self, input: &[f32], n: usize) -> Result<Vec<f32>> {
        let (out, logits) = run_session(self.session, self.entry, input, n, self.with_logits)?;
        let Some(logits) = logits else { return Ok(out) };
        let (d, c) = (self.entry.dim, logits.len() / n.max(1));
        Ok((0..n)
            .flat_map(|i| {
                out[i * d..(i + 1) * d].iter().chain(&logits[i * c..(i + 1) * c]).copied()
            })
            .collect())
    }
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
        let sha256 = crate::hash::model_sha256(&path)
            .map_err(|source| ModelError::Read { path: path.clone(), source })?;
        runtime::environment(device != Device::Cpu)?;
        let started = std::time::Instant::now();
        let (session, used, fallback) = match device {
            Device::Cpu => (cpu_session(&entry.name, &path, threads)?, Device::Cpu, None),
            Device::Cuda(k) => {
                let s = cuda_session(entry, &path, k)
                    .map_err(|reason| ModelError::CudaUnusable { device, reason })?;
                (s, device, None)
            }
            // Without the GPU build of ONNX Runtime there is nothing to try: CPU, silently.
            Device::Auto if !gpu_runtime_loaded() => {
                (cpu_session(&entry.name, &path, threads)?, Device::Cpu, None)
            }
            Device::Auto => match cuda_session(entry, &path, 0) {
                Ok(s) => (s, Device::Cuda(0), None),
                Err(why) => (cpu_session(&entry.name, &path, threads)?, Device::Cpu, Some(why)),
            },
        };
        let mut e = Self {
            entry: entry.clone(),
            path,
            sha256,
            device: used,
            fallback,
            with_logits: false,
            start_seconds: 0.0,
            threads,
            session,
            replicas: Vec::new(),
        };
        e.check_io()?;
        if matches!(e.device, Device::Cuda(_)) {
            e.warm_up(device, threads)?;
        }
        e.start_seconds = started.elapsed().as_secs_f64();
        Ok(e)
    }

    /// cuDNN loads lazily: one warm-up batch proves the provider really works.
    fn warm_up(&mut self, asked: Device, threads: usize) -> Result<()> {
        let n = (self.entry.size as usize).pow(2) * 3;
        let Err(err) = self.embed_batch(&vec![0.0; n], 1) else { return Ok(()) };
        if asked != Device::Auto {
            return Err(ModelError::CudaUnusable { device: asked, reason: format!("{err:#}") });
        }
        self.session = cpu_session(&self.entry.name, &self.path, threads)?;
        self.device = Device::Cpu;
        self.fallback = Some(format!("CUDA warm-up failed: {err}"));
        Ok(())
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
        let inputs: Vec<&str> =
            self.session.inputs().iter().map(ort::value::Outlet::name).collect();
        let input =
            self.session.inputs().iter().find(|i| i.name() == m.input).ok_or_else(|| {
                mismatch("input", "name", format!("`{}`", m.input), format!("{inputs:?}"))
            })?;
        let s = i64::from(m.size);
        let want: [i64; 4] = if m.is_nchw() { [-1, 3, s, s] } else { [-1, s, s, 3] };
        check_tensor(input.dtype(), &want)
            .map_err(|(what, exp, found)| mismatch(&m.input, &what, exp, found))?;
        let outputs: Vec<&str> =
            self.session.outputs().iter().map(ort::value::Outlet::name).collect();
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

    /// Runs one batch (see [`Lane::embed_batch`]) on this embedder's first session.
    pub fn embed_batch(&mut self, input: &[f32], n: usize) -> Result<Vec<f32>> {
        self.lane().embed_batch(input, n)
    }

    fn lane(&mut self) -> Lane<'_> {
        Lane { entry: &self.entry, with_logits: self.with_logits, session: &mut self.session }
    }

    /// `n` lanes to run batches on from `n` threads at once: this embedder's session and
    /// `n - 1` more CPU sessions of the same file (each with the same intra-op threads), made
    /// on the first call and kept. A CUDA embedder has one lane.
    pub fn lanes(&mut self, n: usize) -> Result<Vec<Lane<'_>>> {
        let n = if self.device == Device::Cpu { n.max(1) } else { 1 };
        while self.replicas.len() + 1 < n {
            let t = std::time::Instant::now();
            self.replicas.push(cpu_session(&self.entry.name, &self.path, self.threads)?);
            self.start_seconds += t.elapsed().as_secs_f64();
        }
        let (entry, with_logits) = (&self.entry, self.with_logits);
        Ok(std::iter::once(&mut self.session)
            .chain(self.replicas.iter_mut())
            .take(n)
            .map(|session| Lane { entry, with_logits, session })
            .collect())
    }
}

/// Runs one batch on `session`: `n` L2-normalised embeddings and, when asked, the logits.
fn run_session(
    session: &mut Session,
    m: &ModelEntry,
    input: &[f32],
    n: usize,
    logits: bool,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let s = m.size as usize;
    let shape: Vec<usize> = if m.is_nchw() { vec![n, 3, s, s] } else { vec![n, s, s, 3] };
    let ort_err = |source: ort::Error| ModelError::Ort { name: m.name.clone(), source };
    let tensor = TensorRef::from_array_view((shape, input)).map_err(ort_err)?;
    let outputs = session.run(ort::inputs![m.input.as_str() => tensor]).map_err(ort_err)?;
    let value = outputs.get(&m.output).ok_or_else(|| ModelError::OutputMissing {
        name: m.name.clone(),
        output: m.output.clone(),
    })?;
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
    let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
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
            let v = outputs.get(name).ok_or_else(|| ModelError::OutputMissing {
                name: m.name.clone(),
                output: name.clone(),
            })?;
            Some(v.try_extract_tensor::<f32>().map_err(ort_err)?.1.to_vec())
        }
        _ => None,
    };
    Ok((emb, logit_values))
}

/// What a tensor check found wrong: (what, expected, found).
type TensorMismatch = (String, String, String);

fn check_tensor(dtype: &ValueType, want: &[i64]) -> std::result::Result<(), TensorMismatch> {
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
        _ => Err(format!("{dims:?}")),
    }
}

/// The ONNX graph at `path` on a one-thread CPU session, with its inputs and outputs (names
/// and dims) for deriving an entry; the same session then serves [`probe_dim`].
pub fn graph_io(path: &Path) -> Result<(derive::GraphIo, Session)> {
    let session = cpu_session(&path.display().to_string(), path, 1)?;
    Ok((pull::io_of(&session), session))
}

/// Runs one all-zero image through `entry`'s graph and returns the pooled vector's length
/// (the entry's `dim`): proves the derived input, output and pooling work together.
pub fn probe_dim(entry: &ModelEntry, session: &mut Session) -> Result<usize> {
    let s = entry.size as usize;
    let shape: Vec<usize> = if entry.is_nchw() { vec![1, 3, s, s] } else { vec![1, s, s, 3] };
    let input = vec![0.0f32; 3 * s * s];
    let ort_err = |source: ort::Error| ModelError::Ort { name: entry.name.clone(), source };
    let tensor = TensorRef::from_array_view((shape, input.as_slice())).map_err(ort_err)?;
    let outputs = session.run(ort::inputs![entry.input.as_str() => tensor]).map_err(ort_err)?;
    let value = outputs.get(&entry.output).ok_or_else(|| ModelError::OutputMissing {
        name: entry.name.clone(),
        output: entry.output.clone(),
    })?;
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
    let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
    let v = pool(data, &dims, entry.pooling).map_err(|found| ModelError::Mismatch {
        name: entry.name.clone(),
        tensor: entry.output.clone(),
        what: format!("shape for pooling `{:?}`", entry.pooling),
        expected: "a shape that pooling accepts".into(),
        found,
    })?;
    Ok(v.len())
}

/// Scales `v` to unit length (left as is when it is all zeros).
pub fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// True when the loaded ONNX Runtime has its CUDA provider library beside it.
fn gpu_runtime_loaded() -> bool {
    runtime::loaded_path()
        .and_then(Path::parent)
        .is_some_and(|d| d.join("libonnxruntime_providers_cuda.so").exists())
}

fn cpu_session(name: &str, path: &Path, threads: usize) -> Result<Session> {
    let env = runtime::environment(false)?;
    let err = |source: ort::Error| ModelError::Ort { name: name.to_owned(), source };
    let mut b = Session::builder(env).map_err(err)?;
    if threads > 0 {
        b = b.with_intra_threads(threads).map_err(|e| err(e.into()))?;
    }
    // Decoder threads share the cores: ONNX Runtime's workers must not spin while they wait.
    if std::env::var_os("EMBTUI_SPIN").is_none() {
        b = b.with_intra_op_spinning(false).map_err(|e| err(e.into()))?;
    }
    b.commit_from_file(path).map_err(err)
}

/// How cuDNN picks convolution algorithms (CUDA only; `--cudnn-search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CudnnSearch {
    Heuristic,
    Exhaustive,
    Default,
}

/// cuDNN's convolution algorithm search for CUDA sessions (`--cudnn-search`), set once at
/// start-up; heuristic when never set.
static CUDNN_SEARCH: std::sync::OnceLock<CudnnSearch> = std::sync::OnceLock::new();

/// Sets how CUDA sessions search cuDNN's convolution algorithms (the first call wins).
pub fn set_cudnn_search(mode: CudnnSearch) {
    let _ = CUDNN_SEARCH.set(mode);
}

/// A CUDA session on GPU `k`, or why there is none (in words: the caller decides whether that
/// is an error or a reason to use the CPU).
fn cuda_session(entry: &ModelEntry, path: &Path, k: u32) -> std::result::Result<Session, String> {
    let env = runtime::environment(true).map_err(|e| e.to_string())?;
    let id = i32::try_from(k).map_err(|_| format!("GPU index {k} is out of range"))?;
    let search = match CUDNN_SEARCH.get() {
        None | Some(CudnnSearch::Heuristic) => ort::ep::cuda::ConvAlgorithmSearch::Heuristic,
        Some(CudnnSearch::Exhaustive) => ort::ep::cuda::ConvAlgorithmSearch::Exhaustive,
        Some(CudnnSearch::Default) => ort::ep::cuda::ConvAlgorithmSearch::Default,
    };
    let cuda = ort::ep::CUDA::default()
        .with_device_id(id)
        .with_conv_algorithm_search(search)
        .build()
        .error_on_failure();
    let mut b = Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_execution_providers([cuda])
        .map_err(|e| format!("CUDA execution provider did not register: {e}"))?;
    b.commit_from_file(path)
        .map_err(|e| format!("model `{}` did not load on cuda:{k}: {e}", entry.name))
}

/// Whether CUDA works, for `doctor`: a session of `entry` on GPU `k` and a warm-up batch.
pub fn probe_cuda(
    entry: &ModelEntry,
    models_dir: &Path,
    k: u32,
) -> std::result::Result<(), String> {
    if !runtime::gpu_runtime_installed() && !gpu_runtime_loaded() {
        return Err("no GPU build of ONNX Runtime is installed (`just setup-gpu` adds one)".into());
    }
    Embedder::open(entry, models_dir, Device::Cuda(k), 0).map(drop).map_err(|e| match e {
        ModelError::CudaUnusable { reason, .. } => reason,
        other => other.to_string(),
    })
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

    #[test]
    fn devices_parse_and_print_alike() {
        for s in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(s.parse::<Device>().unwrap().to_string(), s);
        }
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert!("cuda:x".parse::<Device>().is_err());
    }
}
