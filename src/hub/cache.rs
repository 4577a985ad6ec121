//! The Hub cache on disk, read without the network: `refs/REV` → commit, the files of
//! `snapshots/COMMIT/`; and the one write `hf-hub` leaves to us, `refs/REV`.

use std::path::{Path, PathBuf};

use super::{HubError, Listing, RemoteFile, RepoRef, Result, Settings};

/// The listing of `r` from the cache alone (`HF_HUB_OFFLINE=1`): the commit its revision
/// points to, and the files of that snapshot.
pub(super) fn listing(s: &Settings, r: &RepoRef) -> Result<Listing> {
    let dir = s.cache.join(r.folder());
    let not_cached =
        |what: String| HubError::NotCached { repo: r.repo.clone(), what, cache: s.cache.clone() };
    let is_commit = r.revision.len() == 40 && r.revision.chars().all(|c| c.is_ascii_hexdigit());
    let commit = if is_commit {
        r.revision.clone()
    } else {
        std::fs::read_to_string(dir.join("refs").join(&r.revision))
            .map(|c| c.trim().to_owned())
            .map_err(|_| not_cached(format!("revision `{}`", r.revision)))?
    };
    let snapshot = dir.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(not_cached(format!("commit {commit}")));
    }
    let files = snapshot_files(&snapshot)
        .map_err(|source| HubError::Io { path: snapshot.clone(), source })?
        .into_iter()
        .map(|path| RemoteFile { path, size: None, sha256: None, blob_id: None })
        .collect();
    Ok(Listing { repo: r.clone(), commit, files, from_cache: true })
}

/// Every file below `snapshot` (symlinks followed), as repo paths with `/`, sorted.
pub(super) fn snapshot_files(snapshot: &Path) -> std::io::Result<Vec<String>> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, base, out)?;
            } else if p.is_file() {
                if let Ok(rel) = p.strip_prefix(base) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(snapshot, snapshot, &mut out)?;
    out.sort();
    Ok(out)
}

/// Records `refs/REVISION` → `commit` as Python's client does (not for a commit itself),
/// through a temporary file so a reader never sees half of it.
pub(super) fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> std::io::Result<()> {
    if revision == commit {
        return Ok(());
    }
    let path: PathBuf = repo_dir.join("refs").join(revision);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("embtui-tmp");
    std::fs::write(&tmp, commit)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cache: &Path) -> Settings {
        Settings {
            endpoint: "http://127.0.0.1:9".into(),
            cache: cache.to_owned(),
            token: None,
            offline: true,
            timeout: std::time::Duration::from_secs(1),
            progress: false,
        }
    }

    #[test]
    fn offline_listing_follows_the_ref_to_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--org--m");
        let commit = "a".repeat(40);
        std::fs::create_dir_all(repo.join("snapshots").join(&commit).join("onnx")).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/b1"), b"x").unwrap();
        std::os::unix::fs::symlink(
            "../../../blobs/b1",
            repo.join("snapshots").join(&commit).join("onnx/model.onnx"),
        )
        .unwrap();
        write_ref(&repo, "main", &commit).unwrap();
        let r = RepoRef::parse("org/m").unwrap();
        let l = listing(&settings(dir.path()), &r).unwrap();
        assert_eq!(l.commit, commit);
        assert_eq!(l.paths().collect::<Vec<_>>(), ["onnx/model.onnx"]);
        let other = RepoRef::parse("org/m@v2").unwrap();
        let err = listing(&settings(dir.path()), &other).unwrap_err().to_string();
        assert!(err.contains("revision `v2` of org/m is not in the Hub cache"), "{err}");
        assert!(err.contains("embtui models pull org/m"), "{err}");
    }
}
