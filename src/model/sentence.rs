//! The caption encoder behind semantic relevance: all-MiniLM-L6-v2 (sentence-transformers),
//! built into `models/all-minilm-l6-v2.onnx` by `just setup` (onnx/minilm.py) with its
//! tokenizer beside it. The graph already mean-pools over the attention mask and
//! L2-normalises, so a caption's vector is the graph's output row.

use std::path::{Path, PathBuf};

use ort::session::Session;

use super::{cpu_session, ModelError, Result};

/// The encoder's name in models/ and in the store's cache keys.
pub const NAME: &str = "all-minilm-l6-v2";
/// Its output dimension.
pub const DIM: usize = 384;
/// Captions per ONNX Runtime call.
const BATCH: usize = 64;
/// Longest token sequence kept (sentence-transformers' tokenizer.json truncates at 128 too).
const MAX_TOKENS: usize = 128;

/// A caption encoder ready to embed.
pub struct SentenceEncoder {
    tokenizer: tokenizers::Tokenizer,
    session: Session,
    tokenizer_path: PathBuf,
    /// sha256 of the ONNX file: captions embedded by another graph are not reused.
    pub sha256: String,
}

impl SentenceEncoder {
    /// Opens the encoder in `models_dir`, or says how to get it.
    pub fn open(models_dir: &Path) -> Result<Self> {
        let path = models_dir.join(format!("{NAME}.onnx"));
        if !path.is_file() {
            return Err(ModelError::FileMissing { name: NAME.into(), path });
        }
        let tokenizer_path = models_dir.join(format!("{NAME}.tokenizer.json"));
        let tok_err = |message: String| ModelError::Tokenizer {
            name: NAME.into(),
            path: tokenizer_path.clone(),
            message,
        };
        let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| tok_err(e.to_string()))?;
        // Pad each batch to its longest caption (the file pads to a fixed 128).
        tokenizer.with_padding(Some(tokenizers::PaddingParams {
            strategy: tokenizers::PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| tok_err(e.to_string()))?;
        let sha256 = crate::hash::file_sha256(&path)
            .map_err(|source| ModelError::Read { path: path.clone(), source })?;
        let session = cpu_session(NAME, &path, 0)?;
        Ok(Self { tokenizer, session, tokenizer_path, sha256 })
    }

    /// Unit vectors of `texts`, in order; `progress` gets the number done after each batch.
    pub fn encode(
        &mut self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<[f32; DIM]>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.encode_batch(batch)?);
            progress(out.len());
        }
        Ok(out)
    }

    fn encode_batch(&mut self, texts: &[&str]) -> Result<Vec<[f32; DIM]>> {
        let enc = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| {
            ModelError::Tokenizer {
                name: NAME.into(),
                path: self.tokenizer_path.clone(),
                message: e.to_string(),
            }
        })?;
        let (b, t) = (enc.len(), enc.first().map_or(0, tokenizers::Encoding::len));
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for e in &enc {
            ids.extend(e.get_ids().iter().map(|&i| i64::from(i)));
            mask.extend(e.get_attention_mask().iter().map(|&m| i64::from(m)));
        }
        let err = |source: ort::Error| ModelError::Ort { name: NAME.into(), source };
        let ids = ort::value::Tensor::from_array((vec![b, t], ids)).map_err(err)?;
        let mask = ort::value::Tensor::from_array((vec![b, t], mask)).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
            .map_err(err)?;
        let value = outputs.get("sentence_embedding").ok_or_else(|| ModelError::OutputMissing {
            name: NAME.into(),
            output: "sentence_embedding".into(),
        })?;
        let (_, data) = value.try_extract_tensor::<f32>().map_err(err)?;
        Ok(data
            .chunks_exact(DIM)
            .map(|row| {
                let mut v = [0f32; DIM];
                v.copy_from_slice(row);
                v
            })
            .collect())
    }
}
