//! Content hashes: model files (sha256) and images (sha256 of the bytes) for the cache keys.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Hex sha256 of a file, streamed.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    file_digest(path, Sha256::new())
}

/// Hex digest of a file's bytes, streamed into `h` (which may hold a prefix already).
pub fn file_digest<D: Digest>(path: &Path, mut h: D) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
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

/// `--shard`: a fixed `I/N`, or `auto` (`auto/N`) to take I (and N) from the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    Fixed(Shard),
    Auto { count: Option<u64> },
}

impl std::str::FromStr for ShardSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("auto") {
            Some("") => Ok(Self::Auto { count: None }),
            Some(rest) => match rest.strip_prefix('/').and_then(|n| n.parse::<u64>().ok()) {
                Some(n) if n > 0 => Ok(Self::Auto { count: Some(n) }),
                _ => Err(format!("`{s}` is not `auto` or `auto/N` with N ≥ 1")),
            },
            None => s.parse().map(Self::Fixed),
        }
    }
}

impl ShardSpec {
    /// The shard this task runs: fixed, or from the scheduler's environment (`var` reads a
    /// variable). Slurm job arrays: `SLURM_ARRAY_TASK_ID` within `SLURM_ARRAY_TASK_MIN` /
    /// `MAX` / `STEP` / `COUNT` (`sbatch --array=0-3`, also `--array=8-11` or `0-12:4`), or
    /// with `auto/N` the task id itself (ids 0…N-1; right for tasks resubmitted one by one);
    /// Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` with the count given as `auto/N`
    /// (the Job's `completions`). Refuses what would give overlapping or missing shards.
    pub fn resolve(self, var: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let Self::Auto { count } = self else {
            let Self::Fixed(s) = self else { unreachable!() };
            return Ok(s);
        };
        let num = |k: &str| -> Result<Option<u64>, String> {
            var(k)
                .map(|v| v.trim().parse::<u64>().map_err(|_| format!("{k}={v:?} is not a number")))
                .transpose()
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            // With N given, the task id is the shard (0…N-1), also for a task resubmitted
            // alone (`sbatch --array=3`, whose own array has one task).
            if let Some(n) = count {
                return check(id, n, "SLURM_ARRAY_TASK_ID");
            }
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let n = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
                (Some(c), _) => c,
                (None, Some(max)) if max >= min => (max - min) / step + 1,
                _ => return Err("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX; submit with `sbatch --array=0-N`".into()),
            };
            if id < min || (id - min) % step != 0 {
                return Err(format!(
                    "SLURM_ARRAY_TASK_ID={id} is not on the array's grid (min {min}, step {step})"
                ));
            }
            return check((id - min) / step, n, "SLURM_ARRAY_TASK_ID");
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let n = count.ok_or("JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the shard count is not; pass --shard auto/N with N = the Job's completions")?;
            return check(index, n, "JOB_COMPLETION_INDEX");
        }
        Err("--shard auto reads the shard from a scheduler, but neither SLURM_ARRAY_TASK_ID (sbatch --array) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set; run it as an array task, or pass --shard I/N".into())
    }
}

fn check(index: u64, count: u64, from: &str) -> Result<Shard, String> {
    if count == 0 || index >= count {
        return Err(format!(
            "{from} gives shard {index} of {count}: not one of 0…{}",
            count.saturating_sub(1)
        ));
    }
    Ok(Shard { index, count })
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
mod shard_env_tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn slurm_arrays_give_index_and_count() {
        let auto = ShardSpec::Auto { count: None };
        let s = auto
            .resolve(&env(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")]))
            .unwrap();
        assert_eq!((s.index, s.count), (2, 4));
        // --array=8-11: ids 8…11 are shards 0…3.
        let s = auto
            .resolve(&env(&[
                ("SLURM_ARRAY_TASK_ID", "9"),
                ("SLURM_ARRAY_TASK_MIN", "8"),
                ("SLURM_ARRAY_TASK_MAX", "11"),
            ]))
            .unwrap();
        assert_eq!((s.index, s.count), (1, 4));
        // --array=0-12:4: ids 0, 4, 8, 12 are shards 0…3.
        let s = auto
            .resolve(&env(&[
                ("SLURM_ARRAY_TASK_ID", "8"),
                ("SLURM_ARRAY_TASK_MAX", "12"),
                ("SLURM_ARRAY_TASK_STEP", "4"),
            ]))
            .unwrap();
        assert_eq!((s.index, s.count), (2, 4));
        let err = auto
            .resolve(&env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_MAX", "12"),
                ("SLURM_ARRAY_TASK_STEP", "4"),
            ]))
            .unwrap_err();
        assert!(err.contains("not on the array's grid"), "{err}");
    }

    #[test]
    fn kubernetes_needs_the_count_and_nothing_set_is_refused() {
        let s = ShardSpec::Auto { count: Some(8) }
            .resolve(&env(&[("JOB_COMPLETION_INDEX", "7")]))
            .unwrap();
        assert_eq!((s.index, s.count), (7, 8));
        let err = ShardSpec::Auto { count: None }
            .resolve(&env(&[("JOB_COMPLETION_INDEX", "7")]))
            .unwrap_err();
        assert!(err.contains("--shard auto/N"), "{err}");
        let err = ShardSpec::Auto { count: Some(4) }
            .resolve(&env(&[("JOB_COMPLETION_INDEX", "4")]))
            .unwrap_err();
        assert_eq!(err, "JOB_COMPLETION_INDEX gives shard 4 of 4: not one of 0…3");
        let err = ShardSpec::Auto { count: None }.resolve(&env(&[])).unwrap_err();
        assert!(
            err.contains("neither SLURM_ARRAY_TASK_ID") && err.contains("--shard I/N"),
            "{err}"
        );
        assert_eq!("auto/4".parse::<ShardSpec>(), Ok(ShardSpec::Auto { count: Some(4) }));
        assert_eq!("1/4".parse::<ShardSpec>(), Ok(ShardSpec::Fixed(Shard { index: 1, count: 4 })));
        assert!("auto/0".parse::<ShardSpec>().is_err());
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
