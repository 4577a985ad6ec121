//! The report as text for a terminal of any width: every line fits, the least important
//! columns go first (intervals on secondary metrics, then secondary metrics), model names are
//! shortened alike everywhere, and the metrics are those the TUI shows (at the largest k).

use std::fmt::Write;

use super::{ci_cell, EvalReport, ModelReport};
use crate::text::{fit, short_names};

/// The main metrics at the largest k, in order of importance.
pub(super) fn metric_names(r: &EvalReport) -> Vec<String> {
    let k = r.k.iter().max().copied().unwrap_or(10);
    vec![
        format!("ndcg@{k}"),
        format!("overlap@{k}"),
        format!("p@{k}"),
        "map@r".into(),
        "mrr".into(),
    ]
}

/// One layout of the table: which metrics, which with intervals, full or short names.
struct Shape {
    metrics: usize,
    intervals: usize,
    short: bool,
}

/// The metrics table (header, one row per model with the best marked `*`, random, oracle),
/// every line at most `width` characters.
pub fn metrics_lines(r: &EvalReport, width: usize) -> Vec<String> {
    let names_full: Vec<String> = r.models.iter().map(|m| m.name.clone()).collect();
    let names_short = short_names(&names_full, 12);
    let metrics = metric_names(r);
    let shapes = [
        Shape { metrics: 5, intervals: 5, short: false },
        Shape { metrics: 5, intervals: 5, short: true },
        Shape { metrics: 5, intervals: 1, short: true },
        Shape { metrics: 5, intervals: 0, short: true },
        Shape { metrics: 4, intervals: 0, short: true },
        Shape { metrics: 3, intervals: 0, short: true },
        Shape { metrics: 2, intervals: 0, short: true },
        Shape { metrics: 1, intervals: 0, short: true },
    ];
    let mut last = Vec::new();
    for s in &shapes {
        let names = if s.short { &names_short } else { &names_full };
        last = render(r, names, &metrics[..s.metrics], s.intervals);
        if last.iter().all(|l| l.chars().count() <= width) {
            return last;
        }
    }
    last.into_iter().map(|l| fit(&l, width)).collect()
}

fn render(r: &EvalReport, names: &[String], metrics: &[String], intervals: usize) -> Vec<String> {
    let best = best_model(r);
    let name_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(5).max(6) + 1;
    let cell = |m: &ModelReport, i: usize, key: &str| {
        m.metrics.get(key).map_or("-".into(), |s| {
            if i < intervals {
                ci_cell(s.mean, s.ci95)
            } else {
                format!("{:.3}", s.mean)
            }
        })
    };
    let widths: Vec<usize> = metrics
        .iter()
        .enumerate()
        .map(|(i, k)| k.len().max(if i < intervals { 17 } else { 5 }))
        .collect();
    let mut lines = Vec::new();
    let mut head = format!("{:<name_w$}", "model");
    for (k, w) in metrics.iter().zip(&widths) {
        let _ = write!(head, "  {k:>w$}");
    }
    lines.push(head);
    for (m, name) in r.models.iter().zip(names) {
        let mark = if best == Some(m.name.as_str()) { "*" } else { " " };
        let mut row = format!("{:<name_w$}", format!("{mark}{name}"));
        for (i, (k, w)) in metrics.iter().zip(&widths).enumerate() {
            let _ = write!(row, "  {:>w$}", cell(m, i, k));
        }
        lines.push(row);
    }
    for (label, b) in [(" random", &r.baselines.random), (" oracle", &r.baselines.oracle)] {
        let mut row = format!("{label:<name_w$}");
        for (k, w) in metrics.iter().zip(&widths) {
            let v = b.get(k).map_or("-".into(), |v| format!("{v:.3}"));
            let _ = write!(row, "  {v:>w$}");
        }
        lines.push(row);
    }
    lines
}

pub(super) fn best_model(r: &EvalReport) -> Option<&str> {
    let key = metric_names(r).swap_remove(0);
    r.models
        .iter()
        .max_by(|a, b| {
            let m = |x: &ModelReport| x.metrics.get(&key).map_or(0.0, |s| s.mean);
            m(a).total_cmp(&m(b))
        })
        .map(|m| m.name.as_str())
}

/// "p = 0.012", or "p ≤ 0.001" when no permutation was as extreme (the test's floor).
pub fn p_value(p: f64, resamples: usize) -> String {
    let floor = 1.0 / (resamples + 1) as f64;
    if p <= floor + 1e-12 {
        format!("p ≤ {floor:.3}")
    } else {
        format!("p = {p:.3}")
    }
}

/// Where each model's vectors came from and this run's share, one line per model.
fn provenance_lines(r: &EvalReport, names: &[String], width: usize) -> Vec<String> {
    let name_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(5).max(6);
    let full = |m: &ModelReport, n: &str| {
        let speed = m.images_per_second.map_or("-".into(), |x| format!("{x:.1}"));
        let run = if m.reused_vectors {
            format!("reused {}", m.cached)
        } else {
            format!("{} new, {} reused", m.embedded, m.cached)
        };
        (
            format!(" {n:<name_w$}  {:>10}  {speed:>8}  {run:<20}", m.device),
            format!("  {:>8.3}", m.ann.recall_at_10),
        )
    };
    let head = (
        format!(" {:<name_w$}  {:>10}  {:>8}  {:<20}", "vectors", "device", "images/s", "this run"),
        format!("  {:>8}", "ANN r@10"),
    );
    let mut rows = vec![head];
    rows.extend(r.models.iter().zip(names).map(|(m, n)| full(m, n)));
    let with_ann = rows.iter().all(|(a, b)| a.chars().count() + b.chars().count() <= width);
    rows.into_iter()
        .map(|(a, b)| if with_ann { format!("{a}{b}") } else { fit(a.trim_end(), width) })
        .collect()
}

/// The whole report for a terminal `width` columns wide.
pub fn table(r: &EvalReport, width: usize) -> String {
    let mut out = String::new();
    let head = format!(
        ": {} images, {}, relevance {} τ={}",
        r.dataset.images,
        r.dataset.queries_label(),
        r.relevance.method,
        r.relevance.threshold
    );
    let root_room = width.saturating_sub(head.chars().count() + 8 + r.dataset.format.len() + 3);
    let line =
        format!("dataset {} ({}){head}", fit(&r.dataset.root, root_room.max(6)), r.dataset.format);
    let _ = writeln!(out, "{}", fit(&line, width));
    for l in metrics_lines(r, width) {
        let _ = writeln!(out, "{l}");
    }
    let names = short_names(&r.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(), 12);
    let _ = writeln!(out);
    for l in provenance_lines(r, &names, width) {
        let _ = writeln!(out, "{}", l.trim_end());
    }
    let key = metric_names(r).swap_remove(0);
    if !r.comparisons.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            fit(&format!("paired differences in {key} (permutation test):"), width)
        );
        let short = |n: &str| {
            r.models.iter().position(|m| m.name == n).map_or(n.to_owned(), |i| names[i].clone())
        };
        for c in &r.comparisons {
            let p = p_value(c.p_value, r.relevance.bootstrap_resamples);
            let line = format!("  {} − {}: {:+.4} ({p})", short(&c.a), short(&c.b), c.delta);
            let _ = writeln!(out, "{}", fit(&line, width));
        }
    }
    let note =
        format!("* best on {key}; [95% bootstrap interval]; every metric at every k: --json");
    let _ = writeln!(out, "{}", fit(&note, width));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::report;

    #[test]
    fn p_values_at_the_permutation_floor_are_bounds() {
        assert_eq!(p_value(1.0 / 1001.0, 1000), "p ≤ 0.001");
        assert_eq!(p_value(0.396, 1000), "p = 0.396");
    }

    #[test]
    fn every_line_fits_and_narrow_terminals_lose_intervals_first() {
        let r = report(0.45);
        for w in [40, 60, 80, 120, 200] {
            let t = table(&r, w);
            assert!(t.lines().all(|l| l.chars().count() <= w), "width {w}:\n{t}");
        }
        assert!(table(&r, 120).contains("0.450 [.440,.460]"));
        assert!(metrics_lines(&r, 40).iter().all(|l| !l.contains('[')));
    }
}
