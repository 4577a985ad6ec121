//! Regression checks as CI uses them, on real photos and real models: the paired test against
//! a per-query baseline, the queries that got worse, JUnit (read by a real JUnit parser) and
//! the Markdown summary, bad input, and the recipes of docs/ci.md run as a runner runs them.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};

use common::*;

const LIMIT: &str = "150";

/// `eval` of lite0 on the first 150 photos with tf-idf relevance (fast), plus `extra`.
fn eval(ds: &Path, store: &Path, extra: &[&str]) -> std::process::Output {
    embtui()
        .args([
            "eval",
            "--device",
            "cpu",
            "--relevance",
            "tfidf",
            "--bootstrap",
            "300",
            "--limit",
            LIMIT,
        ])
        .args(["--model", "efficientnet-lite0", "--store"])
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .args(extra)
        .output()
        .unwrap()
}

fn baseline(ds: &Path, dir: &Path) -> (PathBuf, serde_json::Value) {
    let path = dir.join("baseline.json");
    let out =
        eval(ds, &dir.join("store"), &["--per-query", "--json", "--out", path.to_str().unwrap()]);
    (path, json(&out))
}

/// A manifest that gives the name `efficientnet-lite0` to the open_nsfw graph: the same model
/// name with another ONNX file, as a re-export gone wrong looks to a check.
fn swapped_manifest(dir: &Path) -> PathBuf {
    let zoo = std::fs::read_to_string(root().join("onnx/models.toml")).unwrap();
    let block = zoo.split("[[model]]").find(|b| b.contains("name = \"open-nsfw\"")).unwrap();
    let path = dir.join("swapped.toml");
    std::fs::write(
        &path,
        format!(
            "[[model]]{}",
            block.replace("name = \"open-nsfw\"", "name = \"efficientnet-lite0\"")
        ),
    )
    .unwrap();
    path
}

fn junit(path: &Path) -> junit_parser::TestSuites {
    junit_parser::from_reader(std::io::BufReader::new(std::fs::File::open(path).unwrap())).unwrap()
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, each output of the check asserted in turn
fn a_swapped_onnx_file_fails_the_paired_check_naming_both_files_and_the_worse_queries() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let (base, b) = baseline(&ds, tmp.path());
    let metrics = b["models"][0]["metrics"].as_object().unwrap().len();
    let (xml, md, out) =
        (tmp.path().join("j.xml"), tmp.path().join("s.md"), tmp.path().join("now.json"));
    let manifest = swapped_manifest(tmp.path());
    let run = eval(
        &ds,
        &tmp.path().join("store"),
        &[
            "--manifest",
            manifest.to_str().unwrap(),
            "--check",
            base.to_str().unwrap(),
            "--junit",
            xml.to_str().unwrap(),
            "--summary",
            md.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let err = fails_with(&run, 1, "regression: efficientnet-lite0 ndcg@10:");
    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/models.lock.json")).unwrap(),
    )
    .unwrap();
    let (was, now) = (
        b["models"][0]["onnx_sha256"].as_str().unwrap(),
        lock["open-nsfw"]["sha256"].as_str().unwrap(),
    );
    assert!(
        err.contains(&format!("ONNX file changed: sha256 {was} (baseline) → {now} (now)")),
        "{err}"
    );
    assert!(err.contains("paired per-query test (α 0.05, tolerance 0.01)"), "{err}");
    // JUnit, read by a JUnit parser: one case per metric, the nDCG one failed with its numbers.
    let j = junit(&xml);
    assert_eq!((j.suites.len(), j.tests as usize), (1, metrics));
    let ndcg = j.suites[0].cases.iter().find(|c| c.original_name == "ndcg@10").unwrap();
    assert_eq!(ndcg.classname.as_deref(), Some("embtui.efficientnet-lite0"));
    let junit_parser::TestStatus::Failure(f) = &ndcg.status else { panic!("{:?}", ndcg.status) };
    assert!(f.message.contains("> tolerance 0.01 and p = "), "{}", f.message);
    // The failure's text lists the queries that got worse, one a line.
    assert_eq!(f.text.lines().filter(|l| l.starts_with("worse: ")).count(), 5, "{}", f.text);
    assert!(j.failures >= 1);
    // The report keeps the check: the 5 worst queries with both runs' neighbours.
    let now_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let c = &now_json["check"];
    assert_eq!((c["passed"].as_bool(), c["evidence"].as_str()), (Some(false), Some("paired")));
    let worse = c["models"][0]["worse"].as_array().unwrap();
    assert_eq!(worse.len(), 5);
    let drops: Vec<f64> = worse
        .iter()
        .map(|w| w["baseline"].as_f64().unwrap() - w["current"].as_f64().unwrap())
        .collect();
    assert!(drops.windows(2).all(|d| d[0] >= d[1]) && drops[4] > 0.0, "{drops:?}");
    assert!(worse.iter().all(|w| w["baseline_top"].as_array().unwrap().len() == 10
        && w["current_top"].as_array().unwrap().len() == 10));
    assert!(
        now_json.get("per_query").is_none(),
        "per-query results were computed for the check, not asked for"
    );
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(
        summary.contains("## embtui regression check: FAILED")
            && summary.contains("### Queries that got worse: efficientnet-lite0"),
        "{summary}"
    );
    assert_eq!(
        summary.lines().filter(|l| l.ends_with(".jpg | ") || l.contains(".jpg | ")).count(),
        5,
        "{summary}"
    );
    // `embtui report` renders the worse queries, baseline above today.
    let html = tmp.path().join("check.html");
    let r = embtui()
        .args(["report", "--from", out.to_str().unwrap(), "--out", html.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", stderr(&r));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("Regression check against")
            && page.contains("<div class=\"label\">baseline</div>"),
        "check section"
    );
    for w in worse {
        assert!(page.contains(w["image"].as_str().unwrap()));
    }
    // A tolerance larger than the drop passes although the drop is significant.
    let run = eval(
        &ds,
        &tmp.path().join("store"),
        &[
            "--manifest",
            manifest.to_str().unwrap(),
            "--check",
            base.to_str().unwrap(),
            "--tolerance",
            "0.5",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
}

#[test]
fn the_same_model_passes_and_a_means_only_baseline_names_the_paired_test() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let (base, mut b) = baseline(&ds, tmp.path());
    let xml = tmp.path().join("j.xml");
    let run = eval(
        &ds,
        &tmp.path().join("store"),
        &["--check", base.to_str().unwrap(), "--junit", xml.to_str().unwrap()],
    );
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(0), "{err}");
    assert!(
        err.contains("PASS efficientnet-lite0 ndcg@10:") && err.contains("p 1.000: no drop"),
        "{err}"
    );
    let j = junit(&xml);
    assert_eq!((j.failures, j.errors), (0, 0));
    assert!(j.suites[0]
        .cases
        .iter()
        .all(|c| matches!(c.status, junit_parser::TestStatus::Success)));
    b.as_object_mut().unwrap().remove("per_query");
    std::fs::write(&base, b.to_string()).unwrap();
    let run = eval(&ds, &tmp.path().join("store"), &["--check", base.to_str().unwrap()]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(0), "{err}");
    assert!(
        err.contains("the baseline has no per-query scores, so only means are compared")
            && err.contains("--per-query --out BASELINE"),
        "{err}"
    );
}

#[test]
fn bad_check_input_exits_2_with_the_fix() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let (base, mut b) = baseline(&ds, tmp.path());
    for alpha in ["0", "1.5", "x"] {
        let run = eval(
            &ds,
            &tmp.path().join("store"),
            &["--check", base.to_str().unwrap(), "--alpha", alpha],
        );
        assert_eq!(run.status.code(), Some(2), "--alpha {alpha}: {}", stderr(&run));
        assert!(stderr(&run).contains("--alpha"), "{}", stderr(&run));
    }
    let run = eval(&ds, &tmp.path().join("store"), &["--junit", "j.xml"]);
    fails_with(&run, 2, "--junit writes the result of a regression check: add --check BASELINE");
    b["per_query"].as_array_mut().unwrap().pop();
    std::fs::write(&base, b.to_string()).unwrap();
    let run = eval(&ds, &tmp.path().join("store"), &["--check", base.to_str().unwrap()]);
    fails_with(
        &run,
        2,
        "the baseline scores 149 queries and this run 150 (another sample of queries)",
    );
}

/// The YAML blocks of docs/ci.md: (GitHub workflow, GitLab job file).
fn ci_recipes() -> (yaml_rust2::Yaml, yaml_rust2::Yaml) {
    let doc = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    let blocks: Vec<&str> =
        doc.split("```yaml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 2, "docs/ci.md holds a GitHub and a GitLab recipe");
    let parse = |s: &str| yaml_rust2::YamlLoader::load_from_str(s).unwrap().remove(0);
    (parse(blocks[0]), parse(blocks[1]))
}

fn env_of(map: &yaml_rust2::Yaml) -> Vec<(String, String)> {
    map.as_hash()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[allow(clippy::too_many_lines)] // both recipes run alike in one loop
fn the_ci_recipes_in_docs_run_as_a_runner_runs_them() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = flickr8k_subset(&data, tmp.path(), 60);
    let (github, gitlab) = ci_recipes();
    let job = &github["jobs"]["check"];
    let step = job["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("Regression check"))
        .unwrap();
    let script = step["run"].as_str().unwrap().to_owned();
    let gl = &gitlab["embtui-check"];
    let gl_script: Vec<String> =
        gl["script"].as_vec().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect();
    let bin_dir = assert_cmd::cargo::cargo_bin("embtui").parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let base = tmp.path().join("baseline.json");
    for (name, vars, shell, code) in [
        (
            "github",
            env_of(&job["env"]),
            vec!["--noprofile", "--norc", "-eo", "pipefail", "-c"],
            script,
        ),
        ("gitlab", env_of(&gl["variables"]), vec!["-eo", "pipefail", "-c"], gl_script.join("\n")),
    ] {
        let work = tmp.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        let store = work.join(vars.iter().find(|(k, _)| k == "EMBTUI_STORE").unwrap().1.clone());
        if !base.exists() {
            let out = embtui()
                .args([
                    "eval",
                    "--device",
                    "cpu",
                    "--model",
                    "efficientnet-lite0",
                    "--per-query",
                    "--json",
                    "--store",
                ])
                .arg(&store)
                .arg("--dataset")
                .arg(&ds)
                .arg("--out")
                .arg(&base)
                .output()
                .unwrap();
            json(&out);
        }
        let summary = work.join("step-summary.md");
        let out = std::process::Command::new("bash")
            .args(&shell)
            .arg(&code)
            .current_dir(&work)
            .envs(vars.iter().cloned())
            .env("DATASET", &ds)
            .env("BASELINE", &base)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("PATH", &path)
            .env("COLUMNS", "120")
            .env_remove("EMBTUI_MODELS")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let j = junit(&work.join("embtui-junit.xml"));
        assert!(
            j.tests >= 5 && j.failures == 0,
            "{name}: {} cases, {} failures",
            j.tests,
            j.failures
        );
        let md = if name == "github" { summary } else { work.join("embtui-summary.md") };
        let md = std::fs::read_to_string(md).unwrap();
        assert!(md.contains("## embtui regression check: passed"), "{name}: {md}");
        assert!(
            stdout(&out).contains("efficientnet-lite0") && stdout(&out).contains('|'),
            "{name}: --format md on stdout"
        );
    }
}
