//! Reports people look at, on 60 real Flickr8k photos with two real models: per-query
//! results agree with the summary, the Markdown and CSV leaderboards, the figure's PNG layout
//! (size, tiles, frames) and SVG, and the HTML report opened in a real headless browser
//! (Debian's chromium): screenshot non-blank, tables, charts and every embedded image loaded.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking
#![allow(clippy::too_many_lines)] // one scenario, four outputs of the same evaluation

mod common;

use std::path::{Path, PathBuf};

use common::{embtui, json, models_ready, shared_data, stdout};
use serde_json::Value;

const MODELS: &str = "efficientnet-lite0,open-nsfw";

fn base(store: &Path, data: &Path, cmd: &str) -> assert_cmd::Command {
    let mut c = embtui();
    c.arg("--store")
        .arg(store)
        .args([cmd, "--device", "cpu", "--limit", "60", "--model", MODELS, "--dataset"])
        .arg(data.join("flickr8k-1k"));
    c
}

/// The relevance colour rule of docs/report.md: green ≥ τ, amber ≥ τ/3, red below.
fn colour(rel: f64, tau: f64) -> [u8; 3] {
    if rel >= tau {
        [34, 139, 34]
    } else if rel >= tau / 3.0 {
        [222, 150, 0]
    } else {
        [200, 40, 40]
    }
}

#[test]
fn per_query_results_leaderboards_figure_and_html() {
    require!(models_ready());
    let data = require!(shared_data());
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let eval_json = tmp.path().join("eval.json");

    // 1. --per-query: one entry per query, each model's mean over queries is the summary.
    let out = base(&store, &data, "eval")
        .args(["--k", "3,10", "--per-query", "--bootstrap", "100", "--json", "--out"])
        .arg(&eval_json)
        .output()
        .unwrap();
    let rep = json(&out);
    let pq = rep["per_query"].as_array().unwrap();
    assert_eq!(pq.len(), 60);
    // The report's top level and a per-query entry have what eval/report.schema.json requires.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("eval/report.schema.json")).unwrap(),
    )
    .unwrap();
    let props = &schema["properties"];
    assert!(props["schema"]["enum"].as_array().unwrap().contains(&rep["schema"]));
    for key in schema["required"].as_array().unwrap() {
        assert!(rep.get(key.as_str().unwrap()).is_some(), "report lacks {key}");
    }
    for key in props["per_query"]["items"]["required"].as_array().unwrap() {
        assert!(pq[0].get(key.as_str().unwrap()).is_some(), "per_query entry lacks {key}");
    }
    for m in rep["models"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        for metric in ["ndcg@10", "ndcg@3", "p@10"] {
            let sum: f64 =
                pq.iter().map(|q| q["models"][name]["metrics"][metric].as_f64().unwrap()).sum();
            let mean = m["metrics"][metric]["mean"].as_f64().unwrap();
            assert!((sum / 60.0 - mean).abs() < 1e-9, "{name} {metric}: {} vs {mean}", sum / 60.0);
        }
        for q in pq {
            let top = q["models"][name]["top"].as_array().unwrap();
            assert_eq!(top.len(), 10);
            assert!(
                top.iter().all(|h| h["image"] != q["image"]),
                "a query is not its own neighbour"
            );
            let cos: Vec<f64> = top.iter().map(|h| h["cosine"].as_f64().unwrap()).collect();
            assert!(cos.windows(2).all(|w| w[0] >= w[1]), "neighbours best first: {cos:?}");
        }
    }

    // 2. Markdown: header, rule, 2 models, random, oracle; CSV: models × metrics + baselines.
    let md = stdout(
        &base(&store, &data, "eval")
            .args(["--bootstrap", "100", "--format", "md"])
            .output()
            .unwrap(),
    );
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 6, "{md}");
    assert!(rows[0].starts_with("| model | ndcg@10 (95% CI) |"), "{md}");
    let csv = stdout(
        &base(&store, &data, "eval")
            .args(["--bootstrap", "100", "--format", "csv"])
            .output()
            .unwrap(),
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "model,metric,mean,ci_low,ci_high");
    // 11 metrics (nDCG, overlap, p at k = 1, 5, 10; MAP@R; MRR) per model and baseline.
    assert_eq!(lines.len(), 1 + 4 * 11, "{csv}");

    // 3. The figure: the 2 queries with the widest nDCG@3 spread, 1 + 2 × 3 tiles each.
    let fig = tmp.path().join("fig.png");
    let out = base(&store, &data, "figure")
        .args(["--pick", "disagree:2", "-k", "3", "--json", "--out"])
        .arg(&fig)
        .output()
        .unwrap();
    let layout = json(&out);
    let mut spread: Vec<(f64, usize)> = pq
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let v: Vec<f64> = q["models"]
                .as_object()
                .unwrap()
                .values()
                .map(|m| m["metrics"]["ndcg@3"].as_f64().unwrap())
                .collect();
            (
                v.iter().copied().fold(f64::MIN, f64::max)
                    - v.iter().copied().fold(f64::MAX, f64::min),
                i,
            )
        })
        .collect();
    spread.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let expect: Vec<&Value> = spread[..2].iter().map(|&(_, i)| &pq[i]["image"]).collect();
    assert_eq!(layout["queries"].as_array().unwrap().iter().collect::<Vec<_>>(), expect);
    let tiles = layout["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 2 * (1 + 2 * 3));
    let img = image::open(&fig).unwrap().to_rgb8();
    assert_eq!(u64::from(img.width()), layout["width"].as_u64().unwrap());
    assert_eq!(u64::from(img.height()), layout["height"].as_u64().unwrap());
    let tau = layout["threshold"].as_f64().unwrap();
    for t in tiles {
        let (x, y, s) = (
            t["x"].as_u64().unwrap() as u32,
            t["y"].as_u64().unwrap() as u32,
            t["size"].as_u64().unwrap() as u32,
        );
        // Non-blank: a photo has many distinct colours in its tile.
        let mut seen = std::collections::BTreeSet::new();
        for yy in (y..y + s).step_by(4) {
            for xx in (x..x + s).step_by(4) {
                seen.insert(img.get_pixel(xx, yy).0);
            }
        }
        assert!(seen.len() > 50, "tile {t} looks blank ({} colours)", seen.len());
        // The frame (2 pixels left of the photo area, mid-height) has the relevance colour.
        let frame = img.get_pixel(x - 2, y + s / 2).0;
        if t["role"] == "neighbour" {
            assert_eq!(frame, colour(t["relevance"].as_f64().unwrap(), tau), "{t}");
        }
    }
    let svg_path = tmp.path().join("fig.svg");
    base(&store, &data, "figure")
        .args(["--pick", "random:3", "-k", "2", "--out"])
        .arg(&svg_path)
        .assert()
        .success();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(svg.matches("<image ").count(), 3 * (1 + 2 * 2));

    // 4. The HTML report from the saved JSON, in a real browser.
    let html = tmp.path().join("report.html");
    embtui()
        .args(["report", "--gallery", "4", "--from"])
        .arg(&eval_json)
        .arg("--out")
        .arg(&html)
        .assert()
        .success();
    let browser = require!(chromium());
    check_in_browser(&browser, &html, tmp.path(), 4 * (1 + 2 * 5));
}

/// Debian's chromium (or Chrome), for the HTML report.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(o) = std::process::Command::new("which").arg(name).output() {
            if o.status.success() {
                return Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
            }
        }
    }
    common::missing("chromium is not installed (apt-get install chromium); the HTML report test needs a real browser")
}

fn headless(browser: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(browser);
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]);
    c
}

/// Opens the report: a screenshot that is not blank, and (in a copy with a probe script that
/// runs after the load event) the DOM's tables, charts and images, every one loaded.
fn check_in_browser(browser: &Path, html: &Path, tmp: &Path, images: usize) {
    let shot = tmp.join("shot.png");
    let st = headless(browser)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let img = image::open(&shot).unwrap().to_rgb8();
    let colours: std::collections::BTreeSet<[u8; 3]> =
        img.pixels().step_by(7).map(|p| p.0).collect();
    assert!(colours.len() > 500, "screenshot looks blank: {} colours", colours.len());

    let probe = "<script>addEventListener('load',()=>{const im=[...document.images];\
        const p=document.createElement('pre');p.id='probe';p.textContent='images='+im.length+\
        ' loaded='+im.filter(i=>i.complete&&i.naturalWidth>0).length+\
        ' rows='+document.querySelectorAll('#metrics tbody tr').length+\
        ' lines='+document.querySelectorAll('svg.chart polyline').length+\
        ' histograms='+document.querySelectorAll('svg.histogram').length;\
        document.body.appendChild(p)})</script></body>";
    let probed = tmp.join("probed.html");
    std::fs::write(&probed, std::fs::read_to_string(html).unwrap().replace("</body>", probe))
        .unwrap();
    let out = headless(browser)
        .arg("--virtual-time-budget=10000")
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let probe = dom.split("<pre id=\"probe\">").nth(1).and_then(|s| s.split("</pre>").next());
    // 2 models + random + oracle rows; 2 charts × (2 models + random) lines; 2 histograms.
    assert_eq!(
        probe,
        Some(format!("images={images} loaded={images} rows=4 lines=6 histograms=2").as_str()),
        "{dom:.2000}"
    );
}

#[test]
fn bad_figure_and_report_arguments_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let out = embtui()
        .args(["figure", "--dataset", d, "--model", "a,b", "--out", "fig.jpg"])
        .output()
        .unwrap();
    common::fails_with(&out, 2, "--out fig.jpg: name a .png or .svg file (or pass --svg)");
    let out = embtui()
        .args(["figure", "--dataset", d, "--model", "a", "--out"])
        .arg(tmp.path().join("f.png"))
        .output()
        .unwrap();
    common::fails_with(&out, 2, "--pick disagree compares models: name two or more");
    let out = embtui()
        .args(["figure", "--dataset", d, "--model", "a", "--pick", "often:3", "--out", "f.png"])
        .output()
        .unwrap();
    common::fails_with(&out, 2, "\"often:3\": use disagree, disagree:N or random:N");
    let not_json = tmp.path().join("notes.json");
    std::fs::write(&not_json, "{\"hello\": 1}").unwrap();
    let out = embtui()
        .args(["report", "--from"])
        .arg(&not_json)
        .arg("--out")
        .arg(tmp.path().join("r.html"))
        .output()
        .unwrap();
    common::fails_with(
        &out,
        2,
        "is not an embtui eval report; write one with `embtui eval --json --out FILE`",
    );
}
