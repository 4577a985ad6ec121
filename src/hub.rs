//! The Hugging Face Hub: lists a model repo at a revision and pulls the files embtui needs into
//! the Hub cache that Python's `huggingface_hub` uses (`models--ORG--NAME/blobs`,
//! `snapshots/COMMIT/…`, `refs/REV`), so downloads are shared both ways. Requests go through the
//! `hf-hub` crate (blocking ureq client); this module adds what it leaves to its callers: the
//! ecosystem's environment variables, a stall watchdog, hash checks of every downloaded file
//! against the Hub's listing, offline resolution and errors that name the fix.
//!
//! Environment: `HF_ENDPOINT`, `HF_HUB_CACHE` / `HF_HOME` (default
//! `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`), `HF_TOKEN` (else `$HF_HOME/token`),
//! `HF_HUB_OFFLINE=1`, `HF_HUB_DOWNLOAD_TIMEOUT` (seconds without data before a download is
//! given up, default 10 as in Python; the partial file is kept and the next pull resumes it).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::Digest;

mod cache;

/// Why a Hub repo could not be listed or pulled.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "`{0}` is not a Hub model id; write ORG/NAME[@REVISION][:VARIANT], e.g. \
         Xenova/clip-vit-base-patch32 or Xenova/dinov2-base:fp16"
    )]
    BadId(String),
    #[error(
        "model repo {repo} (revision `{revision}`) was not found on {endpoint}; check the name on \
         the Hub (or HF_ENDPOINT), and set HF_TOKEN if the repo is private"
    )]
    RepoNotFound { repo: String, revision: String, endpoint: String },
    #[error(
        "{repo} is gated or private and {endpoint} refused access (HTTP {status}, {token}); \
         accept the model's terms on its Hub page, then set HF_TOKEN to a token of that account"
    )]
    Gated { repo: String, endpoint: String, status: u16, token: &'static str },
    #[error("{repo}: `{path}` is not in the repo at commit {commit}; {fix}")]
    FileNotFound { repo: String, path: String, commit: String, fix: String },
    #[error(
        "could not reach {endpoint}: {message}; check the network or HF_ENDPOINT, or set \
         HF_HUB_OFFLINE=1 to use what the Hub cache already holds"
    )]
    Unreachable { endpoint: String, message: String },
    #[error("{endpoint} answered HTTP {status} for {what}; try again later")]
    Http { endpoint: String, status: u16, what: String },
    #[error(
        "{what} stalled: no data from {endpoint} for {secs} s (HF_HUB_DOWNLOAD_TIMEOUT); run the \
         same command again to resume the download where it stopped"
    )]
    Stalled { endpoint: String, what: String, secs: u64 },
    #[error(
        "downloaded {path} of {repo} does not match the Hub's listing ({what}); it was removed \
         from the cache, run the same command again"
    )]
    Corrupt { repo: String, path: String, what: String },
    #[error(
        "HF_HUB_OFFLINE is set and {what} of {repo} is not in the Hub cache {cache}; pull it once \
         online (`embtui models pull {repo}`), or unset HF_HUB_OFFLINE"
    )]
    NotCached { repo: String, what: String, cache: PathBuf },
    #[error("the Hub's answer for {repo} could not be read: {message}")]
    BadAnswer { repo: String, message: String },
    #[error("Hub cache {path}")]
    Io { path: PathBuf, source: std::io::Error },
}

type Result<T, E = HubError> = std::result::Result<T, E>;

/// A model on the Hub as users write it: `ORG/NAME[@REVISION][:VARIANT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub repo: String,
    /// A branch, tag or commit; `main` when not given.
    pub revision: String,
    /// Which ONNX file of the repo: `fp32` (`model.onnx`) or the suffix of `model_SUFFIX.onnx`
    /// (`fp16`, `quantized`, `int8`, `q4`, …).
    pub variant: String,
}

impl RepoRef {
    /// Parses `ORG/NAME[@REVISION][:VARIANT]`; `None` for anything that is not shaped like a Hub
    /// id (zoo names have no `/`).
    pub fn parse(s: &str) -> Option<Self> {
        let (rest, variant) = match s.rsplit_once(':') {
            Some((r, v)) => (r, v.to_owned()),
            None => (s, "fp32".to_owned()),
        };
        let (repo, revision) = match rest.split_once('@') {
            Some((r, v)) => (r, v.to_owned()),
            None => (rest, "main".to_owned()),
        };
        let (org, name) = repo.split_once('/')?;
        let part = |p: &str| {
            !p.is_empty()
                && p.len() <= 96
                && !p.starts_with(['-', '.'])
                && !p.contains("--")
                && !p.contains("..")
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        let rev_ok = !revision.is_empty()
            && revision.len() <= 200
            && !revision.contains("..")
            && revision.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
        let variant_ok = !variant.is_empty()
            && variant.len() <= 24
            && variant.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        (part(org) && part(name) && rev_ok && variant_ok).then(|| Self {
            repo: repo.to_owned(),
            revision,
            variant,
        })
    }

    /// The model's name in embtui: `ORG/NAME`, or `ORG/NAME:VARIANT` for other variants.
    pub fn model_name(&self) -> String {
        if self.variant == "fp32" {
            self.repo.clone()
        } else {
            format!("{}:{}", self.repo, self.variant)
        }
    }

    /// The cache folder name, as Python's client writes it.
    pub fn folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

/// Where and how to reach the Hub, from the environment (`Settings::from_env`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: String,
    pub cache: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
    pub timeout: Duration,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

impl Settings {
    /// Reads the variables Python's `huggingface_hub` reads, with its defaults.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let home = var("HF_HOME").map_or_else(
            || {
                let base = var("XDG_CACHE_HOME").map_or_else(
                    || PathBuf::from(var("HOME").unwrap_or_else(|| ".".into())).join(".cache"),
                    PathBuf::from,
                );
                base.join("huggingface")
            },
            PathBuf::from,
        );
        let cache = var("HF_HUB_CACHE").map_or_else(|| home.join("hub"), PathBuf::from);
        let token = var("HF_TOKEN").or_else(|| {
            let path = var("HF_TOKEN_PATH").map_or_else(|| home.join("token"), PathBuf::from);
            std::fs::read_to_string(path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        let truthy = |k: &str| {
            var(k).is_some_and(|v| ["1", "on", "yes", "true"].contains(&v.to_lowercase().as_str()))
        };
        let timeout = var("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(10.0);
        Self {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_owned(),
            cache,
            token,
            offline: truthy("HF_HUB_OFFLINE"),
            timeout: Duration::from_secs_f64(timeout),
            progress: true,
        }
    }

    fn api(&self) -> Result<hf_hub::api::sync::Api> {
        hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(self.cache.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(false)
            .with_user_agent("embtui", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| HubError::Unreachable {
                endpoint: self.endpoint.clone(),
                message: e.to_string(),
            })
    }
}

/// One file of a repo at a commit, as the Hub lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: String,
    pub size: Option<u64>,
    /// sha256 of the content, for files stored with Git LFS.
    pub sha256: Option<String>,
    /// The git blob id (sha1 of `blob LEN\0` + content), for the others.
    pub blob_id: Option<String>,
}

/// A repo at one commit: its files.
#[derive(Debug, Clone)]
pub struct Listing {
    pub repo: RepoRef,
    pub commit: String,
    pub files: Vec<RemoteFile>,
    /// True when this came from the cache (offline).
    pub from_cache: bool,
}

impl Listing {
    pub fn has(&self, path: &str) -> bool {
        self.files.iter().any(|f| f.path == path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }
}

#[derive(Deserialize)]
struct InfoAnswer {
    sha: String,
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: String,
}

/// Lists `r` at its revision: from the Hub (`/api/models/REPO/revision/REV?blobs=true`), or from
/// the cache when offline.
pub fn list(s: &Settings, r: &RepoRef) -> Result<Listing> {
    if s.offline {
        return cache::listing(s, r);
    }
    let api = s.api()?;
    let repo =
        hf_hub::Repo::with_revision(r.repo.clone(), hf_hub::RepoType::Model, r.revision.clone());
    let request = api.repo(repo).info_request().query("blobs", "true");
    let activity = Activity::new();
    let answer = watchdog(s, &activity, format!("listing {}", r.repo), move || {
        request.call().and_then(|mut resp| resp.body_mut().read_json::<InfoAnswer>())
    })?
    .map_err(|e| request_error(s, r, &e, None))?;
    if answer.sha.len() != 40 || !answer.sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HubError::BadAnswer {
            repo: r.repo.clone(),
            message: format!(
                "commit `{}` is not 40 hex digits",
                crate::text::sanitize(&answer.sha)
            ),
        });
    }
    let files = answer
        .siblings
        .into_iter()
        .map(|f| RemoteFile {
            path: f.rfilename,
            size: f.size,
            sha256: f.lfs.map(|l| l.sha256),
            blob_id: f.blob_id,
        })
        .collect();
    Ok(Listing { repo: r.clone(), commit: answer.sha, files, from_cache: false })
}

/// Makes sure every file of `paths` is in the cache's snapshot of the listing's commit
/// (downloading what is missing, resuming partial downloads) and returns the snapshot folder.
/// Every file downloaded now is checked against the listing's sha256 or git blob id.
pub fn fetch(s: &Settings, l: &Listing, paths: &[String]) -> Result<PathBuf> {
    let snapshot = s.cache.join(l.repo.folder()).join("snapshots").join(&l.commit);
    let mut api = None; // made on the first file that is not cached
    for path in paths {
        let Some(remote) = l.files.iter().find(|f| &f.path == path) else {
            return Err(HubError::FileNotFound {
                repo: l.repo.repo.clone(),
                path: path.clone(),
                commit: l.commit.clone(),
                fix: "this is a bug in choosing the repo's files, please report it".into(),
            });
        };
        if snapshot.join(path).is_file() {
            continue; // pulled before, by embtui or by Python's huggingface_hub
        }
        if l.from_cache {
            return Err(HubError::NotCached {
                repo: l.repo.repo.clone(),
                what: format!("`{path}`"),
                cache: s.cache.clone(),
            });
        }
        let api = match &mut api {
            Some(a) => a,
            None => api.insert(s.api()?),
        };
        download(s, api, l, remote)?;
    }
    cache::write_ref(&s.cache.join(l.repo.folder()), &l.repo.revision, &l.commit)
        .map_err(|source| HubError::Io { path: s.cache.clone(), source })?;
    Ok(snapshot)
}

/// Downloads one file through `hf-hub` (into `blobs/ETAG.part`, renamed when whole; a partial
/// file from an interrupted run is resumed with a Range request), then checks its hash.
fn download(s: &Settings, api: &hf_hub::api::sync::Api, l: &Listing, f: &RemoteFile) -> Result<()> {
    let repo_dir = s.cache.join(l.repo.folder());
    // hf-hub records the revision it was given (here the commit) as a ref; Python does not.
    let commit_ref = repo_dir.join("refs").join(&l.commit);
    let had_commit_ref = commit_ref.exists();
    let repo =
        hf_hub::Repo::with_revision(l.repo.repo.clone(), hf_hub::RepoType::Model, l.commit.clone());
    let handle = api.repo(repo);
    let activity = Activity::new();
    let bar = Bar::new(s.progress, &f.path, f.size, activity.clone());
    let path = f.path.clone();
    let what = format!("downloading {}", f.path);
    let pointer = watchdog(s, &activity, what, move || handle.download_with_progress(&path, bar))?
        .map_err(|e| match e {
            hf_hub::api::sync::ApiError::RequestError(e) => {
                request_error(s, &l.repo, &e, Some(&f.path))
            }
            other => {
                HubError::Unreachable { endpoint: s.endpoint.clone(), message: other.to_string() }
            }
        })?;
    if !had_commit_ref {
        let _ = std::fs::remove_file(&commit_ref);
    }
    if let Err(what) = verify(&pointer, f) {
        let blob = std::fs::canonicalize(&pointer).ok();
        let _ = std::fs::remove_file(&pointer);
        if let Some(b) = blob {
            let _ = std::fs::remove_file(b);
        }
        return Err(HubError::Corrupt { repo: l.repo.repo.clone(), path: f.path.clone(), what });
    }
    crate::say!("pulled {} ({})", f.path, human_bytes(f.size.unwrap_or(0)));
    Ok(())
}

/// Checks a downloaded file against the listing: size, then sha256 (LFS) or the git blob id.
fn verify(path: &Path, f: &RemoteFile) -> std::result::Result<(), String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if let Some(size) = f.size {
        if size != len {
            return Err(format!("{len} bytes, the listing says {size}"));
        }
    }
    if let Some(want) = &f.sha256 {
        let got = crate::hash::file_sha256(path).map_err(|e| e.to_string())?;
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!("sha256 {got}, the listing says {want}"));
        }
    } else if let Some(want) = &f.blob_id {
        let got = git_blob_id(path).map_err(|e| e.to_string())?;
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!("git blob id {got}, the listing says {want}"));
        }
    }
    Ok(())
}

/// Git's object id of a file: sha1 of `blob LEN\0` followed by the content.
pub fn git_blob_id(path: &Path) -> std::io::Result<String> {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", std::fs::metadata(path)?.len()).as_bytes());
    crate::hash::file_digest(path, h)
}

/// Turns a failed request (for the repo's listing, or for `file`) into the error that names
/// the fix.
fn request_error(s: &Settings, r: &RepoRef, e: &ureq::Error, file: Option<&str>) -> HubError {
    let what = file.map_or_else(|| format!("the file list of {}", r.repo), |f| format!("`{f}`"));
    match e {
        ureq::Error::StatusCode(404) if file.is_some() => HubError::FileNotFound {
            repo: r.repo.clone(),
            path: what.trim_matches('`').to_owned(),
            commit: r.revision.clone(),
            fix: "the Hub listed it but does not serve it; try again later".into(),
        },
        ureq::Error::StatusCode(404) => HubError::RepoNotFound {
            repo: r.repo.clone(),
            revision: r.revision.clone(),
            endpoint: s.endpoint.clone(),
        },
        ureq::Error::StatusCode(status @ (401 | 403)) => HubError::Gated {
            repo: r.repo.clone(),
            endpoint: s.endpoint.clone(),
            status: *status,
            token: if s.token.is_some() { "the token was refused" } else { "no HF_TOKEN was set" },
        },
        ureq::Error::StatusCode(status) => {
            HubError::Http { endpoint: s.endpoint.clone(), status: *status, what }
        }
        other => HubError::Unreachable { endpoint: s.endpoint.clone(), message: other.to_string() },
    }
}

/// When data last arrived, in milliseconds since the watch started.
#[derive(Clone)]
struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self { start: Instant::now(), last_ms: Arc::new(AtomicU64::new(0)) }
    }

    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Runs a blocking request on its own thread and gives up when no data arrived for the
/// timeout: `hf-hub`'s client has no read timeout, and a server that stops sending mid-file
/// would otherwise hang the run. The abandoned thread ends with the process.
fn watchdog<T: Send + 'static>(
    s: &Settings,
    activity: &Activity,
    what: String,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(job());
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(v) => return Ok(v),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(HubError::Unreachable {
                    endpoint: s.endpoint.clone(),
                    message: format!("{what}: the request thread stopped"),
                })
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if activity.idle() > s.timeout => {
                return Err(HubError::Stalled {
                    endpoint: s.endpoint.clone(),
                    what,
                    secs: s.timeout.as_secs().max(1),
                })
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// `hf-hub`'s progress callbacks: feed the watchdog and draw a bar.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    activity: Activity,
}

impl Bar {
    fn new(draw: bool, path: &str, size: Option<u64>, activity: Activity) -> Self {
        let bar = draw.then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                size,
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(crate::text::sanitize(path));
            b
        });
        Self { bar, activity }
    }
}

impl hf_hub::api::Progress for Bar {
    fn init(&mut self, size: usize, _filename: &str) {
        self.activity.touch();
        if let Some(b) = &self.bar {
            b.set_length(size as u64);
            b.set_position(0);
        }
    }

    fn update(&mut self, size: usize) {
        self.activity.touch();
        if let Some(b) = &self.bar {
            b.inc(size as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `12.3 MB`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        _ if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        _ if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        _ if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        _ => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_parse_with_revision_and_variant() {
        let r = RepoRef::parse("Xenova/clip-vit-base-patch32").unwrap();
        assert_eq!(
            (r.repo.as_str(), r.revision.as_str(), r.variant.as_str()),
            ("Xenova/clip-vit-base-patch32", "main", "fp32")
        );
        assert_eq!(r.model_name(), "Xenova/clip-vit-base-patch32");
        assert_eq!(r.folder(), "models--Xenova--clip-vit-base-patch32");
        let r = RepoRef::parse("onnx-community/dinov2-base@v1.0:fp16").unwrap();
        assert_eq!((r.revision.as_str(), r.variant.as_str()), ("v1.0", "fp16"));
        assert_eq!(r.model_name(), "onnx-community/dinov2-base:fp16");
    }

    #[test]
    fn zoo_names_and_hostile_ids_are_not_hub_ids() {
        for bad in [
            "efficientnet-lite0",
            "a/b/c",
            "../x",
            "org/..",
            "org/na--me",
            "org/-x",
            "org/x@",
            "org/x:",
            "org/x:FP16",
            "org/x@a..b",
            "org/x\u{1b}[31m",
            "/x",
            "x/",
        ] {
            assert!(RepoRef::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn git_blob_id_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin` = ce013625030ba8dba906f756967f9e9ca394464a
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        assert_eq!(git_blob_id(&p).unwrap(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn verify_names_size_and_hash_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        let mut f = RemoteFile { path: "f".into(), size: Some(6), sha256: None, blob_id: None };
        assert!(verify(&p, &f).is_ok());
        f.size = Some(7);
        assert_eq!(verify(&p, &f).unwrap_err(), "6 bytes, the listing says 7");
        f.size = Some(6);
        // sha256("hello\n")
        f.sha256 = Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into());
        assert!(verify(&p, &f).is_ok());
        f.sha256 = Some("00".into());
        assert!(verify(&p, &f).unwrap_err().starts_with("sha256 5891b5"));
    }
}
