//! The report as one self-contained HTML file: no scripts, no network, thumbnails embedded as
//! `data:` JPEGs, charts as inline SVG; it prints (blocks never split across pages).
//!
//! Sections: what was measured; the metrics table with intervals and baselines; paired
//! comparisons; nDCG@k and p@k curves; the distribution of per-query scores per model; a
//! gallery of the queries where the models disagree most (the figure's blocks); environment.
//! The last two need `per_query` (`eval --per-query`, or `eval --html`).

use std::fmt::Write;

use image::RgbImage;

use super::figure::{data_uri, xml_escape as esc};
use super::formats::all_metrics;
use super::table::{best_model, metric_names, p_value};
use super::{most_disagreeing, relevance_rgb, EvalReport, QueryResult};

/// Colours of the models' lines and bars (then repeated).
const PALETTE: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

/// Neighbours per model row in the gallery (as in the article's figure).
const GALLERY_K: usize = 5;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1180px;color:#1e1e1e;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555}table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #e4e4e4;text-align:right}
td:first-child,th:first-child{text-align:left}tr.baseline td{color:#666;font-style:italic}.best{font-weight:bold}
.ci{color:#777;font-size:.85em}.charts{display:flex;flex-wrap:wrap;gap:1.5rem}figure{margin:0}
.block{border-top:1px solid #ccc;padding:.8rem 0;break-inside:avoid;page-break-inside:avoid}
.row{display:flex;align-items:center;gap:8px;margin:4px 0}.label{flex:0 0 170px;font-weight:bold;overflow-wrap:anywhere}
.tile{flex:0 0 112px;text-align:center;font-size:.8rem}#comparisons td:nth-child(-n+3),#comparisons th:nth-child(-n+3){text-align:left}.tile img{width:104px;height:104px;object-fit:contain;background:#ececec;border:4px solid;display:block}
.score{flex:0 0 110px;font-size:.85rem;color:#555}.score b{color:#1e1e1e;font-size:1rem}.caption{max-width:700px}
code{font-size:.9em}@media print{body{margin:0;max-width:none}h2{break-after:avoid}}
";

/// The HTML report. `thumb` gives a thumbnail per image name (None: the tile says so);
/// `gallery` is how many disagreement queries to show.
pub fn render(
    r: &EvalReport,
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
    gallery: usize,
) -> anyhow::Result<String> {
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = writeln!(
        s,
        "<title>embtui evaluation · {}</title><style>{STYLE}</style></head><body>",
        esc(&r.dataset.root)
    );
    header(&mut s, r);
    check_section(&mut s, r, thumb)?;
    metrics_table(&mut s, r);
    comparisons(&mut s, r);
    curves(&mut s, r);
    distributions(&mut s, r);
    disagreements(&mut s, r, thumb, gallery)?;
    environment(&mut s, r);
    s.push_str("</body></html>\n");
    Ok(s)
}

fn header(s: &mut String, r: &EvalReport) {
    let d = &r.dataset;
    let rel = &r.relevance;
    let _ = write!(
        s,
        "<h1>Which embedding model to trust: {}</h1>\n<p class=\"meta\"><code>{}</code> ({}) · {} images, {} ({} with no relevant image at τ) · caption relevance <b>{}</b>, τ = {} ({}) · 95% intervals from {} bootstrap resamples of the queries",
        models_line(r),
        esc(&d.root),
        esc(&d.format),
        d.images,
        d.queries_label(),
        d.queries_without_relevant,
        esc(&rel.method),
        rel.threshold,
        esc(&rel.threshold_source),
        rel.bootstrap_resamples,
    );
    if !d.skipped.is_empty() {
        let _ = write!(s, " · {} images skipped (unreadable)", d.skipped.len());
    }
    s.push_str("</p>\n");
}

fn models_line(r: &EvalReport) -> String {
    r.models.iter().map(|m| esc(&m.name)).collect::<Vec<_>>().join(" vs ")
}

fn metrics_table(s: &mut String, r: &EvalReport) {
    let metrics = metric_names(r);
    let best = best_model(r);
    s.push_str("<h2>Metrics</h2>\n<table id=\"metrics\"><thead><tr><th>model</th>");
    for m in &metrics {
        let _ = write!(s, "<th>{}</th>", esc(m));
    }
    s.push_str("</tr></thead><tbody>\n");
    for m in &r.models {
        let class = if best == Some(m.name.as_str()) { " class=\"best\"" } else { "" };
        let _ = write!(s, "<tr{class}><td>{}</td>", esc(&m.name));
        for key in &metrics {
            match m.metrics.get(key) {
                Some(st) => {
                    let _ = write!(
                        s,
                        "<td>{:.3} <span class=\"ci\">[{:.3}, {:.3}]</span></td>",
                        st.mean, st.ci95[0], st.ci95[1]
                    );
                }
                None => s.push_str("<td>–</td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    for (name, vals) in [("random", &r.baselines.random), ("oracle", &r.baselines.oracle)] {
        let _ = write!(s, "<tr class=\"baseline\"><td>{name}</td>");
        for key in &metrics {
            let _ =
                write!(s, "<td>{}</td>", vals.get(key).map_or("–".into(), |v| format!("{v:.3}")));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n<p class=\"meta\">nDCG and overlap use graded caption relevance; p@k, MAP@R and MRR count a neighbour relevant at relevance ≥ τ. Random: the expected value of a random ranking; oracle: candidates sorted by caption relevance.</p>\n");
}

fn comparisons(s: &mut String, r: &EvalReport) {
    if r.comparisons.is_empty() {
        return;
    }
    s.push_str("<h2>Paired comparisons</h2>\n<table id=\"comparisons\"><thead><tr><th>a</th><th>b</th><th>metric</th><th>a − b</th><th>p (paired permutation)</th></tr></thead><tbody>\n");
    for c in &r.comparisons {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:+.3}</td><td>{}</td></tr>",
            esc(&c.a),
            esc(&c.b),
            esc(&c.metric),
            c.delta,
            esc(&p_value(c.p_value, r.relevance.bootstrap_resamples))
        );
    }
    s.push_str("</tbody></table>\n");
}

/// One line chart: y in [0, 1] against the report's k, a line per model, random dashed.
fn line_chart(r: &EvalReport, family: &str, title: &str) -> String {
    let (w, h, left, bottom, top, right) = (520.0, 260.0, 44.0, 34.0, 24.0, 190.0);
    let mut ks = r.k.clone();
    ks.sort_unstable();
    let x_of = |i: usize| {
        if ks.len() < 2 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (ks.len() - 1) as f64
        }
    };
    let y_of = |v: f64| top + (h - top - bottom) * (1.0 - v.clamp(0.0, 1.0));
    let mut s = format!(
        "<svg class=\"chart\" data-metric=\"{family}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"11\"><text x=\"{left}\" y=\"14\" font-weight=\"bold\">{title}</text>"
    );
    for tick in 0..=5 {
        let v = f64::from(tick) / 5.0;
        let y = y_of(v);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text>",
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    for (i, k) in ks.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">k={k}</text>",
            x_of(i),
            h - 12.0
        );
    }
    let mut series: Vec<(String, Vec<Option<f64>>, &str, bool)> = r
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let vals = ks
                .iter()
                .map(|k| m.metrics.get(&format!("{family}@{k}")).map(|st| st.mean))
                .collect();
            (m.name.clone(), vals, PALETTE[i % PALETTE.len()], false)
        })
        .collect();
    let random =
        ks.iter().map(|k| r.baselines.random.get(&format!("{family}@{k}")).copied()).collect();
    series.push(("random".into(), random, "#888888", true));
    for (j, (name, vals, colour, dashed)) in series.iter().enumerate() {
        let points: Vec<String> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x_of(i), y_of(v))))
            .collect();
        let dash = if *dashed { " stroke-dasharray=\"5 4\"" } else { "" };
        let _ = write!(
            s,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            points.join(" ")
        );
        for p in &points {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>");
        }
        let ly = top + 14.0 * j as f64;
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"10\" height=\"3\" fill=\"{colour}\"/><text x=\"{}\" y=\"{:.1}\">{}</text>",
            w - right + 8.0,
            ly + 2.0,
            w - right + 22.0,
            ly + 6.0,
            esc(&crate::text::fit(name, 26))
        );
    }
    s.push_str("</svg>");
    s
}

fn curves(s: &mut String, r: &EvalReport) {
    s.push_str("<h2>Metrics at each k</h2>\n<div class=\"charts\">");
    for (family, title) in [("ndcg", "nDCG@k"), ("p", "precision@k (relevance ≥ τ)")] {
        let _ = write!(s, "<figure>{}</figure>", line_chart(r, family, title));
    }
    s.push_str("</div>\n");
}

/// Per model, a histogram of the per-query main metric in 20 bins of 0.05, with its mean.
fn distributions(s: &mut String, r: &EvalReport) {
    let metric = r.main_metric();
    let _ = writeln!(s, "<h2>Per-query {} per model</h2>", esc(&metric));
    if r.per_query.is_empty() {
        s.push_str("<p class=\"meta\">Not in this report: it was made without per-query scores (<code>embtui eval … --per-query --json --out FILE</code>).</p>\n");
        return;
    }
    s.push_str("<div class=\"charts\">");
    let (w, h, pad) = (360.0, 150.0, 24.0);
    for (i, m) in r.models.iter().enumerate() {
        let vals: Vec<f64> = r
            .per_query
            .iter()
            .filter_map(|q| q.models.get(&m.name)?.metrics.get(&metric).copied())
            .collect();
        let mut bins = [0usize; 20];
        for v in &vals {
            bins[((v.clamp(0.0, 1.0) * 20.0) as usize).min(19)] += 1;
        }
        let most = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
        let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
        let colour = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            "<figure><svg class=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"11\"><text x=\"4\" y=\"14\" font-weight=\"bold\">{} · mean {mean:.3} · {} queries</text>",
            esc(&m.name),
            vals.len()
        );
        let bw = (w - 2.0 * pad) / 20.0;
        for (b, &c) in bins.iter().enumerate() {
            let bh = (h - 2.0 * pad - 8.0) * c as f64 / most;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{:.2}–{:.2}: {c}</title></rect>",
                pad + bw * b as f64,
                h - pad - bh,
                bw - 1.0,
                b as f64 / 20.0,
                (b + 1) as f64 / 20.0
            );
        }
        let mx = pad + (w - 2.0 * pad) * mean.clamp(0.0, 1.0);
        let _ = write!(
            s,
            "<line x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#1e1e1e\" stroke-dasharray=\"3 2\"/><text x=\"{pad}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">0.5</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">1</text></svg></figure>",
            pad + 4.0,
            h - pad,
            h - 8.0,
            w / 2.0,
            h - 8.0,
            w - pad,
            h - 8.0
        );
    }
    s.push_str("</div>\n");
}

fn disagreements(
    s: &mut String,
    r: &EvalReport,
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
    n: usize,
) -> anyhow::Result<()> {
    let metric = r.main_metric();
    let _ = writeln!(s, "<h2>Where the models disagree most</h2>");
    if r.per_query.is_empty() {
        s.push_str(
            "<p class=\"meta\">Not in this report: it was made without per-query results.</p>\n",
        );
        return Ok(());
    }
    let _ = writeln!(
        s,
        "<p class=\"meta\">The {n} queries with the largest spread of per-query {} between models, each model's top {GALLERY_K}. Frames: caption relevance of the pair (green ≥ τ = {}, amber ≥ τ/3, red below).</p>",
        esc(&metric),
        r.relevance.threshold
    );
    for i in most_disagreeing(&r.per_query, &metric, n) {
        block(s, r, &r.per_query[i], thumb, &metric)?;
    }
    Ok(())
}

fn img(
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
    name: &str,
    border: &str,
) -> anyhow::Result<String> {
    Ok(match thumb(name) {
        Some(t) => format!(
            "<img src=\"{}\" alt=\"{n}\" title=\"{n}\" style=\"border-color:{border}\">",
            data_uri(&t)?,
            n = esc(name)
        ),
        None => format!("<div class=\"missing\">{} (not found)</div>", esc(name)),
    })
}

fn block(
    s: &mut String,
    r: &EvalReport,
    q: &QueryResult,
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
    metric: &str,
) -> anyhow::Result<()> {
    let _ = writeln!(
        s,
        "<div class=\"block\"><div class=\"row\"><div class=\"label\">query<br><small>{}</small></div><div class=\"tile\">{}</div><div class=\"caption\">“{}”<br><small>{} relevant images at τ</small></div></div>",
        esc(&q.image),
        img(thumb, &q.image, "#3c5aaa")?,
        esc(&q.caption),
        q.relevant
    );
    for m in &r.models {
        let Some(qm) = q.models.get(&m.name) else { continue };
        let score = qm.metrics.get(metric).copied().unwrap_or(0.0);
        neighbour_row(s, r, &esc(&m.name), &qm.top, thumb, metric, score)?;
    }
    s.push_str("</div>\n");
    Ok(())
}

/// The regression check (`eval --check … --out`): verdicts, then each query that got worse with
/// the baseline's neighbours above today's.
fn check_section(
    s: &mut String,
    r: &EvalReport,
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
) -> anyhow::Result<()> {
    let Some(c) = &r.check else { return Ok(()) };
    let _ = writeln!(
        s,
        "<h2>Regression check against {}: {}</h2>\n<p class=\"meta\">{}; tolerance {}, α {}.</p>",
        esc(&c.baseline),
        if c.passed { "passed" } else { "FAILED" },
        if c.evidence == "paired" {
            "Paired per-query test (sign-flip permutation)"
        } else {
            "Means only (the baseline has no per-query scores)"
        },
        c.tolerance,
        c.alpha
    );
    s.push_str("<table><thead><tr><th>model</th><th>metric</th><th>baseline</th><th>now</th><th>Δ [95% CI]</th><th>p</th><th>verdict</th></tr></thead><tbody>\n");
    for m in &c.models {
        for x in &m.metrics {
            let ci = x.ci95.map_or(String::new(), |[a, b]| {
                format!(" <span class=\"ci\">[{a:+.4}, {b:+.4}]</span>")
            });
            let p = x.p_value.map_or("-".into(), |p| format!("{p:.3}"));
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:+.4}{ci}</td><td>{p}</td><td title=\"{}\">{}</td></tr>",
                esc(&m.name),
                esc(&x.metric),
                x.baseline,
                x.current,
                x.delta,
                esc(&x.why),
                if x.verdict == "fail" { "<b>fail</b>".into() } else { esc(&x.verdict) }
            );
        }
    }
    s.push_str("</tbody></table>\n");
    for m in c.models.iter().filter(|m| m.file_changed()) {
        let _ = writeln!(
            s,
            "<p class=\"meta\">{}: ONNX file changed, sha256 <code>{}</code> (baseline) → <code>{}</code> (now).</p>",
            esc(&m.name),
            esc(&m.baseline_sha256),
            esc(&m.current_sha256)
        );
    }
    for m in c.models.iter().filter(|m| !m.worse.is_empty()) {
        let _ = writeln!(s, "<h3>Queries that got worse: {}</h3>", esc(&m.name));
        for w in &m.worse {
            worse_block(s, r, w, thumb)?;
        }
    }
    Ok(())
}

/// One query that got worse: its photo and caption, the baseline's neighbours, today's.
fn worse_block(
    s: &mut String,
    r: &EvalReport,
    w: &crate::report::check::WorseQuery,
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
) -> anyhow::Result<()> {
    let _ = writeln!(
        s,
        "<div class=\"block\"><div class=\"row\"><div class=\"label\">query<br><small>{}</small></div><div class=\"tile\">{}</div><div class=\"caption\">“{}”<br><small>{} {:.3} → {:.3}</small></div></div>",
        esc(&w.image),
        img(thumb, &w.image, "#3c5aaa")?,
        esc(&w.caption),
        esc(&w.metric),
        w.baseline,
        w.current
    );
    for (label, top, score) in
        [("baseline", &w.baseline_top, w.baseline), ("now", &w.current_top, w.current)]
    {
        neighbour_row(s, r, label, top, thumb, &w.metric, score)?;
    }
    s.push_str("</div>\n");
    Ok(())
}

/// One row of a block: a label, the top neighbours framed by caption relevance, the score.
fn neighbour_row(
    s: &mut String,
    r: &EvalReport,
    label: &str,
    top: &[super::Hit],
    thumb: &dyn Fn(&str) -> Option<RgbImage>,
    metric: &str,
    score: f64,
) -> anyhow::Result<()> {
    let _ = write!(s, "<div class=\"row\"><div class=\"label\">{label}</div>");
    for (rank, h) in top.iter().take(GALLERY_K).enumerate() {
        let [red, green, blue] = relevance_rgb(h.relevance, r.relevance.threshold);
        let colour = format!("#{red:02x}{green:02x}{blue:02x}");
        let _ = write!(
            s,
            "<div class=\"tile\">{}<span style=\"color:{colour}\">{}. rel {:.3}</span></div>",
            img(thumb, &h.image, &colour)?,
            rank + 1,
            h.relevance
        );
    }
    let _ = writeln!(s, "<div class=\"score\">{}<br><b>{score:.3}</b></div></div>", esc(metric));
    Ok(())
}

fn environment(s: &mut String, r: &EvalReport) {
    let e = &r.environment;
    let _ = write!(
        s,
        "<h2>Environment</h2>\n<table id=\"environment\"><tbody><tr><td>embtui</td><td>{}</td></tr><tr><td>ONNX Runtime</td><td>{}</td></tr><tr><td>CPU</td><td>{} ({} threads)</td></tr><tr><td>GPU</td><td>{}</td></tr>",
        esc(&e.embtui_version),
        esc(e.onnxruntime_version.as_deref().unwrap_or("not loaded")),
        esc(&e.cpu),
        e.threads,
        esc(e.gpu.as_deref().unwrap_or("none"))
    );
    for m in &r.models {
        let speed = m.images_per_second.map_or(String::new(), |v| format!(", {v:.1} images/s"));
        let _ = write!(
            s,
            "<tr><td>{}</td><td>vectors on {}{speed}; {} dimensions; ONNX sha256 {}…{}</td></tr>",
            esc(&m.name),
            esc(&m.device),
            m.dim,
            esc(&m.onnx_sha256.chars().take(12).collect::<String>()),
            if m.source.is_empty() {
                String::new()
            } else {
                format!("; weights {}", esc(&m.source))
            }
        );
    }
    let _ = writeln!(
        s,
        "</tbody></table>\n<p class=\"meta\">Metrics: {}. Made by embtui {}.</p>",
        all_metrics(r).join(", "),
        esc(&e.embtui_version)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::report;
    use crate::report::{Hit, QueryModel};

    fn with_queries(n: usize) -> EvalReport {
        let mut r = report(0.45);
        r.per_query = (0..n)
            .map(|i| QueryResult {
                image: format!("q{i}.jpg"),
                caption: "a <b>dog</b> \u{1b}]52;c;x\u{7}".into(),
                relevant: 3,
                models: [(
                    "m".to_owned(),
                    QueryModel {
                        metrics: [("ndcg@10".to_owned(), i as f64 / n as f64)].into(),
                        top: vec![Hit { image: "n.jpg".into(), cosine: 0.8, relevance: 0.6 }],
                    },
                )]
                .into(),
            })
            .collect();
        r
    }

    #[test]
    fn sections_images_and_escaping() {
        let r = with_queries(4);
        let photo = RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
        let html = render(&r, &|_| Some(photo.clone()), 2).unwrap();
        for id in [
            "id=\"metrics\"",
            "data-metric=\"ndcg\"",
            "data-metric=\"p\"",
            "class=\"histogram\"",
            "id=\"environment\"",
        ] {
            assert!(html.contains(id), "{id} missing");
        }
        // 2 gallery blocks of one query and one neighbour tile each.
        assert_eq!(html.matches("<div class=\"block\">").count(), 2);
        assert_eq!(html.matches("<img src=\"data:image/jpeg;base64,").count(), 4);
        assert!(
            html.contains("a &lt;b&gt;dog&lt;/b&gt;")
                && !html.contains('\u{1b}')
                && !html.contains("<b>dog")
        );
        // Nothing is fetched: the only URL is the SVG namespace.
        assert_eq!(
            html.matches("http").count(),
            html.matches("http://www.w3.org/2000/svg").count()
        );
    }

    #[test]
    fn without_per_query_it_says_how_to_get_them() {
        let html = render(&report(0.45), &|_| None, 6).unwrap();
        assert!(html.contains("--per-query") && !html.contains("<div class=\"block\">"));
    }
}
