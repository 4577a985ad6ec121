//! Caption relevance against people: the MiniLM encoder built offline reproduces its model
//! card, `validate` reproduces the CxC agreement figures, `relevance --pairs` scores files.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::path::Path;

use common::*;

/// A token-format dataset (no pixels) whose images have the given captions.
fn caption_dataset(dir: &Path, images: &[(&str, &[&str])]) {
    let mut text = String::new();
    for (name, caps) in images {
        for (i, c) in caps.iter().enumerate() {
            text.push_str(&format!("{name}#{i}\t{c}\n"));
        }
    }
    std::fs::write(dir.join("results_20130124.token"), text).unwrap();
}

fn minilm_ready() -> Option<()> {
    models_ready()?;
    if root().join("models/all-minilm-l6-v2.onnx").exists() {
        Some(())
    } else {
        missing("models/all-minilm-l6-v2.onnx missing; run `just setup`")
    }
}

#[test]
fn minilm_built_offline_reproduces_the_model_card_similarities() {
    require!(minilm_ready());
    let tmp = tempfile::tempdir().unwrap();
    // One caption per image: semantic relevance is then the cosine of the two sentences.
    // sentence-transformers' model card for all-MiniLM-L6-v2 prints 0.6660, 0.1046, 0.1411.
    caption_dataset(
        tmp.path(),
        &[
            ("a.jpg", &["The weather is lovely today."]),
            ("b.jpg", &["It's so sunny outside!"]),
            ("c.jpg", &["He drove to the stadium."]),
        ],
    );
    let pairs = tmp.path().join("pairs.csv");
    std::fs::write(
        &pairs,
        "image1,image2,note\na.jpg,b.jpg,x\na.jpg,c.jpg,y\nb.jpg,c.jpg,z\nb.jpg,gone.jpg,w\n",
    )
    .unwrap();
    let out = tmp.path().join("scored.csv");
    let run = embtui()
        .args(["--store"])
        .arg(tmp.path().join("store"))
        .args(["relevance", "--relevance", "semantic", "--dataset"])
        .arg(tmp.path())
        .arg("--pairs")
        .arg(&pairs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("3 pairs scored"), "{}", stderr(&run));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "image1,image2,note,rel_semantic");
    let rel = |i: usize| lines[i].rsplit(',').next().unwrap().parse::<f64>().unwrap();
    for (i, want) in [(1, 0.6660), (2, 0.1046), (3, 0.1411)] {
        assert!((rel(i) - want).abs() < 5e-4, "pair {i}: {} vs the model card's {want}", rel(i));
    }
    assert_eq!(lines[4], "b.jpg,gone.jpg,w,", "unknown images keep their row, score empty");
}

#[test]
fn validate_reproduces_the_cxc_agreement_and_hybrid_agrees_best() {
    let data = require!(shared_data());
    require!(minilm_ready());
    let cxc = data.join("human-judgments/cxc-sis-test");
    let tmp = tempfile::tempdir().unwrap();
    let run = embtui()
        .args(["--store"])
        .arg(tmp.path())
        .args(["validate", "--json", "--bootstrap", "200", "--dataset"])
        .arg(&cxc)
        .arg("--human")
        .arg(cxc.join("sis_test.csv"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let v = json(&run);
    assert_eq!(v["pairs"], 46_719);
    assert_eq!(v["first_images"], 4_989);
    let method = |name: &str| {
        v["methods"].as_array().unwrap().iter().find(|m| m["method"] == name).unwrap().clone()
    };
    let rho = |m: &serde_json::Value| m["spearman"]["mean"].as_f64().unwrap();
    let (tfidf, jaccard, semantic, hybrid) =
        (method("tfidf"), method("jaccard"), method("semantic"), method("hybrid"));
    // The figures measured independently for the issue: tf-idf 0.808, Jaccard 0.731.
    assert!((rho(&tfidf) - 0.808).abs() < 0.001, "{}", rho(&tfidf));
    assert!((rho(&jaccard) - 0.731).abs() < 0.001, "{}", rho(&jaccard));
    eprintln!("semantic {} hybrid {}", rho(&semantic), rho(&hybrid));
    // The bar for the default method: ρ ≥ 0.84 (0.8438 here; 0.8399 before centring).
    assert!(rho(&hybrid) >= 0.84 && rho(&semantic) >= 0.84, "{} {}", rho(&hybrid), rho(&semantic));
    // Hybrid's gain over tf-idf is outside both intervals.
    assert!(
        hybrid["spearman"]["ci95"][0].as_f64().unwrap()
            > tfidf["spearman"]["ci95"][1].as_f64().unwrap()
    );
    for m in [&tfidf, &jaccard, &semantic, &hybrid] {
        for stat in ["spearman", "kendall_tau_b"] {
            let (lo, mid, hi) = (
                m[stat]["ci95"][0].as_f64().unwrap(),
                m[stat]["mean"].as_f64().unwrap(),
                m[stat]["ci95"][1].as_f64().unwrap(),
            );
            assert!(
                lo < mid && mid < hi && hi - lo < 0.03,
                "{} {stat}: {lo} {mid} {hi}",
                m["method"]
            );
        }
        // Mean relevance rises with every human level that has pairs enough to say so.
        let means: Vec<f64> = m["levels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["pairs"].as_u64().unwrap() > 100)
            .map(|l| l["mean_relevance"].as_f64().unwrap())
            .collect();
        assert!(means.windows(2).all(|w| w[0] < w[1]), "{}: {means:?}", m["method"]);
    }
    // At tf-idf's τ = 0.3: 98.7% of pairs rated ≥ 4 and 3.1% of pairs rated ≤ 1 are relevant.
    assert!((tfidf["top_rated_relevant"].as_f64().unwrap() - 0.987).abs() < 0.001);
    assert!((tfidf["unrelated_relevant"].as_f64().unwrap() - 0.031).abs() < 0.001);
    // Hybrid's and semantic's default τ are the ones that separate the levels best.
    for m in [&hybrid, &semantic] {
        assert_eq!(m["threshold"].as_f64().unwrap(), m["best"]["threshold"].as_f64().unwrap());
    }
}

#[test]
fn halves_find_their_photo_far_above_chance() {
    let data = require!(shared_data());
    let run = embtui()
        .args(["validate", "--halves", "--relevance", "tfidf", "--json", "--dataset"])
        .arg(data.join("flickr8k-1k"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let v = json(&run);
    assert_eq!(v["images"], 1000);
    let m = &v["methods"][0];
    let r1 = m["recall_at_1"].as_f64().unwrap();
    let r10 = m["recall_at_10"].as_f64().unwrap();
    let mrr = m["mrr"].as_f64().unwrap();
    eprintln!("recall@1 {r1} recall@10 {r10} mrr {mrr}");
    // Chance is 1/1000 and 10/1000.
    assert!(r1 > 0.3 && r10 > r1 && r10 <= 1.0 && mrr >= r1 && mrr <= r10, "{m}");
}

#[test]
fn a_rating_file_with_a_bad_score_is_named_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    caption_dataset(tmp.path(), &[("a.jpg", &["a dog"]), ("b.jpg", &["a cat"])]);
    let human = tmp.path().join("h.csv");
    std::fs::write(&human, "image1,image2,score\na.jpg,b.jpg,2\nb.jpg,a.jpg,high\n").unwrap();
    let run = embtui()
        .args(["validate", "--relevance", "tfidf", "--dataset"])
        .arg(tmp.path())
        .arg("--human")
        .arg(&human)
        .output()
        .unwrap();
    fails_with(&run, 2, "h.csv:3: score `high` is not a number");
    std::fs::write(&human, "first,second\na.jpg,b.jpg\n").unwrap();
    let run = embtui()
        .args(["validate", "--relevance", "tfidf", "--dataset"])
        .arg(tmp.path())
        .arg("--human")
        .arg(&human)
        .output()
        .unwrap();
    fails_with(&run, 2, "the header names no image1,image2 columns (found: first,second)");
}
