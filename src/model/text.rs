//! Text towers (CLIP, SigLIP): tokenizer + ONNX text encoder, giving vectors in the space of
//! their image model.

use std::path::Path;

use ort::session::Session;

use super::manifest::{ModelEntry, TextTower};
use super::{cpu_session, l2_normalise, ModelError, Result};

/// A text tower ready to embed.
pub struct TextEmbedder {
    pub name: String,
    tower: TextTower,
    tokenizer: tokenizers::Tokenizer,
    session: Session,
}

impl TextEmbedder {
    /// Opens `entry`'s text tower, or explains that the model has none.
    pub fn open(entry: &ModelEntry, models_dir: &Path) -> Result<Self> {
        let tower = entry
            .text
            .clone()
            .ok_or_else(|| ModelError::NoTextTower { name: entry.name.clone() })?;
        let tok_path = models_dir.join(&tower.tokenizer);
        let tokenizer =
            tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| ModelError::Tokenizer {
                name: entry.name.clone(),
                path: tok_path.clone(),
                message: e.to_string(),
            })?;
        let path = models_dir.join(&tower.file);
        if !path.is_file() {
            return Err(ModelError::FileMissing {
                name: format!("{} (text tower)", entry.name),
                path,
            });
        }
        let session = cpu_session(&entry.name, &path, 0)?;
        Ok(Self { name: entry.name.clone(), tower, tokenizer, session })
    }

    /// Token ids for `text` as the tower expects them (special tokens, truncation, padding).
    pub fn token_ids(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self.tokenizer.encode(text, true).map_err(|e| ModelError::Tokenizer {
            name: self.name.clone(),
            path: self.tower.tokenizer.clone().into(),
            message: e.to_string(),
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
        let name = self.name.clone();
        let ort_err = |source: ort::Error| ModelError::Ort { name: name.clone(), source };
        let ids_t = ort::value::Tensor::from_array((vec![1usize, n], ids)).map_err(ort_err)?;
        let mut inputs = ort::inputs![self.tower.input_ids.as_str() => ids_t];
        if let Some(mask) = &self.tower.attention_mask {
            let m = ort::value::Tensor::from_array((vec![1usize, n], vec![1i64; n]))
                .map_err(ort_err)?;
            inputs.push((mask.clone().into(), m.into()));
        }
        let outputs = self.session.run(inputs).map_err(ort_err)?;
        let value = outputs.get(&self.tower.output).ok_or_else(|| ModelError::OutputMissing {
            name: self.name.clone(),
            output: self.tower.output.clone(),
        })?;
        let (_, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
        let mut v = data.to_vec();
        l2_normalise(&mut v);
        Ok(v)
    }
}
