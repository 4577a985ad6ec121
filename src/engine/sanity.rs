//! `embtui relevance`: does caption-overlap relevance mean something on this dataset?
//! Pairs of photos of the same subject should score clearly higher than unrelated pairs.

use std::io::Write;
use std::process::ExitCode;

use rust_stemmers::{Algorithm, Stemmer};
use serde_json::json;

use crate::dataset::Dataset;
use crate::relevance::{terms, Method, Relevance};
use crate::text::sanitize;

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

/// `embtui relevance`: a pair explained, or same-subject vs unrelated pairs per method.
pub fn relevance_cmd(
    ds: &Dataset,
    subjects_: &[String],
    pair: &[String],
    methods: &[Method],
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !ds.has_captions() {
        anyhow::bail!("{} has no captions, so there is no relevance to check", ds.root.display());
    }
    let mut out = std::io::stdout().lock();
    if !pair.is_empty() {
        if pair.len() != 2 {
            anyhow::bail!("--pair takes two image names separated by a comma");
        }
        for &m in methods {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&explain(ds, &pair[0], &pair[1], m)?)?
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for &m in methods {
        let v = subjects(ds, subjects_, m);
        if json {
            writeln!(out, "{v}")?;
            continue;
        }
        let method = v["method"].as_str().unwrap_or("");
        writeln!(
            out,
            "relevance {method} on {} images: mean rel of same-subject pairs vs unrelated pairs",
            v["images"]
        )?;
        writeln!(
            out,
            "{:<12}{:>8}{:>10}{:>11}{:>8}",
            "subject", "images", "within", "unrelated", "ratio"
        )?;
        for r in v["subjects"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "{:<12}{:>8}{:>10.3}{:>11.3}{:>8.1}",
                sanitize(r["subject"].as_str().unwrap_or("")),
                r["images"].as_u64().unwrap_or(0),
                r["within"].as_f64().unwrap_or(0.0),
                r["unrelated"].as_f64().unwrap_or(0.0),
                r["ratio"].as_f64().unwrap_or(0.0)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `embtui dataset`: what was read and every problem found.
pub fn dataset_summary(ds: &Dataset, json: bool) -> anyhow::Result<ExitCode> {
    let captions: usize = ds.samples.iter().map(|s| s.captions.len()).sum();
    let mut out = std::io::stdout().lock();
    if json {
        let v = json!({
            "root": ds.root.display().to_string(), "format": ds.format,
            "images_dir": ds.images_dir.display().to_string(), "images": ds.samples.len(),
            "captions": captions, "uncaptioned_images": ds.uncaptioned,
            "captions_of_missing_images": ds.missing_images, "fingerprint": ds.fingerprint(),
            "issues": ds.issues,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (root, dir) = (ds.root.display(), ds.images_dir.display());
    writeln!(
        out,
        "{root} ({:?}): {} images with {captions} captions in {dir}",
        ds.format,
        ds.samples.len()
    )?;
    writeln!(
        out,
        "{} images without captions, {} captioned images missing, {} issues",
        ds.uncaptioned,
        ds.missing_images,
        ds.issues.len()
    )?;
    for i in &ds.issues {
        let line = i.line.map_or(String::new(), |l| format!(":{l}"));
        writeln!(out, "  {}{line}: {}", sanitize(&i.file), sanitize(&i.message))?;
    }
    Ok(ExitCode::SUCCESS)
}
