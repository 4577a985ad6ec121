//! The model zoo manifest (`onnx/models.toml`): what each ONNX file expects and produces.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest shipped with embtui; a user manifest may add or override entries.
pub const BUILTIN: &str = include_str!("../../onnx/models.toml");

/// One model of the zoo. Field meanings are documented at the top of `onnx/models.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub family: String,
    pub source: String,
    pub license: String,
    #[serde(default)]
    pub description: String,
    pub file: String,
    pub input: String,
    pub layout: Layout,
    pub size: u32,
    pub resize: Resize,
    pub crop: Option<u32>,
    pub pad: Option<u32>,
    pub rescale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub channels: Channels,
    pub output: String,
    pub pooling: Pooling,
    pub dim: usize,
    pub logits: Option<String>,
    /// The text tower exported beside the image model (CLIP, SigLIP), for text queries.
    pub text: Option<TextTower>,
}

impl ModelEntry {
    /// True when the input is `[N, 3, H, W]` (else `[N, H, W, 3]`).
    pub fn is_nchw(&self) -> bool {
        self.layout == Layout::Nchw
    }
}

/// A text encoder whose embeddings live in the image model's space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextTower {
    /// ONNX file, relative to the models folder.
    pub file: String,
    /// `tokenizer.json` (Hugging Face tokenizers format), relative to the models folder.
    pub tokenizer: String,
    /// Longest token sequence; longer texts are truncated.
    pub max_length: usize,
    /// Pad every text to this many tokens (SigLIP was trained so); none for CLIP.
    pub pad_to: Option<usize>,
    /// The padding token's id (with `pad_to`).
    pub pad_id: Option<i64>,
    pub input_ids: String,
    pub attention_mask: Option<String>,
    pub output: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    None,
    Cls,
    MeanTokens,
    MeanSpatial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeRule {
    Shorter,
    Longest,
    Exact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Nearest,
    Bilinear,
    Bicubic,
    Area,
    Lanczos3,
}

/// How the kept-aspect side is rounded: Python's `round` (PIL/timm pipelines) or `int()`
/// truncation (Hugging Face image processors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rounding {
    #[default]
    Nearest,
    Floor,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    pub rule: ResizeRule,
    pub to: u32,
    pub interpolation: Interpolation,
    #[serde(default)]
    pub round: Rounding,
}

/// The largest model input side a manifest may declare.
pub const MAX_INPUT_SIDE: u32 = 4096;
/// The largest embedding dimension a manifest may declare.
pub const MAX_DIM: usize = 65_536;

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("could not read manifest {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("manifest {path} is not valid: {message}; see the field list at the top of onnx/models.toml")]
    Parse { path: PathBuf, message: String },
    #[error("manifest {path}: model `{name}`: {problem}")]
    Invalid { path: PathBuf, name: String, problem: String },
}

#[derive(Deserialize)]
struct ManifestFile {
    model: Vec<ModelEntry>,
}

/// All models known to embtui, in manifest order.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
}

impl Manifest {
    /// The built-in zoo, extended (and overridden by name) by `extra` manifests.
    pub fn load(extra: &[PathBuf]) -> Result<Self, ManifestError> {
        let mut models = parse(BUILTIN, Path::new("onnx/models.toml"))?;
        for path in extra {
            let text =
                std::fs::read_to_string(path).map_err(|e| ManifestError::Read(path.clone(), e))?;
            for entry in parse(&text, path)? {
                models.retain(|m| m.name != entry.name);
                models.push(entry);
            }
        }
        Ok(Self { models })
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }
}

/// Parses and validates a manifest text.
pub fn parse(text: &str, path: &Path) -> Result<Vec<ModelEntry>, ManifestError> {
    let file: ManifestFile = toml::from_str(text)
        .map_err(|e| ManifestError::Parse { path: path.to_owned(), message: e.to_string() })?;
    for m in &file.model {
        validate(m).map_err(|problem| ManifestError::Invalid {
            path: path.to_owned(),
            name: m.name.clone(),
            problem,
        })?;
    }
    Ok(file.model)
}

/// Checks one entry as a manifest file's entries are checked (the problem in words).
pub fn check(m: &ModelEntry) -> Result<(), String> {
    validate(m)
}

fn validate(m: &ModelEntry) -> Result<(), String> {
    // An input side or embedding this large is a typo, and allocating for it would abort.
    if m.size > MAX_INPUT_SIDE || m.resize.to > MAX_INPUT_SIDE {
        return Err(format!(
            "`size` {} / `resize.to` {} exceed {MAX_INPUT_SIDE} px; no image model takes inputs \
             that large",
            m.size, m.resize.to
        ));
    }
    if m.dim > MAX_DIM {
        return Err(format!("`dim` {} exceeds {MAX_DIM}", m.dim));
    }
    let out_side = m.pad.or(m.crop).unwrap_or(m.resize.to);
    if m.resize.rule != ResizeRule::Exact && m.crop.is_none() && m.pad.is_none() {
        return Err(format!(
            "resize rule {:?} keeps the aspect ratio, so it needs `crop` or `pad` to reach {}×{}",
            m.resize.rule, m.size, m.size
        ));
    }
    if out_side != m.size {
        return Err(format!("preprocessing ends at {out_side} px but `size` is {}", m.size));
    }
    if m.std.contains(&0.0) {
        return Err("`std` has a zero entry".into());
    }
    if m.dim == 0 || m.size == 0 {
        return Err("`dim` and `size` must be positive".into());
    }
    if m.file.contains("..") || Path::new(&m.file).is_absolute() {
        return Err(format!("`file` {:?} must be a plain name inside the models folder", m.file));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_has_the_four_offline_models() {
        let m = Manifest::load(&[]).unwrap();
        assert_eq!(
            m.names(),
            ["efficientnet-lite0", "efficientnet-lite2", "open-nsfw", "dinov2-s14-imgfocus"]
        );
        assert_eq!(m.get("dinov2-s14-imgfocus").unwrap().dim, 384);
        assert_eq!(m.get("open-nsfw").unwrap().layout, Layout::Nhwc);
    }

    #[test]
    fn crop_that_does_not_reach_size_is_refused() {
        let text = BUILTIN.replacen("crop = 224", "crop = 200", 1);
        let err = parse(&text, Path::new("m.toml")).unwrap_err().to_string();
        assert_eq!(
            err,
            "manifest m.toml: model `efficientnet-lite0`: preprocessing ends at 200 px but `size` is 224"
        );
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_allocated() {
        let text = BUILTIN.replacen("size = 224", "size = 100000", 1);
        let err = parse(&text, Path::new("m.toml")).unwrap_err().to_string();
        assert!(err.contains("exceed 4096 px"), "{err}");
    }

    #[test]
    fn unknown_field_is_named() {
        let text = BUILTIN.replacen("pooling = \"none\"", "pooling = \"none\"\nsizee = 3", 1);
        let err = parse(&text, Path::new("m.toml")).unwrap_err().to_string();
        assert!(err.contains("sizee"), "{err}");
    }
}
