//! Content hashes: model files (sha256) and images (sha256 of the bytes) for the cache keys.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Hex sha256 of a file, streamed.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The cache key of an ONNX model: the graph's sha256, combined with its external-data files'
/// (`NAME.onnx.data`, what exports of models over 2 GB write; `NAME.onnx_data`, `…_data_1`,
/// what transformers.js repos on the Hub hold) when there are any, so new weights under an
/// unchanged graph never reuse old vectors. A model without external data keeps its graph's
/// hash, so vectors stored before this covered `.onnx_data` stay valid.
pub fn model_sha256(path: &Path) -> std::io::Result<String> {
    let graph = file_sha256(path)?;
    let data = external_data(path);
    if data.is_empty() {
        return Ok(graph);
    }
    let mut all = graph;
    for d in &data {
        all = format!("{all}:{}", file_sha256(d)?);
    }
    Ok(hex::encode(bytes_sha256(all.as_bytes())))
}

/// The external-data files beside an ONNX graph (`G.data`, `G_data`, `G_data_N`), sorted.
pub fn external_data(graph: &Path) -> Vec<std::path::PathBuf> {
    let (Some(dir), Some(name)) = (graph.parent(), graph.file_name().and_then(|n| n.to_str()))
    else {
        return Vec::new();
    };
    let (a, b) = (format!("{name}.data"), format!("{name}_data"));
    let mut out: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|f| f == a || f.starts_with(&b)))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// sha256 of a byte slice.
pub fn bytes_sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The cache key of a vector computed from an image decoded at reduced scale: its content
/// hash, re-hashed with a tag. `--decode exact` looks up plain content keys only, so it never
/// gets such a vector; the default mode takes either (a full decode is never worse).
pub fn reduced_key(content: &[u8; 32]) -> [u8; 32] {
    let mut tagged = content.to_vec();
    tagged.extend_from_slice(b"decoded at reduced scale");
    bytes_sha256(&tagged)
}

/// One of N disjoint parts of a dataset, split by image content hash (stable across machines
/// and file names): `index --shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// True when the image with this content hash belongs to the shard.
    pub fn holds(self, content: &[u8; 32]) -> bool {
        let mut first = [0u8; 8];
        first.copy_from_slice(&content[..8]);
        u64::from_le_bytes(first) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s.split_once('/').and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count => Ok(Self { index, count }),
            _ => Err(format!("`{s}` is not a shard I/N with 0 ≤ I < N, e.g. 0/4")),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_split_every_hash_into_exactly_one_part() {
        let shards: Vec<super::Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for b in 0..=255u8 {
            let h = super::bytes_sha256(&[b]);
            assert_eq!(shards.iter().filter(|s| s.holds(&h)).count(), 1);
        }
        assert!("3/3".parse::<super::Shard>().is_err() && "x".parse::<super::Shard>().is_err());
    }

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        assert_eq!(
            hex::encode(super::bytes_sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
