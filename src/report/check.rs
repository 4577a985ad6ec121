//! The regression check (`eval --check BASELINE`): per model and metric, baseline → now, the
//! paired difference over the same queries with its 95% interval and a paired sign-flip
//! permutation p-value, and the verdict: a metric fails when it dropped by more than the
//! tolerance **and** the drop is significant at α. Without per-query scores in the baseline
//! only the means can be compared (the fixed-tolerance rule, said so). Also: the queries
//! that got worse, and the check as JUnit XML (one test case per model × metric) and as a
//! Markdown job summary (GitHub's `$GITHUB_STEP_SUMMARY`).

use serde::{Deserialize, Serialize};

use super::{EvalReport, Hit, QueryResult};
use crate::metrics::{mean_ci_many, paired_permutation};

/// How a check decides.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub tolerance: f64,
    pub alpha: f64,
    /// How many of the worst queries to list per model.
    pub worst: usize,
    pub resamples: usize,
    pub seed: u64,
}

/// The outcome of a check, as `eval --check` prints it and the report's `check` field keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckReport {
    pub baseline: String,
    pub tolerance: f64,
    pub alpha: f64,
    /// `paired` (per-query scores of both runs) or `means` (the baseline has none).
    pub evidence: String,
    pub passed: bool,
    pub models: Vec<ModelCheck>,
}

/// One model of the baseline against the same name now.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelCheck {
    pub name: String,
    pub baseline_sha256: String,
    /// Empty when the model was not evaluated now.
    pub current_sha256: String,
    pub metrics: Vec<MetricCheck>,
    /// The queries whose main metric dropped most, largest drop first.
    pub worse: Vec<WorseQuery>,
}

impl ModelCheck {
    /// True when the model was evaluated now from another ONNX file than the baseline's.
    pub fn file_changed(&self) -> bool {
        !self.current_sha256.is_empty() && self.current_sha256 != self.baseline_sha256
    }
}

/// One metric's verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricCheck {
    pub metric: String,
    pub baseline: f64,
    /// NaN-free: absent metrics have `verdict` = "missing".
    pub current: f64,
    /// current − baseline (negative: a drop).
    pub delta: f64,
    /// 95% bootstrap interval of the paired mean difference (paired evidence only).
    pub ci95: Option<[f64; 2]>,
    /// Paired sign-flip permutation p-value (paired evidence only).
    pub p_value: Option<f64>,
    /// `pass`, `fail` or `missing`.
    pub verdict: String,
    pub why: String,
}

/// A query that got worse: its scores before and after and both runs' neighbours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WorseQuery {
    pub image: String,
    pub caption: String,
    pub metric: String,
    pub baseline: f64,
    pub current: f64,
    pub baseline_top: Vec<Hit>,
    pub current_top: Vec<Hit>,
}

/// Why this run's queries (`now`: size and seed of a sample, or every image when `None`) are not
/// drawn as the baseline's were, with the flags that draw them the same way; None when they
/// are. Means over different draws differ by chance alone, so a check refuses them.
pub fn other_draw(baseline: &EvalReport, now: Option<(usize, u64)>) -> Option<String> {
    let then = baseline.dataset.query_sample.as_ref();
    let (size, seed) = (now.map(|n| n.0), now.map_or(0, |n| n.1));
    match (then, size) {
        (None, None) => None,
        (Some(t), None) => Some(format!(
            "the baseline evaluated {} queries drawn with seed {} and this run every image; add --queries {} --seed {}",
            t.size, t.seed, t.size, t.seed
        )),
        (None, Some(n)) => Some(format!(
            "the baseline evaluated every image as a query ({}) and this run a sample of {n}; add --queries all",
            baseline.dataset.queries
        )),
        (Some(t), Some(n)) if t.size != n || t.seed != seed => Some(format!(
            "the baseline's queries are {} drawn with seed {} and this run's {n} drawn with seed {seed}; use --queries {} --seed {}",
            t.size, t.seed, t.size, t.seed
        )),
        (Some(t), Some(_)) if t.drawn != super::QUERY_DRAW => Some(format!(
            "the baseline's queries were drawn another way ({}); make the baseline again with this version",
            crate::text::sanitize(&t.drawn)
        )),
        (Some(_), Some(_)) => None,
    }
}

/// Why a baseline's per-query list cannot be paired with this run's (another sample of
/// queries), or None when they are the same queries in the same order.
pub fn unpaired(current: &[QueryResult], baseline: &[QueryResult]) -> Option<String> {
    if baseline.is_empty() {
        return None;
    }
    if current.len() != baseline.len() {
        return Some(format!(
            "the baseline scores {} queries and this run {}",
            baseline.len(),
            current.len()
        ));
    }
    current.iter().zip(baseline).position(|(c, b)| c.image != b.image).map(|i| {
        format!(
            "query {} is {} in the baseline but {} now",
            i + 1,
            crate::text::sanitize(&baseline[i].image),
            crate::text::sanitize(&current[i].image)
        )
    })
}

/// Checks `current` against `baseline` (same queries when both hold per-query scores: the
/// caller refuses unpaired lists first with [`unpaired`]).
pub fn check(
    current: &EvalReport,
    baseline: &EvalReport,
    path: &str,
    o: &CheckOptions,
) -> CheckReport {
    let paired = !baseline.per_query.is_empty() && !current.per_query.is_empty();
    let main = baseline.main_metric();
    let models: Vec<ModelCheck> = baseline
        .models
        .iter()
        .map(|b| {
            let Some(c) = current.models.iter().find(|m| m.name == b.name) else {
                return ModelCheck {
                    name: b.name.clone(),
                    baseline_sha256: b.onnx_sha256.clone(),
                    metrics: vec![MetricCheck {
                        metric: "(all)".into(),
                        verdict: "missing".into(),
                        why: "in the baseline but not evaluated now".into(),
                        ..MetricCheck::default()
                    }],
                    ..ModelCheck::default()
                };
            };
            let metrics = b
                .metrics
                .iter()
                .map(|(metric, bs)| match c.metrics.get(metric) {
                    None => MetricCheck {
                        metric: metric.clone(),
                        baseline: bs.mean,
                        verdict: "missing".into(),
                        why: "in the baseline but not computed now".into(),
                        ..MetricCheck::default()
                    },
                    Some(cs) if paired => {
                        let (now, then) =
                            pairs(&current.per_query, &baseline.per_query, &b.name, metric);
                        verdict(metric, bs.mean, cs.mean, Some((&now, &then)), o)
                    }
                    Some(cs) => verdict(metric, bs.mean, cs.mean, None, o),
                })
                .collect();
            ModelCheck {
                name: b.name.clone(),
                baseline_sha256: b.onnx_sha256.clone(),
                current_sha256: c.onnx_sha256.clone(),
                metrics,
                worse: if paired {
                    worse(current, baseline, &b.name, &main, o.worst)
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    CheckReport {
        baseline: path.to_owned(),
        tolerance: o.tolerance,
        alpha: o.alpha,
        evidence: if paired { "paired" } else { "means" }.into(),
        passed: models.iter().all(|m| m.metrics.iter().all(|x| x.verdict == "pass")),
        models,
    }
}

/// A metric's per-query values for `model` in both runs, over the queries where both have it
/// (MAP@R and MRR exist only where something is relevant), in query order.
fn pairs(
    now: &[QueryResult],
    then: &[QueryResult],
    model: &str,
    metric: &str,
) -> (Vec<f64>, Vec<f64>) {
    let value = |r: &QueryResult| r.models.get(model).and_then(|m| m.metrics.get(metric)).copied();
    now.iter().zip(then).filter_map(|(a, b)| Some((value(a)?, value(b)?))).unzip()
}

fn verdict(
    metric: &str,
    baseline: f64,
    current: f64,
    paired: Option<(&[f64], &[f64])>,
    o: &CheckOptions,
) -> MetricCheck {
    let drop = baseline - current;
    let mut m = MetricCheck {
        metric: metric.to_owned(),
        baseline,
        current,
        delta: current - baseline,
        ..MetricCheck::default()
    };
    let beyond = drop > o.tolerance;
    let Some((now, then)) = paired else {
        m.verdict = if beyond { "fail" } else { "pass" }.into();
        m.why = if beyond {
            format!("dropped {drop:.4} > tolerance {}", o.tolerance)
        } else {
            format!("within tolerance {}", o.tolerance)
        };
        return m;
    };
    let diffs: Vec<f64> = now.iter().zip(then).map(|(a, b)| a - b).collect();
    let (_, ci) = mean_ci_many(&[&diffs], o.resamples, o.seed)[0];
    let (_, p) = paired_permutation(now, then, o.resamples, o.seed);
    m.ci95 = Some(ci);
    m.p_value = Some(p);
    let significant = p < o.alpha;
    m.verdict = if beyond && significant { "fail" } else { "pass" }.into();
    m.why = match (beyond, significant) {
        (true, true) => format!("dropped {drop:.4} > tolerance {} and p = {p:.3} < α {}", o.tolerance, o.alpha),
        (true, false) => format!("dropped {drop:.4} > tolerance {} but p = {p:.3} ≥ α {}: a few queries moving, not a real drop", o.tolerance, o.alpha),
        (false, _) if drop > 0.0 => format!("dropped {drop:.4} ≤ tolerance {}", o.tolerance),
        (false, _) => "no drop".into(),
    };
    m
}

/// The `n` queries whose `metric` for `model` dropped most (drops only), largest first, ties
/// in query order.
fn worse(
    current: &EvalReport,
    baseline: &EvalReport,
    model: &str,
    metric: &str,
    n: usize,
) -> Vec<WorseQuery> {
    let mut drops: Vec<(usize, f64, f64)> = baseline
        .per_query
        .iter()
        .zip(&current.per_query)
        .enumerate()
        .filter_map(|(i, (b, c))| {
            let then = b.models.get(model)?.metrics.get(metric).copied()?;
            let now = c.models.get(model)?.metrics.get(metric).copied()?;
            (now < then).then_some((i, then, now))
        })
        .collect();
    drops.sort_by(|a, b| (b.1 - b.2).total_cmp(&(a.1 - a.2)).then(a.0.cmp(&b.0)));
    drops
        .into_iter()
        .take(n)
        .map(|(i, then, now)| {
            let (b, c) = (&baseline.per_query[i], &current.per_query[i]);
            WorseQuery {
                image: b.image.clone(),
                caption: b.caption.clone(),
                metric: metric.to_owned(),
                baseline: then,
                current: now,
                baseline_top: b.models.get(model).map(|m| m.top.clone()).unwrap_or_default(),
                current_top: c.models.get(model).map(|m| m.top.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

/// `MODEL METRIC: baseline → now, Δ d [lo, hi], p p: why`.
fn numbers(m: &ModelCheck, x: &MetricCheck) -> String {
    format!(
        "{} {}: {:.4} → {:.4}, Δ {:+.4}{}, p {}: {}",
        m.name,
        x.metric,
        x.baseline,
        x.current,
        x.delta,
        ci_text(x.ci95),
        p_text(x.p_value),
        x.why
    )
}

fn p_text(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{p:.3}"))
}

fn ci_text(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(String::new, |[a, b]| format!(" [{a:+.4}, {b:+.4}]"))
}

/// The check as lines for the terminal (untrusted names sanitised).
pub fn lines(c: &CheckReport) -> Vec<String> {
    let s = crate::text::sanitize;
    let mut out = vec![if c.evidence == "paired" {
        format!(
            "check against {}: paired per-query test (α {}, tolerance {})",
            s(&c.baseline),
            c.alpha,
            c.tolerance
        )
    } else {
        format!(
            "check against {}: the baseline has no per-query scores, so only means are compared (a drop beyond tolerance {} fails); make it with `embtui eval … --per-query --out BASELINE` for a paired test",
            s(&c.baseline),
            c.tolerance
        )
    }];
    for m in &c.models {
        if m.file_changed() {
            out.push(format!(
                "{}: ONNX file changed: sha256 {} (baseline) → {} (now)",
                s(&m.name),
                m.baseline_sha256,
                m.current_sha256
            ));
        }
        for x in &m.metrics {
            out.push(format!("{} {}", x.verdict.to_uppercase(), s(&numbers(m, x))));
        }
        for w in &m.worse {
            out.push(format!(
                "  worse {}: {} {:.3} → {:.3}  \"{}\"",
                w.metric,
                s(&w.image),
                w.baseline,
                w.current,
                s(&w.caption)
            ));
        }
    }
    out.push(if c.passed { "check passed".into() } else { "check FAILED".into() });
    out
}

fn xml(s: &str) -> String {
    crate::text::sanitize(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// JUnit XML: one test suite, one test case per model × metric (class = model), a failure
/// carrying the numbers; a missing model or metric is an error.
pub fn junit(c: &CheckReport) -> String {
    let cases: Vec<(&ModelCheck, &MetricCheck)> =
        c.models.iter().flat_map(|m| m.metrics.iter().map(move |x| (m, x))).collect();
    let failures = cases.iter().filter(|(_, x)| x.verdict == "fail").count();
    let errors = cases.iter().filter(|(_, x)| x.verdict == "missing").count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s += &format!(
        "<testsuites name=\"embtui eval --check\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">\n",
        cases.len()
    );
    s += &format!(
        "  <testsuite name=\"embtui regression check against {}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\">\n",
        xml(&c.baseline),
        cases.len()
    );
    for (m, x) in cases {
        let mut numbers = numbers(m, x);
        // A failed metric's text lists the queries that got worse on it, one a line.
        for w in m.worse.iter().filter(|w| w.metric == x.metric && x.verdict == "fail") {
            numbers += &format!(
                "\nworse: {} {:.3} → {:.3} \"{}\"",
                w.image, w.baseline, w.current, w.caption
            );
        }
        s += &format!(
            "    <testcase classname=\"embtui.{}\" name=\"{}\"",
            xml(&m.name),
            xml(&x.metric)
        );
        match x.verdict.as_str() {
            "fail" => {
                s += &format!(
                    ">\n      <failure message=\"{}\" type=\"regression\">{}</failure>\n    </testcase>\n",
                    xml(&x.why),
                    cdata(&numbers)
                );
            }
            "missing" => {
                s += &format!(
                    ">\n      <error message=\"{}\" type=\"missing\"/>\n    </testcase>\n",
                    xml(&x.why)
                );
            }
            _ => {
                s += &format!(
                    ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                    cdata(&numbers)
                );
            }
        }
    }
    s += "  </testsuite>\n</testsuites>\n";
    s
}

/// Text as a CDATA section (JUnit readers show it as is; `]]>` split across two sections).
fn cdata(s: &str) -> String {
    let clean: String = s.split('\n').map(crate::text::sanitize).collect::<Vec<_>>().join("\n");
    format!("<![CDATA[{}]]>", clean.replace("]]>", "]]]]><![CDATA[>"))
}

fn md(s: &str) -> String {
    crate::text::sanitize(s).replace('|', "\\|").replace('\n', " ")
}

/// A Markdown job summary: the verdict, a table of every metric, the queries that got worse.
pub fn summary(c: &CheckReport) -> String {
    let mut s = format!(
        "## embtui regression check: {}\n\nBaseline `{}`; {}; tolerance {}, α {}.\n\n",
        if c.passed { "passed ✅" } else { "FAILED ❌" },
        md(&c.baseline),
        if c.evidence == "paired" {
            "paired per-query test (sign-flip permutation)"
        } else {
            "means only: the baseline has no per-query scores (make it with `--per-query`)"
        },
        c.tolerance,
        c.alpha
    );
    s += "| model | metric | baseline | now | Δ [95% CI] | p | verdict |\n|---|---|---:|---:|---|---:|---|\n";
    for m in &c.models {
        for x in &m.metrics {
            s += &format!(
                "| {} | {} | {:.4} | {:.4} | {:+.4}{} | {} | {} |\n",
                md(&m.name),
                x.metric,
                x.baseline,
                x.current,
                x.delta,
                ci_text(x.ci95),
                p_text(x.p_value),
                if x.verdict == "fail" { "**fail**" } else { &x.verdict }
            );
        }
    }
    for m in c.models.iter().filter(|m| m.file_changed()) {
        s += &format!(
            "\n`{}`: ONNX file changed, sha256 `{}` → `{}`.\n",
            md(&m.name),
            &m.baseline_sha256,
            &m.current_sha256
        );
    }
    for m in c.models.iter().filter(|m| !m.worse.is_empty()) {
        s += &format!("\n### Queries that got worse: {}\n\n| query | before | now | caption |\n|---|---:|---:|---|\n", md(&m.name));
        for w in &m.worse {
            s += &format!(
                "| {} | {:.3} | {:.3} | {} |\n",
                md(&w.image),
                w.baseline,
                w.current,
                md(&w.caption)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests;
