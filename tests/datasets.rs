//! Caption files with everything wrong that real ones have: read leniently, reported precisely.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use common::*;

#[test]
fn bad_caption_lines_are_reported_with_file_and_line_and_nothing_outside_is_read() {
    require!(models_ready());
    let fx = root().join("fixtures/flickr30k-bad");
    let tmp = tempfile::tempdir().unwrap();
    let out = embtui()
        .args(["index", "--device", "cpu", "--model", "efficientnet-lite0", "--store"])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(&fx)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("{err}");
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("results_20130124.token:3: invalid UTF-8 at byte 12 of the line, replaced"),
        "{err}"
    );
    assert!(err.contains("results_20130124.token:5: duplicate caption for a.png dropped"), "{err}");
    assert!(err.contains("results_20130124.token:7: image name \"../secret.png\" refused: contains a path separator"), "{err}");
    assert!(
        err.contains(
            "results_20130124.token:8: a space instead of the tab after the image name; accepted"
        ),
        "{err}"
    );
    assert!(err.contains("captions name missing.png but the image is not in"), "{err}");
    assert!(err.contains("1 images in") && err.contains("have no caption"), "{err}");
    assert!(err.contains("index of 2 items"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape sequences from captions never reach the terminal");
}

fn inspect(dir: &str, extra: &[&str]) -> serde_json::Value {
    let out = embtui()
        .args(["dataset", "--json", "--dataset"])
        .arg(root().join("fixtures").join(dir))
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{dir}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn issues(v: &serde_json::Value) -> Vec<String> {
    v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}: {}",
                i["file"].as_str().unwrap(),
                i["line"],
                i["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_caption_format_is_detected_and_read() {
    let cases = [
        ("flickr30k-token", "flickr30k-token", 15),
        ("flickr30k-kaggle", "flickr30k-csv", 15),
        ("flickr30k-karpathy", "karpathy", 15),
        ("flickr30k-hf", "flickr30k-hf", 15),
        ("flickr8k-kaggle", "flickr8k", 15),
        ("flickr8k-token", "flickr30k-token", 15),
        ("coco", "coco", 16),
    ];
    for (dir, format, captions) in cases {
        let v = inspect(dir, &[]);
        assert_eq!(v["format"], format, "{dir}");
        assert_eq!(v["images"], 3, "{dir}");
        assert_eq!(v["captions"], captions, "{dir}: {v}");
    }
}

#[test]
fn known_defects_of_each_format_are_repaired_or_reported() {
    // Kaggle's broken row (a missing pipe) is repaired and said so, with its line.
    let k = issues(&inspect("flickr30k-kaggle", &[]));
    assert_eq!(k, ["results.csv:11: missing pipe after the comment number; repaired"]);
    // Hugging Face: a `raw` field that is not JSON is reported; its image is missing anyway.
    let h = issues(&inspect("flickr30k-hf", &[]));
    assert!(
        h[0].starts_with("flickr_annotations_30k.csv:5: `raw` is not a JSON list of strings"),
        "{h:?}"
    );
    // COCO: a caption for an unknown image id.
    let c = issues(&inspect("coco", &[]));
    assert_eq!(c, ["captions_val2017.json:null: caption for unknown image_id 7"]);
    // Flickr8k with a BOM and a quoted comma reads cleanly.
    assert!(issues(&inspect("flickr8k-kaggle", &[])).is_empty());
}

#[test]
fn splits_come_from_karpathy_json_and_flickr8k_lists() {
    assert_eq!(inspect("flickr30k-karpathy", &["--split", "test"])["images"], 1);
    assert_eq!(inspect("flickr8k-token", &["--split", "test"])["images"], 2);
    let out = embtui()
        .args(["dataset", "--split", "test", "--dataset"])
        .arg(root().join("fixtures/flickr30k-token"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--split test matched no image; the file has splits none"));
}

#[test]
fn the_same_captions_give_the_same_relevance_in_every_format() {
    let rel = |dir: &str| {
        let out = embtui()
            .args(["relevance", "--json", "--relevance", "tfidf", "--pair", "1001.jpg,1002.jpg"])
            .arg("--dataset")
            .arg(root().join("fixtures").join(dir))
            .output()
            .unwrap();
        json(&out)["methods"][0]["rel"].as_f64().unwrap()
    };
    let base = rel("flickr30k-token");
    for dir in [
        "flickr30k-kaggle",
        "flickr30k-karpathy",
        "flickr30k-hf",
        "flickr8k-kaggle",
        "flickr8k-token",
    ] {
        assert_eq!(rel(dir), base, "{dir}");
    }
}

#[test]
fn caption_line_order_does_not_change_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/flickr30k-token");
    let dst = tmp.path().join("shuffled");
    copy_files(&src.join("flickr30k_images"), &dst.join("flickr30k_images"));
    let text = std::fs::read_to_string(src.join("results_20130124.token")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    std::fs::write(dst.join("results_20130124.token"), lines.join("\n")).unwrap();
    let run = |d: &std::path::Path| {
        let out = embtui()
            .args([
                "relevance",
                "--json",
                "--relevance",
                "tfidf",
                "--subjects",
                "ball,dog,bicycle",
                "--dataset",
            ])
            .arg(d)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(run(&src), run(&dst));
}
