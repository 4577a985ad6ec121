//! Sampled queries on real photos and a real model: `--queries N --seed S` scores N queries
//! against every image, so each sampled query's metrics and neighbours are exactly those of
//! the all-queries run; the report records the draw; checks refuse other draws; bad counts
//! exit 2 with the fix.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// `eval` of lite0 on the first 200 photos with tf-idf relevance, plus `extra`.
fn eval(ds: &Path, store: &Path, extra: &[&str]) -> std::process::Output {
    embtui()
        .args(["eval", "--device", "cpu", "--relevance", "tfidf", "--bootstrap", "200"])
        .args(["--limit", "200", "--model", "efficientnet-lite0", "--per-query", "--json"])
        .arg("--store")
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .args(extra)
        .output()
        .unwrap()
}

/// Per query image: its nDCG@10 and its top-10 neighbour names.
fn per_query(rep: &serde_json::Value) -> BTreeMap<String, (f64, Vec<String>)> {
    rep["per_query"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let m = &q["models"]["efficientnet-lite0"];
            let top = m["top"].as_array().unwrap();
            (
                q["image"].as_str().unwrap().to_owned(),
                (
                    m["metrics"]["ndcg@10"].as_f64().unwrap(),
                    top.iter().map(|h| h["image"].as_str().unwrap().to_owned()).collect(),
                ),
            )
        })
        .collect()
}

fn mean_ndcg(rep: &serde_json::Value) -> f64 {
    rep["models"][0]["metrics"]["ndcg@10"]["mean"].as_f64().unwrap()
}

#[test]
fn a_sample_of_queries_scores_each_query_exactly_as_the_full_run() {
    let data = require!(shared_data());
    require!(models_ready());
    let dir = tempfile::tempdir().unwrap();
    let (ds, store) = (data.join("flickr8k-1k"), dir.path().join("store"));
    let full = json(&eval(&ds, &store, &[]));
    let sample = json(&eval(&ds, &store, &["--queries", "50", "--seed", "3"]));
    assert_eq!(full["dataset"]["queries"], 200);
    assert!(full["dataset"].get("query_sample").is_none(), "{}", full["dataset"]);
    assert_eq!(sample["dataset"]["queries"], 50);
    let s = &sample["dataset"]["query_sample"];
    assert_eq!(
        (s["size"].as_u64(), s["of"].as_u64(), s["seed"].as_u64()),
        (Some(50), Some(200), Some(3))
    );
    assert!(s["drawn"].as_str().unwrap().contains("without replacement"), "{s}");

    // Every sampled query is one of the 200, with the same nDCG@10 and the same 10
    // neighbours as in the all-queries run: candidates are still all 200 images.
    let (all, some) = (per_query(&full), per_query(&sample));
    assert_eq!(some.len(), 50);
    for (image, (ndcg, top)) in &some {
        let (want, want_top) = &all[image];
        assert!((ndcg - want).abs() < 1e-9, "{image}: {ndcg} vs {want}");
        assert_eq!(top, want_top, "{image}");
    }
    // So the sample's mean is the mean of those 50 rows of the full run.
    let by_hand = some.keys().map(|i| all[i].0).sum::<f64>() / 50.0;
    assert!((mean_ndcg(&sample) - by_hand).abs() < 1e-9, "{} vs {by_hand}", mean_ndcg(&sample));
    // Its interval is wider: 50 queries say less than 200.
    let width = |r: &serde_json::Value| {
        let ci = &r["models"][0]["metrics"]["ndcg@10"]["ci95"];
        ci[1].as_f64().unwrap() - ci[0].as_f64().unwrap()
    };
    assert!(width(&sample) > width(&full), "{} vs {}", width(&sample), width(&full));

    // The same seed draws the same queries; another seed others.
    let again = json(&eval(&ds, &store, &["--queries", "50", "--seed", "3"]));
    assert_eq!(per_query(&again).keys().collect::<Vec<_>>(), some.keys().collect::<Vec<_>>());
    let other = json(&eval(&ds, &store, &["--queries", "50", "--seed", "4"]));
    assert_ne!(per_query(&other).keys().collect::<Vec<_>>(), some.keys().collect::<Vec<_>>());
    // Asking for every image is the full run.
    let every = json(&eval(&ds, &store, &["--queries", "200"]));
    assert!(every["dataset"].get("query_sample").is_none());
    assert!((mean_ndcg(&every) - mean_ndcg(&full)).abs() < 1e-12);
}

#[test]
fn checks_refuse_another_draw_and_bad_counts_exit_2() {
    let data = require!(shared_data());
    require!(models_ready());
    let dir = tempfile::tempdir().unwrap();
    let (ds, store) = (data.join("flickr8k-1k"), dir.path().join("store"));
    let base = dir.path().join("sample.json");
    let b = base.to_str().unwrap();
    json(&eval(&ds, &store, &["--queries", "40", "--seed", "1", "--out", b]));
    // The same draw checks query by query and passes (the same model, the same vectors).
    let same = eval(&ds, &store, &["--queries", "40", "--seed", "1", "--check", b]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert_eq!(json(&same)["check"]["passed"], true);
    fails_with(
        &eval(&ds, &store, &["--queries", "40", "--seed", "2", "--check", b]),
        2,
        "use --queries 40 --seed 1",
    );
    fails_with(&eval(&ds, &store, &["--check", b]), 2, "add --queries 40 --seed 1");
    fails_with(&eval(&ds, &store, &["--queries", "0"]), 2, "give at least 1, or `all`");
    fails_with(
        &eval(&ds, &store, &["--queries", "201"]),
        2,
        "more queries than the 200 images selected; ask for at most 200, or --queries all",
    );
    fails_with(
        &eval(&ds, &store, &["--queries", "some"]),
        2,
        "neither a number of queries nor `all`",
    );
}

#[test]
fn a_figure_picks_among_sampled_queries() {
    let data = require!(shared_data());
    require!(models_ready());
    let dir = tempfile::tempdir().unwrap();
    let out = embtui()
        .args(["figure", "--device", "cpu", "--relevance", "tfidf", "--limit", "200"])
        .args(["--model", "efficientnet-lite0,open-nsfw", "--queries", "30", "--seed", "5"])
        .args(["--pick", "disagree:2", "--json", "--out"])
        .arg(dir.path().join("fig.png"))
        .arg("--store")
        .arg(dir.path().join("store"))
        .arg("--dataset")
        .arg(data.join("flickr8k-1k"))
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(doc["queries"].as_array().unwrap().len(), 2, "{doc}");
    // The picked queries are among the 30 drawn by seed 5: the same draw as eval's.
    let ev = json(&eval(
        &data.join("flickr8k-1k"),
        &dir.path().join("store"),
        &["--queries", "30", "--seed", "5"],
    ));
    let drawn = per_query(&ev);
    for q in doc["queries"].as_array().unwrap() {
        assert!(drawn.contains_key(q.as_str().unwrap()), "{q} not drawn: {:?}", drawn.keys());
    }
}
