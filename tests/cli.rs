//! The commands users script, on real photos and real models: eval reports, regression checks,
//! the cache and resumable indexing, every Flickr30k caption format.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::*;

fn eval_json(ds: &Path, store: &Path, extra: &[&str]) -> serde_json::Value {
    let out = embtui()
        .args([
            "eval",
            "--device",
            "cpu",
            "--json",
            "--bootstrap",
            "200",
            "--model",
            "efficientnet-lite0",
            "--store",
        ])
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout holds only the JSON report")
}

#[test]
fn eval_json_reports_metrics_baselines_and_ann_recall_deterministically() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let a = eval_json(&ds, tmp.path(), &[]);
    assert_eq!(a["schema"], "embtui.eval/2");
    assert_eq!(a["dataset"]["images"], 1000);
    assert_eq!(a["dataset"]["format"], "flickr8k");
    let m = &a["models"][0];
    assert_eq!(m["name"], "efficientnet-lite0");
    assert_eq!(m["dim"], 1280);
    assert_eq!(m["device"], "cpu");
    let ndcg = m["metrics"]["ndcg@10"]["mean"].as_f64().unwrap();
    let random = a["baselines"]["random"]["ndcg@10"].as_f64().unwrap();
    let oracle = a["baselines"]["oracle"]["ndcg@10"].as_f64().unwrap();
    eprintln!("ndcg@10 {ndcg} random {random} oracle {oracle}");
    assert!(random < ndcg && ndcg < oracle, "a real model sits between chance and the oracle");
    assert!((oracle - 1.0).abs() < 1e-9);
    let ci = &m["metrics"]["ndcg@10"]["ci95"];
    assert!(ci[0].as_f64().unwrap() <= ndcg && ndcg <= ci[1].as_f64().unwrap());
    for key in ["ndcg@1", "ndcg@5", "overlap@5", "p@5", "p@10", "map@r", "mrr"] {
        let v = m["metrics"][key]["mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(m["ann"]["recall@10"].as_f64().unwrap() >= 0.98, "{}", m["ann"]);
    assert_eq!(a["environment"]["onnxruntime_version"], "1.31.1");
    // Second run: everything cached, identical metrics.
    let b = eval_json(&ds, tmp.path(), &[]);
    assert_eq!(b["models"][0]["cached"], 1000);
    assert_eq!(b["models"][0]["embedded"], 0);
    assert_eq!(a["models"][0]["metrics"], b["models"][0]["metrics"]);
    assert_eq!(a["baselines"], b["baselines"]);
}

#[test]
fn check_exits_1_naming_the_metric_that_dropped() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let mut report = eval_json(&ds, tmp.path(), &["--limit", "200"]);
    let base = tmp.path().join("base.json");
    std::fs::write(&base, serde_json::to_string(&report).unwrap()).unwrap();
    let check = || {
        embtui()
            .args(["eval", "--device", "cpu", "--bootstrap", "200", "--limit", "200"])
            .args(["--model", "efficientnet-lite0", "--store"])
            .arg(tmp.path())
            .arg("--dataset")
            .arg(&ds)
            .arg("--check")
            .arg(&base)
            .output()
            .unwrap()
    };
    let ok = check();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    // A baseline 0.05 better on nDCG@10 makes today's run a regression.
    let v = report["models"][0]["metrics"]["ndcg@10"]["mean"].as_f64().unwrap();
    report["models"][0]["metrics"]["ndcg@10"]["mean"] = serde_json::json!(v + 0.05);
    std::fs::write(&base, serde_json::to_string(&report).unwrap()).unwrap();
    let bad = check();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("regression: efficientnet-lite0 ndcg@10"), "{err}");
}

/// Writes the 68 Flickr30k photos' captions in each distributed format, images copied beside.
fn flickr30k_variants(src: &Path, dst: &Path) -> Vec<std::path::PathBuf> {
    let token = std::fs::read_to_string(src.join("results_20130124.token")).unwrap();
    let mut caps = std::collections::BTreeMap::<String, Vec<String>>::new();
    for line in token.lines() {
        let (key, cap) = line.split_once('\t').unwrap();
        caps.entry(key.split('#').next().unwrap().to_owned()).or_default().push(cap.to_owned());
    }
    let mut dirs = Vec::new();
    for (name, file, body) in [
        ("token", "results_20130124.token", token.clone()),
        ("kaggle", "results.csv", {
            let mut s = "image_name| comment_number| comment\n".to_owned();
            for (img, cs) in &caps {
                for (i, c) in cs.iter().enumerate() {
                    writeln!(s, "{img}| {i}| {c}").unwrap();
                }
            }
            s
        }),
        ("karpathy", "dataset_flickr30k.json", {
            let images: Vec<_> = caps.iter().enumerate().map(|(i, (img, cs))| serde_json::json!({"filename": img, "imgid": i, "split": if i % 2 == 0 { "test" } else { "train" }, "sentences": cs.iter().map(|c| serde_json::json!({"raw": c, "tokens": []})).collect::<Vec<_>>()})).collect();
            serde_json::to_string(&serde_json::json!({"images": images, "dataset": "flickr30k"}))
                .unwrap()
        }),
        ("hf", "flickr_annotations_30k.csv", {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["raw", "sentids", "split", "filename", "img_id"]).unwrap();
            for (i, (img, cs)) in caps.iter().enumerate() {
                w.write_record([
                    serde_json::to_string(cs).unwrap(),
                    "[0,1,2,3,4]".into(),
                    "test".into(),
                    img.clone(),
                    i.to_string(),
                ])
                .unwrap();
            }
            String::from_utf8(w.into_inner().unwrap()).unwrap()
        }),
    ] {
        let d = dst.join(name);
        let imgs = d.join(if name == "hf" { "flickr30k-images" } else { "flickr30k_images" });
        copy_files(&src.join("flickr30k_images"), &imgs);
        std::fs::write(d.join(file), body).unwrap();
        dirs.push(d);
    }
    dirs
}

#[test]
fn every_flickr30k_format_gives_identical_relevance_and_metrics() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dirs = flickr30k_variants(&data.join("flickr30k-68"), tmp.path());
    let reports: Vec<serde_json::Value> = dirs.iter().map(|d| eval_json(d, &store, &[])).collect();
    let formats: Vec<&str> =
        reports.iter().map(|r| r["dataset"]["format"].as_str().unwrap()).collect();
    assert_eq!(formats, ["flickr30k-token", "flickr30k-csv", "karpathy", "flickr30k-hf"]);
    for r in &reports[1..] {
        assert_eq!(r["dataset"]["images"], 68);
        assert_eq!(
            r["relevance"]["mean_pair_relevance"],
            reports[0]["relevance"]["mean_pair_relevance"]
        );
        assert_eq!(r["models"][0]["metrics"], reports[0]["models"][0]["metrics"]);
        assert_eq!(r["baselines"], reports[0]["baselines"]);
    }
    // The same photos, so the later runs embed nothing: the cache is keyed by content.
    assert_eq!(reports[3]["models"][0]["cached"], 68);
    // Karpathy's splits: every other image is in "test".
    let test = eval_json(&dirs[2], &store, &["--split", "test"]);
    assert_eq!(test["dataset"]["images"], 34);
    let bad = embtui()
        .args(["eval", "--split", "tset", "--model", "efficientnet-lite0", "--store"])
        .arg(&store)
        .arg("--dataset")
        .arg(&dirs[2])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("--split tset matched no image; the file has splits test, train"));
}

/// The number of vectors `doctor` says the store holds.
fn cached_vectors(store: &Path) -> usize {
    let out = embtui().args(["doctor", "--device", "cpu", "--store"]).arg(store).output().unwrap();
    let text = stdout(&out);
    let before = text.split(" cached vectors").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn index_killed_midway_resumes_without_losing_or_duplicating() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let mut index_args: Vec<std::ffi::OsString> =
        ["index", "--device", "cpu", "--limit", "600", "--batch", "8"].map(Into::into).to_vec();
    index_args.extend(["--model", "dinov2-s14-imgfocus", "--store"].map(Into::into));
    index_args.extend([tmp.path().into(), "--dataset".into(), ds.clone().into()]);
    let mut done_before = 0;
    // Kill right after the first progress line (every 10%) of two runs: what the program says
    // it has committed, not a clock, decides when.
    for round in 1..=2 {
        let mut child = embtui_process()
            .args(&index_args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let line = wait_for_line(&mut child, |l| l.contains(" images, "));
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        // "embtui: dinov2-s14-imgfocus: 64/600 images, …": 64 of this run's images committed.
        let done: usize =
            line.split(": ").nth(2).unwrap().split('/').next().unwrap().parse().unwrap();
        let cached = cached_vectors(tmp.path());
        eprintln!("round {round}: killed after {line:?}: {cached} vectors committed");
        assert!(cached >= done_before + done, "every vector the progress line counted is kept");
        done_before = cached;
    }
    assert!(done_before < 600, "killed midway: {done_before}");
    let out = embtui().args(&index_args).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let want = format!("{} embedded", 600 - done_before);
    assert!(err.contains(&want) && err.contains(&format!("{done_before} cached")), "{err}");
    assert!(err.contains("index of 600 items"), "{err}");
    assert_eq!(cached_vectors(tmp.path()), 600, "no vector stored twice");
}

#[test]
fn changed_model_file_never_reuses_old_vectors() {
    let data = require!(shared_data());
    require!(models_ready());
    let py = require!(python());
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(
        root().join("models/efficientnet-lite0.onnx"),
        models.join("efficientnet-lite0.onnx"),
    )
    .unwrap();
    let run = || {
        let out = embtui()
            .args([
                "index",
                "--device",
                "cpu",
                "--limit",
                "20",
                "--model",
                "efficientnet-lite0",
                "--models-dir",
            ])
            .arg(&models)
            .arg("--store")
            .arg(tmp.path().join("s"))
            .arg("--dataset")
            .arg(data.join("flickr8k-1k"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    assert!(run().contains("20 embedded"));
    assert!(run().contains("0 embedded, 20 cached"));
    // Same graph, new bytes (a doc string): a different sha256, so everything is embedded anew.
    let code =
        "import onnx,sys; m=onnx.load(sys.argv[1]); m.doc_string='v2'; onnx.save(m, sys.argv[1])";
    assert!(Command::new(&py)
        .args(["-c", code])
        .arg(models.join("efficientnet-lite0.onnx"))
        .status()
        .unwrap()
        .success());
    assert!(run().contains("20 embedded"));
}

#[test]
fn search_finds_the_query_photo_itself_first() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let q = ds.join("Images/1000268201_693b08cb0e.jpg");
    let out = embtui()
        .args([
            "search",
            "--device",
            "cpu",
            "--json",
            "--limit",
            "100",
            "--model",
            "efficientnet-lite0",
            "-k",
            "3",
            "--store",
        ])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(&ds)
        .arg(&q)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hits"][0]["image"], "1000268201_693b08cb0e.jpg");
    assert!(v["hits"][0]["score"].as_f64().unwrap() > 0.999);
    assert_eq!(v["hits"].as_array().unwrap().len(), 3);
}

#[test]
fn plain_folder_refuses_metrics_with_a_clear_message() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let out = embtui()
        .args(["eval", "--model", "efficientnet-lite0", "--store"])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(data.join("flickr8k-1k/Images"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("is a plain image folder: metrics need captions"));
}

#[test]
fn missing_onnx_runtime_says_where_it_looked_and_how_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let out = embtui()
        .env("ORT_DYLIB_PATH", tmp.path().join("nope.so"))
        .args(["doctor", "--store"])
        .arg(tmp.path().join("s"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("ONNX Runtime library not found")
            && text.contains("nope.so")
            && text.contains("just setup"),
        "{text}"
    );
}

#[test]
fn same_subject_photos_are_far_more_relevant_than_unrelated_ones() {
    let data = require!(shared_data());
    let out = embtui()
        .args([
            "relevance",
            "--json",
            "--relevance",
            "tfidf",
            "--subjects",
            "dog,snow,bicycle",
            "--dataset",
        ])
        .arg(data.join("flickr8k-1k"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{v}");
    assert_eq!(v[0]["method"], "tfidf");
    for s in v[0]["subjects"].as_array().unwrap() {
        assert!(s["images"].as_u64().unwrap() >= 5, "{s}");
        let (within, unrelated) = (s["within"].as_f64().unwrap(), s["unrelated"].as_f64().unwrap());
        assert!(within > 3.0 * unrelated, "{s}");
    }
}

#[test]
fn search_answers_while_another_process_is_indexing() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    embtui()
        .args([
            "index",
            "--device",
            "cpu",
            "--limit",
            "100",
            "--model",
            "efficientnet-lite0",
            "--store",
        ])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(&ds)
        .assert()
        .success();
    let mut writer = common::embtui_process()
        .args([
            "index",
            "--device",
            "cpu",
            "--limit",
            "400",
            "--model",
            "dinov2-s14-imgfocus",
            "--store",
        ])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(&ds)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The writer has committed a batch and holds the store while it goes on.
    wait_for_line(&mut writer, |l| l.contains(" images, "));
    let q = ds.join("Images/1000268201_693b08cb0e.jpg");
    let out = embtui()
        .args([
            "search",
            "--device",
            "cpu",
            "--json",
            "--limit",
            "100",
            "--model",
            "efficientnet-lite0",
            "-k",
            "1",
            "--store",
        ])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(&ds)
        .arg(&q)
        .output()
        .unwrap();
    let still_indexing = writer.try_wait().unwrap().is_none();
    writer.kill().ok();
    writer.wait().ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(still_indexing, "the indexer should still have been running during the search");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hits"][0]["image"], "1000268201_693b08cb0e.jpg");
}

#[test]
fn models_lists_the_zoo_with_verified_hashes() {
    require!(models_ready());
    let out = embtui().args(["models", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        v.as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    // The four offline models first (a working tree may hold more: `just fp16` adds variants).
    assert_eq!(
        names[..4],
        ["efficientnet-lite0", "efficientnet-lite2", "open-nsfw", "dinov2-s14-imgfocus"]
    );
    assert!(v.as_array().unwrap().iter().all(|m| m["verified"] == true), "{v}");
    assert_eq!(v[3]["dim"], 384);
}

#[test]
fn completions_and_help_carry_examples() {
    let out = embtui().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("embtui"));
    let help = embtui().args(["eval", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Examples:") && text.contains("--check eval/baseline.json"), "{text}");
    let bad = embtui().args(["eval", "--model"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn generated_demo_dataset_evaluates_far_above_chance() {
    require!(models_ready());
    let py = require!(python());
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("demo");
    let st = Command::new(&py)
        .arg(root().join("fixtures/make_demo.py"))
        .arg(&ds)
        .args(["--n", "48"])
        .status()
        .unwrap();
    assert!(st.success());
    let r = eval_json(&ds, &tmp.path().join("store"), &[]);
    let m = r["models"][0]["metrics"]["ndcg@10"]["mean"].as_f64().unwrap();
    let random = r["baselines"]["random"]["ndcg@10"].as_f64().unwrap();
    eprintln!("demo: ndcg@10 {m} vs random {random}");
    assert_eq!(r["dataset"]["images"], 48);
    assert!(m > random + 0.2, "colour and shape captions are easy: {m} vs {random}");
}

/// An export into an empty store, so that the model really runs on `device`.
fn export_on(device: &str, ds: &Path, out: &Path, env: &[(&str, &Path)]) -> std::process::Output {
    let store = tempfile::tempdir().unwrap();
    let mut c = embtui();
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["export", "--device", device, "--limit", "2", "--model", "efficientnet-lite0"])
        .arg("--store")
        .arg(store.path())
        .arg("--out")
        .arg(out)
        .arg("--dataset")
        .arg(ds)
        .output()
        .unwrap()
}

#[test]
fn device_auto_is_quiet_without_a_gpu_runtime_and_cuda_fails_clearly() {
    let data = require!(shared_data());
    require!(models_ready());
    if root().join(".ort/gpu").exists() {
        eprintln!(
            "SKIP: a GPU build of ONNX Runtime is installed; the CPU-only paths are not exercised"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a.npy");
    let ds = data.join("flickr8k-1k");
    // No GPU build of ONNX Runtime: auto uses the CPU and says nothing about CUDA.
    let auto = export_on("auto", &ds, &out, &[]);
    let err = stderr(&auto);
    assert!(auto.status.success(), "{err}");
    assert!(!err.contains("CUDA") && err.contains("on cpu"), "{err}");
    // Asked for by name, CUDA's absence is an error with the fix.
    let cuda = export_on("cuda:1", &ds, &out, &[]);
    fails_with(&cuda, 2, "--device cuda:1 was asked for but CUDA is unusable");
    assert!(stderr(&cuda).contains("just setup-gpu"));
    // doctor says once why CUDA is not used, without claiming anybody asked for it.
    let doc = embtui().args(["doctor", "--store"]).arg(tmp.path().join("s")).output().unwrap();
    let text = stdout(&doc);
    assert!(text.contains("info CUDA not used: no GPU build of ONNX Runtime"), "{text}");
    assert!(!text.contains("asked for"), "{text}");
    // A runtime that has a CUDA provider beside it, which cannot load here: auto falls back
    // and says why, once.
    let fake = tmp.path().join("fake-gpu");
    std::fs::create_dir(&fake).unwrap();
    for e in std::fs::read_dir(root().join(".ort/cpu")).unwrap() {
        let e = e.unwrap();
        std::os::unix::fs::symlink(e.path(), fake.join(e.file_name())).unwrap();
    }
    std::fs::write(fake.join("libonnxruntime_providers_cuda.so"), b"not a library").unwrap();
    let lib = fake.join("libonnxruntime.so.1.31.1");
    let auto = export_on("auto", &ds, &out, &[("ORT_DYLIB_PATH", &lib)]);
    let err = stderr(&auto);
    assert!(auto.status.success(), "{err}");
    assert_eq!(err.matches("efficientnet-lite0: using CPU (").count(), 1, "{err}");
}

#[test]
fn corrupt_store_is_named_with_the_fix() {
    let data = require!(shared_data());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("data.mdb"), vec![0x5au8; 65536]).unwrap();
    let out = embtui()
        .args(["index", "--limit", "2", "--model", "efficientnet-lite0", "--store"])
        .arg(tmp.path())
        .arg("--dataset")
        .arg(data.join("flickr8k-1k"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not an LMDB store (corrupt?); move it away or pass another --store"),
        "{err}"
    );
}

/// Two shards embedded into two stores and merged give the store one run would have built:
/// every vector once, and an evaluation equal to the single-store one in every metric.
#[test]
fn shards_merged_evaluate_exactly_like_one_store() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let [one, s0, s1, merged] = ["one", "s0", "s1", "merged"].map(|n| tmp.path().join(n));
    let index = |store: &Path, shard: &str| {
        let out = embtui()
            .args(["index", "--device", "cpu", "--model", "efficientnet-lite0", "--limit", "120"])
            .args(["--shard", shard, "--store"])
            .arg(store)
            .arg("--dataset")
            .arg(&ds)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let e0 = index(&s0, "0/2");
    let e1 = index(&s1, "1/2");
    let embedded = |text: &str| -> usize {
        let at = text.find(" embedded").unwrap_or_else(|| panic!("no count in {text}"));
        text[..at].rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (n0, n1) = (embedded(&e0), embedded(&e1));
    eprintln!("shard 0 embedded {n0}, shard 1 embedded {n1}");
    assert_eq!(n0 + n1, 120, "each photo lands in exactly one shard");
    assert!(n0 > 30 && n1 > 30, "content hashes split 120 photos roughly in half: {n0} + {n1}");
    let out = embtui()
        .args(["store", "--store"])
        .arg(&merged)
        .arg("merge")
        .args([&s0, &s1])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let a = eval_json(&ds, &merged, &["--limit", "120"]);
    assert_eq!(a["models"][0]["embedded"], 0, "the merged store holds every vector");
    assert_eq!(a["models"][0]["cached"], 120);
    let b = eval_json(&ds, &one, &["--limit", "120"]);
    assert_eq!(b["models"][0]["embedded"], 120);
    assert_eq!(a["models"][0]["metrics"], b["models"][0]["metrics"]);
    assert_eq!(a["baselines"], b["baselines"]);
}

#[test]
fn shard_auto_reads_the_scheduler_or_says_how() {
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = root().join("fixtures/flickr30k-token");
    let index = |envs: &[(&str, &str)], spec: &str| {
        let mut c = embtui();
        c.args([
            "index",
            "--device",
            "cpu",
            "--model",
            "efficientnet-lite0",
            "--shard",
            spec,
            "--store",
        ])
        .arg(tmp.path().join("s"))
        .arg("--dataset")
        .arg(&ds);
        for v in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX"] {
            c.env_remove(v);
        }
        c.envs(envs.iter().copied()).output().unwrap()
    };
    fails_with(
        &index(&[], "auto"),
        2,
        "neither SLURM_ARRAY_TASK_ID (sbatch --array) nor JOB_COMPLETION_INDEX",
    );
    let out = index(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "2")], "auto");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shard 1/2 from the scheduler's environment"),
        "{}",
        stderr(&out)
    );
    fails_with(&index(&[("JOB_COMPLETION_INDEX", "3")], "auto"), 2, "pass --shard auto/N");
    let out = index(&[("JOB_COMPLETION_INDEX", "0")], "auto/2");
    assert!(
        stderr(&out).contains("shard 0/2 from the scheduler's environment"),
        "{}",
        stderr(&out)
    );
}
