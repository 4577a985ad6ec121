//! `embtui relevance`: does caption-overlap relevance mean something on this dataset?
//! Pairs of photos of the same subject should score clearly higher than unrelated pairs.

use rust_stemmers::{Algorithm, Stemmer};
use serde_json::json;

use crate::dataset::Dataset;
use crate::relevance::{terms, Method, Relevance};

/// Per subject: images most annotators describe with it (≥ 3 of 5 captions), the mean
/// relevance of pairs inside that group, and of pairs between it and images none describe so.
pub fn subjects(ds: &Dataset, subjects: &[String], method: Method) -> serde_json::Value {
    let captions: Vec<Vec<String>> = ds.samples.iter().map(|s| s.captions.clone()).collect();
    let rel = Relevance::new(method, &captions);
    let stemmer = Stemmer::create(Algorithm::English);
    let mentions: Vec<Vec<Vec<String>>> =
        captions.iter().map(|caps| caps.iter().map(|c| terms(c, &stemmer)).collect()).collect();
    let rows: Vec<serde_json::Value> = subjects
        .iter()
        .map(|subject| {
            let stem = stemmer.stem(&subject.to_lowercase()).into_owned();
            let count = |i: usize| mentions[i].iter().filter(|t| t.contains(&stem)).count();
            let group: Vec<usize> =
                (0..captions.len()).filter(|&i| count(i) >= 3.min(captions[i].len())).collect();
            let others: Vec<usize> = (0..captions.len()).filter(|&i| count(i) == 0).collect();
            let (mut within, mut nw, mut across, mut na) = (0.0, 0usize, 0.0, 0usize);
            for &a in &group {
                let row = rel.row(a);
                for &b in &group {
                    if a != b {
                        within += f64::from(row[b]);
                        nw += 1;
                    }
                }
                for &b in &others {
                    across += f64::from(row[b]);
                    na += 1;
                }
            }
            let within = within / nw.max(1) as f64;
            let across = across / na.max(1) as f64;
            json!({"subject": subject, "images": group.len(), "within": within, "unrelated": across,
                   "ratio": if across > 0.0 { within / across } else { f64::INFINITY }})
        })
        .collect();
    json!({"method": method, "images": captions.len(), "subjects": rows})
}

/// Why two images are (not) relevant: rel and each image's heaviest terms.
pub fn explain(
    ds: &Dataset,
    a: &str,
    b: &str,
    method: Method,
) -> anyhow::Result<serde_json::Value> {
    let find = |n: &str| {
        ds.samples.iter().position(|s| s.name == n).ok_or_else(|| {
            anyhow::anyhow!("image {n} is not in the dataset (names as in its caption file)")
        })
    };
    let (ia, ib) = (find(a)?, find(b)?);
    let captions: Vec<Vec<String>> = ds.samples.iter().map(|s| s.captions.clone()).collect();
    let rel = Relevance::new(method, &captions);
    Ok(json!({"a": a, "b": b, "method": method, "rel": rel.pair(ia, ib),
              "a_terms": rel.top_terms(ia, 8), "b_terms": rel.top_terms(ib, 8)}))
}
