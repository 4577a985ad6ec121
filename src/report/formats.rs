//! The report as a leaderboard for other tools: a Markdown table (READMEs, pull-request
//! comments) and tidy CSV (spreadsheets, pandas: one row per model and metric).

use std::fmt::Write;

use super::table::{best_model, metric_names};
use super::EvalReport;
use crate::text::sanitize;

/// Every metric of the report in a stable order: nDCG, overlap and p at each k (ascending),
/// then MAP@R and MRR; only those some model has.
pub fn all_metrics(r: &EvalReport) -> Vec<String> {
    let mut ks = r.k.clone();
    ks.sort_unstable();
    let mut names: Vec<String> = Vec::new();
    for family in ["ndcg", "overlap", "p"] {
        names.extend(ks.iter().map(|k| format!("{family}@{k}")));
    }
    names.extend(["map@r".to_owned(), "mrr".to_owned()]);
    names.retain(|n| r.models.iter().any(|m| m.metrics.contains_key(n)));
    names
}

/// Markdown text without table-breaking characters.
fn md_cell(s: &str) -> String {
    sanitize(s).replace('|', "\\|")
}

/// A Markdown table: one row per model (the best in bold), then the random and oracle
/// baselines; the main metric with its 95% interval; a line saying what was measured.
pub fn markdown(r: &EvalReport) -> String {
    let metrics = metric_names(r);
    let best = best_model(r);
    let mut s = String::from("| model |");
    for (i, m) in metrics.iter().enumerate() {
        s += &if i == 0 { format!(" {m} (95% CI) |") } else { format!(" {m} |") };
    }
    s += "\n|---|";
    s += &"---:|".repeat(metrics.len());
    s.push('\n');
    for m in &r.models {
        let bold = |x: String| if best == Some(m.name.as_str()) { format!("**{x}**") } else { x };
        let _ = write!(s, "| {} |", bold(md_cell(&m.name)));
        for (i, key) in metrics.iter().enumerate() {
            let cell = match m.metrics.get(key) {
                Some(st) if i == 0 => {
                    format!(
                        "{} [{:.3}, {:.3}]",
                        bold(format!("{:.3}", st.mean)),
                        st.ci95[0],
                        st.ci95[1]
                    )
                }
                Some(st) => format!("{:.3}", st.mean),
                None => "–".into(),
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    for (name, vals) in [("random", &r.baselines.random), ("oracle", &r.baselines.oracle)] {
        let _ = write!(s, "| *{name}* |");
        for key in &metrics {
            let _ = write!(s, " {} |", vals.get(key).map_or("–".into(), |v| format!("*{v:.3}*")));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\n{} images ({}) of `{}` ({}); caption relevance {} τ = {}; {} bootstrap resamples; embtui {}.",
        r.dataset.images,
        r.dataset.queries_label(),
        md_cell(&r.dataset.root),
        r.dataset.format,
        r.relevance.method,
        r.relevance.threshold,
        r.relevance.bootstrap_resamples,
        r.environment.embtui_version
    );
    s
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    let s = sanitize(s);
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Tidy CSV: `model,metric,mean,ci_low,ci_high` for every model and metric, then the
/// baselines as models `random` and `oracle` (no interval).
pub fn csv(r: &EvalReport) -> String {
    let mut s = String::from("model,metric,mean,ci_low,ci_high\n");
    let metrics = all_metrics(r);
    for m in &r.models {
        for key in &metrics {
            if let Some(st) = m.metrics.get(key) {
                let _ = writeln!(
                    s,
                    "{},{key},{:.6},{:.6},{:.6}",
                    csv_field(&m.name),
                    st.mean,
                    st.ci95[0],
                    st.ci95[1]
                );
            }
        }
    }
    for (name, vals) in [("random", &r.baselines.random), ("oracle", &r.baselines.oracle)] {
        for key in &metrics {
            if let Some(v) = vals.get(key) {
                let _ = writeln!(s, "{name},{key},{v:.6},,");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::report;
    use crate::report::Stat;

    #[test]
    fn markdown_has_one_row_per_model_and_baseline() {
        let mut r = report(0.45);
        r.models[0].name = "a|b".into();
        r.baselines.random.insert("ndcg@10".into(), 0.1);
        let md = markdown(&r);
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 2 + 1 + 2, "{md}");
        assert!(rows[2].starts_with("| **a\\|b** | **0.450** [0.440, 0.460] |"), "{md}");
        assert!(rows[3].starts_with("| *random* | *0.100* |"), "{md}");
    }

    #[test]
    fn csv_is_tidy_and_quotes_names() {
        let mut r = report(0.45);
        r.models[0].name = "m,\"x\"".into();
        r.models[0].metrics.insert("p@10".into(), Stat { mean: 0.25, ci95: [0.2, 0.3] });
        r.baselines.oracle.insert("p@10".into(), 0.9);
        let c = csv(&r);
        assert_eq!(
            c,
            "model,metric,mean,ci_low,ci_high\n\"m,\"\"x\"\"\",ndcg@10,0.450000,0.440000,0.460000\n\"m,\"\"x\"\"\",p@10,0.250000,0.200000,0.300000\noracle,p@10,0.900000,,\n"
        );
    }
}
