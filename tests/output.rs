//! What each command prints for a person, at 80 and 120 columns: snapshots (insta) of the
//! human-readable output on the fixtures, every line within the width, and every `--json` one
//! valid JSON document. Volatile parts (paths, speeds, hashes) are redacted.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::path::Path;

use common::*;

/// Runs embtui at `width` columns and returns stdout (stderr attached on failure).
fn run(width: usize, args: &[&str], store: &Path) -> String {
    let out = embtui()
        .env("COLUMNS", width.to_string())
        .current_dir(root())
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    assert!(out.status.success() || out.status.code() == Some(1), "{args:?}: {}", stderr(&out));
    let text = stdout(&out);
    for l in text.lines() {
        assert!(l.chars().count() <= width, "{args:?} at {width} columns wraps:\n{l}");
    }
    text
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"/[^ \n]*/models", "[MODELS]"),
        (r"/tmp/[^ \n]*", "[TMP]"),
        (r"sha256 [0-9a-f]{16}", "sha256 [HASH]"),
        (r"ONNX Runtime [0-9.]+ from [^ \n]*", "ONNX Runtime [VERSION] from [LIB]"),
        (r"(cpu|cuda:\d)\s+\d+\.\d(\s)", "$1 [SPEED]$2"),
        (r"\d+\.\d MB", "[SIZE]"),
    ]
}

fn snapshot(name: &str, args: &[&str], needs_models: bool) {
    if needs_models {
        require!(models_ready());
    }
    let store = tempfile::tempdir().unwrap();
    for width in [80, 120] {
        let text = run(width, args, store.path());
        insta::with_settings!({ filters => filters() }, {
            insta::assert_snapshot!(format!("{name}_{width}"), text);
        });
    }
}

#[test]
fn models_table() {
    snapshot("models", &["models"], true);
}

#[test]
fn dataset_summary() {
    snapshot("dataset", &["dataset", "--dataset", "fixtures/flickr30k-bad"], false);
}

#[test]
fn relevance_subjects_and_pair() {
    snapshot(
        "relevance",
        &["relevance", "--dataset", "fixtures/flickr30k-token", "--subjects", "dog,ball,bicycle"],
        false,
    );
    snapshot(
        "relevance_pair",
        &["relevance", "--dataset", "fixtures/flickr30k-token", "--pair", "1001.jpg,1002.jpg"],
        false,
    );
}

#[test]
fn eval_table() {
    // The generated demo dataset (drawn shapes, captions from what was drawn): real metrics.
    require!(models_ready());
    let py = require!(python());
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("demo");
    let st = std::process::Command::new(py)
        .arg(root().join("fixtures/make_demo.py"))
        .arg(&ds)
        .args(["--n", "24"])
        .status()
        .unwrap();
    assert!(st.success());
    let ds = ds.to_str().unwrap().to_owned();
    let args = ["eval", "--device", "cpu", "--bootstrap", "100", "--dataset", &ds];
    snapshot("eval", &[&args[..], &["--model", "efficientnet-lite0,open-nsfw"]].concat(), true);
}

#[test]
fn search_hits() {
    snapshot(
        "search",
        &[
            "search",
            "--device",
            "cpu",
            "--dataset",
            "fixtures/flickr30k-token",
            "--model",
            "efficientnet-lite0",
            "-k",
            "2",
            "fixtures/coco/val2017/1002.jpg",
        ],
        true,
    );
}

#[test]
fn doctor_lines() {
    snapshot("doctor", &["doctor", "--device", "cpu"], true);
}

#[test]
fn every_json_output_is_one_document() {
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let s = store.path().to_str().unwrap();
    for args in [
        vec!["models", "--json"],
        vec!["dataset", "--json", "--dataset", "fixtures/flickr30k-token"],
        vec!["relevance", "--json", "--dataset", "fixtures/flickr30k-token"],
        vec![
            "relevance",
            "--json",
            "--dataset",
            "fixtures/flickr30k-token",
            "--pair",
            "1001.jpg,1002.jpg",
        ],
        vec![
            "eval",
            "--json",
            "--device",
            "cpu",
            "--bootstrap",
            "100",
            "--dataset",
            "fixtures/flickr30k-token",
            "--model",
            "efficientnet-lite0",
        ],
        vec![
            "search",
            "--json",
            "--device",
            "cpu",
            "--dataset",
            "fixtures/flickr30k-token",
            "--model",
            "efficientnet-lite0",
            "fixtures/coco/val2017/1002.jpg",
        ],
        vec!["store", "--json"],
        vec!["bench", "--json", "search", "--n", "300", "--dim", "8", "--queries", "10"],
    ] {
        let out = embtui().current_dir(root()).args(&args).args(["--store", s]).output().unwrap();
        let v = json(&out);
        assert!(v.is_object() || v.is_array(), "{args:?}");
    }
}
