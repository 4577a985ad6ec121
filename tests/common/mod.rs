//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

/// True under CI (`CI` set and not "false"/"0"): there, missing data or models fail the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Outside CI prints `SKIP: …` and yields None; in CI a missing prerequisite is a failure.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "{what} (CI=true makes this a failure, not a skip)");
    eprintln!("SKIP: {what}");
    None
}

/// Unwraps a prerequisite or returns from the test (outside CI only; see [`missing`]).
#[macro_export]
macro_rules! require {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return,
        }
    };
}

/// `../shared/data` beside the checkout.
pub fn shared_data() -> Option<PathBuf> {
    let p = root().join("../shared/data");
    if p.join("flickr8k-1k/captions.txt").exists() {
        Some(p)
    } else {
        missing("../shared/data is absent; this test needs the real photos")
    }
}

/// The Flickr8k photos of `../shared/data/flickr8k-1k`, sorted by name.
pub fn flickr_photos(data: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(data.join("flickr8k-1k/Images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Some(()) when `just setup` has installed ONNX Runtime and the models.
pub fn models_ready() -> Option<()> {
    if root().join("models/models.lock.json").exists() && root().join(".ort/cpu").exists() {
        Some(())
    } else {
        missing("models or ONNX Runtime missing; run `just setup` (the `just test` recipe does)")
    }
}

/// The project venv's Python (numpy, Pillow, onnxruntime).
pub fn python() -> Option<PathBuf> {
    let p = root().join(".venv/bin/python");
    if p.exists() {
        Some(p)
    } else {
        missing("project venv missing; run `just setup`")
    }
}

/// tmux, for the end-to-end TUI tests.
pub fn tmux() -> Option<()> {
    if std::process::Command::new("tmux").arg("-V").output().is_ok() {
        Some(())
    } else {
        missing("tmux is not installed (apt-get install tmux)")
    }
}

/// The embtui binary, with the environment variables that would redirect it removed.
pub fn embtui() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("embtui").expect("binary built");
    c.env_remove("ORT_DYLIB_PATH").env_remove("EMBTUI_MODELS").env_remove("EMBTUI_STORE");
    c.env("COLUMNS", "120");
    c
}

/// The embtui binary as a plain `std::process::Command` (for children we kill).
pub fn embtui_process() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("embtui"));
    c.env_remove("ORT_DYLIB_PATH").env_remove("EMBTUI_MODELS").env_remove("EMBTUI_STORE");
    c
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts success and parses stdout as one JSON document.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), stderr(out));
    serde_json::from_slice(&out.stdout).expect("stdout holds one JSON document")
}

/// Asserts that a run failed with `code` and that stderr says `text`.
pub fn fails_with(out: &Output, code: i32, text: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(text), "expected {text:?} in stderr: {err}");
    err
}

/// `embtui search --json` of `query` (an image file) with one model on a store.
pub fn search_json(
    ds: &Path,
    store: &Path,
    query: &Path,
    model: &str,
    k: usize,
    extra: &[&str],
) -> serde_json::Value {
    let out = embtui()
        .args(["search", "--device", "cpu", "--json", "--model", model, "-k", &k.to_string()])
        .args(extra)
        .arg("--store")
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .arg(query)
        .output()
        .unwrap();
    json(&out)
}

/// Reads a child's stderr line by line until `done(line)` holds; returns that line.
/// Panics if the child ends first (with everything it said).
pub fn wait_for_line(child: &mut Child, done: impl Fn(&str) -> bool) -> String {
    let err = child.stderr.as_mut().expect("stderr piped");
    let mut seen = String::new();
    for line in BufReader::new(err).lines() {
        let line = line.unwrap_or_default();
        if done(&line) {
            return line;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    panic!("the child ended before printing the line waited for; it said:\n{seen}");
}

/// Copies the files of folder `from` into a new folder `to` (test data, never into the repo).
pub fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A Kaggle-layout Flickr8k in `dir/data`: the first `n` photos of `../shared/data/flickr8k-1k`
/// (symlinked) and their captions.
pub fn flickr8k_subset(data: &Path, dir: &Path, n: usize) -> PathBuf {
    let ds = dir.join("data");
    std::fs::create_dir_all(ds.join("Images")).unwrap();
    let photos: Vec<PathBuf> = flickr_photos(data).into_iter().take(n).collect();
    let names: std::collections::BTreeSet<String> =
        photos.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for p in &photos {
        std::os::unix::fs::symlink(p, ds.join("Images").join(p.file_name().unwrap())).unwrap();
    }
    let caps = std::fs::read_to_string(data.join("flickr8k-1k/captions.txt")).unwrap();
    let mut lines = caps.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for l in lines.filter(|l| names.contains(l.split(',').next().unwrap())) {
        out += l;
        out.push('\n');
    }
    std::fs::write(ds.join("captions.txt"), out).unwrap();
    ds
}
