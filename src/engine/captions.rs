//! Caption embeddings for semantic relevance: every distinct caption embedded once by the
//! MiniLM encoder and cached in the store (keyed by the encoder file's sha256 and the caption's
//! sha256, like image vectors), then each image's unit mean vector, centred on the dataset.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;

use crate::config::Config;
use crate::model::sentence::{SentenceEncoder, DIM, NAME};
use crate::relevance::{Method, Relevance, Semantic};
use crate::store::Store;

/// Relevance of `captions` (one list per image, in id order) by `method`, embedding captions
/// first when the method needs them. `say` is told what is happening.
pub fn relevance(
    cfg: &Config,
    store: Option<&Store>,
    method: Method,
    captions: &[Vec<String>],
    say: &dyn Fn(&str),
) -> anyhow::Result<Relevance> {
    if !method.needs_semantic() {
        return Ok(Relevance::new(method, captions));
    }
    let semantic = image_vectors(cfg, store, captions, say)?;
    Ok(Relevance::with_semantic(method, captions, semantic))
}

/// One relevance model per method over `captions` (one list per image), the caption vectors
/// embedded once for all semantic methods, cached in the store at `cfg.store_dir`.
pub fn relevances(
    cfg: &Config,
    methods: &[Method],
    captions: &[Vec<String>],
) -> anyhow::Result<Vec<Relevance>> {
    let semantic = if methods.iter().any(|m| m.needs_semantic()) {
        let store = Store::open(&cfg.store_dir)?;
        Some(image_vectors(cfg, Some(&store), captions, &|s| crate::say!("{s}"))?)
    } else {
        None
    };
    Ok(methods
        .iter()
        .map(|&method| match (&semantic, method.needs_semantic()) {
            (Some(s), true) => Relevance::with_semantic(method, captions, s.clone()),
            _ => Relevance::new(method, captions),
        })
        .collect())
}

/// Each image's unit mean caption embedding, centred on the dataset (`relevance::centre`).
pub fn image_vectors(
    cfg: &Config,
    store: Option<&Store>,
    captions: &[Vec<String>],
    say: &dyn Fn(&str),
) -> anyhow::Result<Semantic> {
    let mut encoder = SentenceEncoder::open(&cfg.encoder_dir())
        .context("semantic relevance needs the MiniLM caption encoder (`just setup` builds it)")?;
    // Distinct captions, each with its cache key.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    for c in captions.iter().flatten() {
        index.entry(c.as_str()).or_insert_with(|| {
            distinct.push(c.as_str());
            distinct.len() - 1
        });
    }
    let keys: Vec<Option<[u8; 32]>> =
        distinct.iter().map(|c| Some(crate::hash::bytes_sha256(c.as_bytes()))).collect();
    let mut vectors: Vec<Option<Vec<f32>>> = match store {
        Some(s) => s.cached(&encoder.sha256, DIM, NAME, &keys)?,
        None => vec![None; distinct.len()],
    };
    let missing: Vec<usize> = (0..distinct.len()).filter(|&i| vectors[i].is_none()).collect();
    if !missing.is_empty() {
        say(&format!(
            "embedding {} captions with {NAME} ({} cached)",
            missing.len(),
            distinct.len() - missing.len()
        ));
        let t = Instant::now();
        // Chunks are written as they finish: an interrupted run keeps what it computed.
        for chunk in missing.chunks(4096) {
            let texts: Vec<&str> = chunk.iter().map(|&i| distinct[i]).collect();
            let out = encoder.encode(&texts, &mut |_| {})?;
            let items: Vec<([u8; 32], Vec<f32>)> = chunk
                .iter()
                .zip(&out)
                .filter_map(|(&i, v)| keys[i].map(|k| (k, v.to_vec())))
                .collect();
            if let Some(s) = store {
                s.put_vectors(&encoder.sha256, &items)?;
            }
            for (&i, v) in chunk.iter().zip(out) {
                vectors[i] = Some(v.to_vec());
            }
        }
        let secs = t.elapsed().as_secs_f64();
        if let Some(s) = store {
            s.record_run(&encoder.sha256, NAME, "cpu", missing.len() as u64, secs)?;
        }
        say(&format!(
            "{} captions embedded in {secs:.1} s ({:.0} captions/s)",
            missing.len(),
            missing.len() as f64 / secs.max(1e-9)
        ));
    }
    let mut flat = vec![0f32; captions.len() * DIM];
    for (caps, row) in captions.iter().zip(flat.chunks_mut(DIM)) {
        for c in caps {
            if let Some(v) = &vectors[index[c.as_str()]] {
                row.iter_mut().zip(v).for_each(|(r, x)| *r += x);
            }
        }
        crate::model::l2_normalise(row);
    }
    crate::relevance::centre(&mut flat, DIM, crate::relevance::CENTRE_MIN_IMAGES);
    Ok(Semantic { dim: DIM, vectors: flat })
}
