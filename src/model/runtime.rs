//! Finding and loading the ONNX Runtime shared library, once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{ModelError, Result};

/// The ONNX Runtime version embtui is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// Why the library could not be loaded; kept (typed) for every later caller in the process.
#[derive(Debug, Clone)]
enum LoadFailure {
    Missing(Vec<PathBuf>),
    Load { path: PathBuf, message: String },
}

static ENV: OnceLock<std::result::Result<(ort::environment::Environment, PathBuf), LoadFailure>> =
    OnceLock::new();

/// Candidate paths for `libonnxruntime.so`, in search order.
pub fn candidates(prefer_gpu: bool) -> Vec<PathBuf> {
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
    for f in flavours {
        out.push(crate::files::data_dir().join("ort").join(f).join(&lib));
    }
    out
}

/// Loads ONNX Runtime once per process.
pub fn environment(prefer_gpu: bool) -> Result<&'static ort::environment::Environment> {
    let res = ENV.get_or_init(|| {
        let cands = candidates(prefer_gpu);
        let Some(path) = cands.iter().find(|p| p.exists()).cloned() else {
            return Err(LoadFailure::Missing(cands));
        };
        let fail = |message: String| LoadFailure::Load { path: path.clone(), message };
        let builder = ort::init_from(&path).map_err(|e| fail(e.to_string()))?;
        let env = builder.with_name("embtui").build().map_err(|e| fail(e.to_string()))?;
        Ok((env, path))
    });
    match res {
        Ok((env, _)) => Ok(env),
        Err(LoadFailure::Missing(searched)) => Err(ModelError::RuntimeMissing {
            searched: searched
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        Err(LoadFailure::Load { path, message }) => {
            Err(ModelError::RuntimeLoad { path: path.clone(), message: message.clone() })
        }
    }
}

/// Path of the loaded library, once [`environment`] succeeded.
pub fn loaded_path() -> Option<&'static Path> {
    ENV.get().and_then(|r| r.as_ref().ok()).map(|(_, p)| p.as_path())
}

/// ONNX Runtime's version, once loaded: from the library's file name (`libonnxruntime.so.1.31.1`,
/// following links), else the commit in its build info.
pub fn version() -> Option<String> {
    let path = loaded_path()?;
    let from_name =
        |p: &Path| p.file_name()?.to_str()?.strip_prefix("libonnxruntime.so.").map(str::to_owned);
    from_name(path).or_else(|| from_name(&path.canonicalize().ok()?)).or_else(|| {
        let info = ort::info();
        info.split(',')
            .find_map(|p| p.trim().strip_prefix("git-commit-id="))
            .map(|c| format!("commit {c}"))
    })
}

/// True when the GPU build of ONNX Runtime (`just setup-gpu`) is among the candidates.
pub fn gpu_runtime_installed() -> bool {
    candidates(true)
        .iter()
        .any(|p| p.exists() && p.parent().is_some_and(|d| d.ends_with(".ort/gpu")))
}
