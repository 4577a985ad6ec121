use std::collections::BTreeMap;

use super::*;
use crate::report::tests::report;
use crate::report::QueryModel;

const OPTS: CheckOptions =
    CheckOptions { tolerance: 0.01, alpha: 0.05, worst: 2, resamples: 999, seed: 1 };

/// A report whose model `m` scores `per` (nDCG@10) on queries q0, q1, …; the mean is theirs.
fn with_queries(per: &[f64]) -> EvalReport {
    let mut r = report(per.iter().sum::<f64>() / per.len() as f64);
    r.per_query = per
        .iter()
        .enumerate()
        .map(|(i, &v)| QueryResult {
            image: format!("q{i}.jpg"),
            caption: format!("caption {i}"),
            relevant: 1,
            models: BTreeMap::from([(
                "m".to_owned(),
                QueryModel { metrics: BTreeMap::from([("ndcg@10".to_owned(), v)]), top: vec![] },
            )]),
        })
        .collect();
    r
}

#[test]
fn a_drop_on_every_query_fails_with_its_interval() {
    let c = check(&with_queries(&[0.4; 10]), &with_queries(&[0.5; 10]), "b.json", &OPTS);
    let x = &c.models[0].metrics[0];
    assert_eq!((c.evidence.as_str(), x.verdict.as_str(), c.passed), ("paired", "fail", false));
    assert!((x.delta + 0.1).abs() < 1e-12);
    // Every query dropped by exactly 0.1, so every bootstrap mean is −0.1.
    let ci = x.ci95.unwrap();
    assert!((ci[0] + 0.1).abs() < 1e-12 && (ci[1] + 0.1).abs() < 1e-12, "{ci:?}");
    // Only the two all-same-sign flips of 10 (2/1024) are as extreme: p ≈ 0.002.
    assert!(x.p_value.unwrap() < 0.01, "{x:?}");
}

#[test]
fn one_query_moving_is_not_a_significant_drop() {
    // One of 10 queries falls from 1.0 to 0.0: the mean drops 0.1 > tolerance, but every sign
    // flip of the single non-zero difference is as extreme, so p = 1 exactly.
    let mut then = vec![0.5; 10];
    then[3] = 1.0;
    let mut now = vec![0.5; 10];
    now[3] = 0.0;
    let c = check(&with_queries(&now), &with_queries(&then), "b.json", &OPTS);
    let x = &c.models[0].metrics[0];
    assert_eq!((x.verdict.as_str(), x.p_value), ("pass", Some(1.0)));
    assert!(x.why.contains("a few queries moving"), "{}", x.why);
    assert_eq!(c.models[0].worse.len(), 1);
    assert_eq!(
        (
            c.models[0].worse[0].image.as_str(),
            c.models[0].worse[0].baseline,
            c.models[0].worse[0].current
        ),
        ("q3.jpg", 1.0, 0.0)
    );
}

#[test]
fn without_per_query_scores_only_means_are_compared() {
    let c = check(&report(0.45), &report(0.5), "b.json", &OPTS);
    let x = &c.models[0].metrics[0];
    assert_eq!((c.evidence.as_str(), x.verdict.as_str(), x.p_value), ("means", "fail", None));
    assert!(lines(&c)[0].contains("--per-query"), "{:?}", lines(&c));
    let c = check(&report(0.495), &report(0.5), "b.json", &OPTS);
    assert!(c.passed);
}

#[test]
fn worst_queries_come_largest_drop_first() {
    let c = check(
        &with_queries(&[0.1, 0.5, 0.2, 0.9]),
        &with_queries(&[0.5, 0.5, 0.9, 0.8]),
        "b",
        &OPTS,
    );
    let w: Vec<(&str, f64)> =
        c.models[0].worse.iter().map(|w| (w.image.as_str(), w.baseline - w.current)).collect();
    // drops: q0 0.4, q2 0.7, q3 0.1 (q1 none); two asked for.
    assert_eq!(w.len(), 2);
    assert_eq!((w[0].0, w[1].0), ("q2.jpg", "q0.jpg"));
}

#[test]
fn unpaired_lists_are_named() {
    let (a, b) = (with_queries(&[0.1, 0.2]), with_queries(&[0.1, 0.2, 0.3]));
    assert_eq!(
        unpaired(&a.per_query, &b.per_query).unwrap(),
        "the baseline scores 3 queries and this run 2"
    );
    let mut c = with_queries(&[0.1, 0.2]);
    c.per_query[1].image = "other.jpg".into();
    assert_eq!(
        unpaired(&c.per_query, &a.per_query).unwrap(),
        "query 2 is q1.jpg in the baseline but other.jpg now"
    );
    assert!(unpaired(&a.per_query, &a.per_query).is_none());
}

#[test]
fn junit_counts_cases_and_escapes_names() {
    let mut then = with_queries(&[0.5; 10]);
    let mut now = with_queries(&[0.4; 10]);
    for r in [&mut then, &mut now] {
        r.models[0].name = "a<b>&\"c\"".into();
        for q in &mut r.per_query {
            let v = q.models.remove("m").unwrap();
            q.models.insert("a<b>&\"c\"".into(), v);
        }
    }
    now.models[0].onnx_sha256 = "y".into();
    let c = check(&now, &then, "b.json", &OPTS);
    let x = junit(&c);
    assert!(x.contains("tests=\"1\" failures=\"1\" errors=\"0\""), "{x}");
    assert!(
        x.contains("classname=\"embtui.a&lt;b&gt;&amp;&quot;c&quot;\" name=\"ndcg@10\""),
        "{x}"
    );
    assert!(x.contains("<failure message=\"dropped 0.1000 &gt; tolerance 0.01 and p = "), "{x}");
    let md = summary(&c);
    assert!(md.contains("FAILED") && md.contains("sha256 `x` → `y`"), "{md}");
}

#[test]
fn queries_without_a_metric_are_left_out_of_the_pairs() {
    // MAP@R exists only where something is relevant: q1 has none in either run.
    let mut then = with_queries(&[0.5, 0.5, 0.5]);
    let mut now = with_queries(&[0.4, 0.4, 0.4]);
    for r in [&mut then, &mut now] {
        r.per_query[1].models.get_mut("m").unwrap().metrics.remove("ndcg@10");
    }
    let (a, b) = pairs(&now.per_query, &then.per_query, "m", "ndcg@10");
    assert_eq!((a, b), (vec![0.4, 0.4], vec![0.5, 0.5]));
}

#[test]
fn runs_drawn_differently_are_refused_with_the_flags_that_match() {
    let all = report(0.5);
    assert!(other_draw(&all, None).is_none(), "every query both times");
    let why = other_draw(&all, Some((2, 0))).unwrap();
    assert!(why.contains("add --queries all"), "{why}");
    let mut sampled = report(0.5);
    sampled.dataset.query_sample = Some(crate::report::QuerySample {
        size: 2,
        of: 3,
        seed: 7,
        drawn: crate::report::QUERY_DRAW.into(),
    });
    assert!(other_draw(&sampled, Some((2, 7))).is_none(), "the same draw");
    for now in [Some((2, 8)), Some((1, 7)), None] {
        let why = other_draw(&sampled, now).unwrap();
        assert!(why.contains("--queries 2 --seed 7"), "{now:?}: {why}");
    }
    sampled.dataset.query_sample.as_mut().unwrap().drawn = "by hand".into();
    assert!(other_draw(&sampled, Some((2, 7))).unwrap().contains("another way"));
}
