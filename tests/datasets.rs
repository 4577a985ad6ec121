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

/// COCO as distributed: `captions_train2017.json` and `captions_val2017.json` with their
/// `train2017/` and `val2017/` folders are one dataset of both splits (the 159 real COCO
/// photos, 100 moved to a train split here); `--split` keeps one; every image is embedded
/// from its own folder.
#[test]
fn coco_with_train_and_val_files_reads_both_splits_from_their_folders() {
    let data = require!(shared_data());
    require!(models_ready());
    let src = data.join("coco-val2017-159");
    let coco: serde_json::Value = serde_json::from_slice(
        &std::fs::read(src.join("annotations/captions_val2017.json")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("coco");
    std::fs::create_dir_all(ds.join("annotations")).unwrap();
    let images = coco["images"].as_array().unwrap();
    for (split, part) in [("train2017", &images[..100]), ("val2017", &images[100..])] {
        std::fs::create_dir_all(ds.join(split)).unwrap();
        let ids: std::collections::BTreeSet<u64> =
            part.iter().map(|i| i["id"].as_u64().unwrap()).collect();
        for i in part {
            let name = i["file_name"].as_str().unwrap();
            std::os::unix::fs::symlink(src.join("val2017").join(name), ds.join(split).join(name))
                .unwrap();
        }
        let anns: Vec<&serde_json::Value> = coco["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| ids.contains(&a["image_id"].as_u64().unwrap()))
            .collect();
        let doc =
            serde_json::json!({"info": {}, "licenses": [], "images": part, "annotations": anns});
        std::fs::write(ds.join(format!("annotations/captions_{split}.json")), doc.to_string())
            .unwrap();
    }
    let look = |extra: &[&str]| {
        json(
            &embtui()
                .args(["dataset", "--json", "--dataset"])
                .arg(&ds)
                .args(extra)
                .output()
                .unwrap(),
        )
    };
    let both = look(&[]);
    assert_eq!(both["format"], "coco", "{both}");
    assert_eq!(both["images"], 159, "{both}");
    assert_eq!(both["captions"], 795, "{both}");
    assert_eq!(look(&["--split", "val2017"])["images"], 59);
    assert_eq!(look(&["--split", "train2017"])["images"], 100);
    // Embedding opens each photo in its own split's folder: nothing skipped.
    let out = embtui()
        .args(["index", "--device", "cpu", "--model", "efficientnet-lite0", "--store"])
        .arg(tmp.path().join("store"))
        .arg("--dataset")
        .arg(&ds)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("159 embedded") && err.contains("0 skipped"), "{err}");
}
