//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/data` beside the checkout, or None (the caller skips with a message).
pub fn shared_data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if p.join("flickr8k-1k/captions.txt").exists() {
        Some(p)
    } else {
        eprintln!("SKIP: ../shared/data is absent; this test needs the real photos");
        None
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when `just setup` has installed ONNX Runtime and the models; otherwise says how.
pub fn models_ready() -> bool {
    let ok = root().join("models/models.lock.json").exists() && root().join(".ort/cpu").exists();
    if !ok {
        eprintln!(
            "SKIP: models or ONNX Runtime missing; run `just setup` (the `just test` recipe does)"
        );
    }
    ok
}

pub fn embtui() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("embtui").expect("binary built");
    c.env_remove("ORT_DYLIB_PATH").env_remove("EMBTUI_MODELS").env_remove("EMBTUI_STORE");
    c
}

pub fn python() -> Option<PathBuf> {
    let p = root().join(".venv/bin/python");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: project venv missing; run `just setup`");
        None
    }
}

/// Copies the files of folder `from` into a new folder `to` (test data, never into the repo).
pub fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
