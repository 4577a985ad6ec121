//! Caption files with everything wrong that real ones have: read leniently, reported precisely.

mod common;

use common::*;

#[test]
fn bad_caption_lines_are_reported_with_file_and_line_and_nothing_outside_is_read() {
    if !models_ready() {
        return;
    }
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
    assert!(err.contains("results_20130124.token:3: invalid UTF-8 replaced"), "{err}");
    assert!(err.contains("results_20130124.token:5: duplicate caption for a.png dropped"), "{err}");
    assert!(err.contains("results_20130124.token:7: image name \"../secret.png\" refused: contains a path separator"), "{err}");
    assert!(
        err.contains(
            "results_20130124.token:8: expected `<image>#<n><TAB><caption>`; no tab found"
        ),
        "{err}"
    );
    assert!(err.contains("captions name missing.png but the image is not in"), "{err}");
    assert!(err.contains("1 images in") && err.contains("have no caption"), "{err}");
    assert!(err.contains("index of 2 items"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape sequences from captions never reach the terminal");
}
