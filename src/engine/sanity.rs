//! `dataset` (what was read) and `relevance` (does caption relevance mean something here?):
//! pairs of photos of the same subject should score clearly higher than unrelated pairs.

use std::io::Write;
use std::process::ExitCode;

use clap::ValueEnum;
use rust_stemmers::{Algorithm, Stemmer};
use serde::Serialize;

use std::path::Path;

use anyhow::Context;

use crate::cli::RelevanceArgs;
use crate::config::Config;
use crate::dataset::{Dataset, Issue};
use crate::relevance::{terms, Method, Relevance};
use crate::text::{fit, sanitize, terminal_width, Table};

/// One subject's within-group and unrelated mean relevance.
#[derive(Debug, Serialize)]
pub struct SubjectRow {
    pub subject: String,
    pub images: usize,
    pub within: f64,
    pub unrelated: f64,
    /// within / unrelated (null when no unrelated pair has any relevance).
    pub ratio: Option<f64>,
}

/// Same-subject vs unrelated pairs, for one method.
#[derive(Debug, Serialize)]
pub struct SubjectReport {
    pub method: Method,
    pub images: usize,
    pub subjects: Vec<SubjectRow>,
}

/// Per subject: images most annotators describe with it (≥ 3 of 5 captions), the mean
/// relevance of pairs inside that group, and of pairs between it and images none describe so.
pub fn subjects(ds: &Dataset, subjects: &[String], rel: &Relevance) -> SubjectReport {
    let method = rel.method;
    let captions: Vec<Vec<String>> = ds.samples.iter().map(|s| s.captions.clone()).collect();
    let stemmer = Stemmer::create(Algorithm::English);
    let mentions: Vec<Vec<Vec<String>>> =
        captions.iter().map(|caps| caps.iter().map(|c| terms(c, &stemmer)).collect()).collect();
    let rows = subjects
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
                for &b in group.iter().filter(|&&b| b != a) {
                    within += f64::from(row[b]);
                    nw += 1;
                }
                for &b in &others {
                    across += f64::from(row[b]);
                    na += 1;
                }
            }
            let within = within / nw.max(1) as f64;
            let unrelated = across / na.max(1) as f64;
            SubjectRow {
                subject: subject.clone(),
                images: group.len(),
                within,
                unrelated,
                ratio: (unrelated > 0.0).then(|| within / unrelated),
            }
        })
        .collect();
    SubjectReport { method, images: captions.len(), subjects: rows }
}

/// Why two images are (not) relevant under one method.
#[derive(Debug, Serialize)]
pub struct PairExplanation {
    pub method: Method,
    pub rel: f32,
    /// Words both images' captions use, with what each adds to `rel`.
    pub shared: Vec<(String, f32)>,
    pub a_terms: Vec<(String, f32)>,
    pub b_terms: Vec<(String, f32)>,
}

/// `relevance --pair A,B`: one explanation per method.
#[derive(Debug, Serialize)]
pub struct PairReport {
    pub a: String,
    pub b: String,
    pub methods: Vec<PairExplanation>,
}

fn explain(ds: &Dataset, a: &str, b: &str, rels: &[Relevance]) -> anyhow::Result<PairReport> {
    let find = |n: &str| {
        ds.samples.iter().position(|s| s.name == n).ok_or_else(|| {
            anyhow::anyhow!(
                "image {} is not in the dataset (names as in its caption file)",
                sanitize(n)
            )
        })
    };
    let (ia, ib) = (find(a)?, find(b)?);
    let methods = rels
        .iter()
        .map(|rel| PairExplanation {
            method: rel.method,
            rel: rel.pair(ia, ib),
            shared: rel.shared_terms(ia, ib),
            a_terms: rel.top_terms(ia, 8),
            b_terms: rel.top_terms(ib, 8),
        })
        .collect();
    Ok(PairReport { a: a.to_owned(), b: b.to_owned(), methods })
}

fn terms_line(t: &[(String, f32)]) -> String {
    t.iter().map(|(w, x)| format!("{} {x:.2}", sanitize(w))).collect::<Vec<_>>().join(", ")
}

/// A pair's explanation as text.
fn print_pair(out: &mut impl Write, r: &PairReport) -> std::io::Result<()> {
    let width = terminal_width();
    writeln!(out, "{}", fit(&format!("{} vs {}", sanitize(&r.a), sanitize(&r.b)), width))?;
    for e in &r.methods {
        let shared = if e.shared.is_empty() { "none".into() } else { terms_line(&e.shared) };
        writeln!(
            out,
            "{}",
            fit(&format!("{:<8} rel {:.3}  shared words: {shared}", e.method, e.rel), width)
        )?;
    }
    let first = &r.methods[0];
    writeln!(
        out,
        "{}",
        fit(
            &format!("heaviest words of A ({}): {}", first.method, terms_line(&first.a_terms)),
            width
        )
    )?;
    writeln!(
        out,
        "{}",
        fit(
            &format!("heaviest words of B ({}): {}", first.method, terms_line(&first.b_terms)),
            width
        )
    )?;
    writeln!(
        out,
        "{}",
        fit("(words are matched after stemming: \"dogs\" and \"dog\" count as one)", width)
    )?;
    Ok(())
}

/// One relevance model per method over all of `ds`.
fn relevances(cfg: &Config, ds: &Dataset, methods: &[Method]) -> anyhow::Result<Vec<Relevance>> {
    let captions: Vec<Vec<String>> = ds.samples.iter().map(|s| s.captions.clone()).collect();
    super::captions::relevances(cfg, methods, &captions)
}

/// `embtui relevance`: a pair explained, many pairs scored, or same-subject vs unrelated pairs
/// per method.
pub fn relevance(cfg: &Config, a: &RelevanceArgs) -> anyhow::Result<ExitCode> {
    let methods: Vec<Method> = match a.relevance {
        Some(m) => vec![m],
        None => Method::value_variants().to_vec(),
    };
    if let (Some(pairs), Some(out)) = (&a.pairs, &a.out) {
        let ds = Dataset::open_captions(&a.data.dataset, a.data.format)?;
        return score_pairs(cfg, &ds, pairs, out, &methods);
    }
    let ds = cfg.dataset(&a.data)?;
    if !ds.has_captions() {
        anyhow::bail!("{} has no captions, so there is no relevance to check", ds.root.display());
    }
    let rels = relevances(cfg, &ds, &methods)?;
    let mut out = std::io::stdout().lock();
    if !a.pair.is_empty() {
        let [x, y] = a.pair.as_slice() else {
            anyhow::bail!("--pair takes two image names separated by a comma");
        };
        let r = explain(&ds, x, y, &rels)?;
        if a.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        print_pair(&mut out, &r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let reports: Vec<SubjectReport> = rels.iter().map(|r| subjects(&ds, &a.subjects, r)).collect();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = terminal_width();
    for v in &reports {
        let head = format!(
            "relevance {} on {} images: same-subject pairs vs unrelated pairs",
            v.method, v.images
        );
        writeln!(out, "{}", fit(&head, width))?;
        let mut t = Table::new(&[
            ("subject", false, 0),
            ("images", true, 2),
            ("within", true, 0),
            ("unrelated", true, 0),
            ("ratio", true, 1),
        ]);
        for r in &v.subjects {
            let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.1}"));
            t.row(vec![
                r.subject.clone(),
                r.images.to_string(),
                format!("{:.3}", r.within),
                format!("{:.3}", r.unrelated),
                ratio,
            ]);
        }
        write!(out, "{}", t.render(width))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `dataset --json` prints.
#[derive(Debug, Serialize)]
pub struct DatasetSummary<'a> {
    pub root: String,
    pub format: crate::dataset::Format,
    pub images_dir: String,
    pub images: usize,
    pub captions: usize,
    pub uncaptioned_images: usize,
    pub captions_of_missing_images: usize,
    pub fingerprint: String,
    pub issues: &'a [Issue],
}

/// `embtui dataset`: what was read and every problem found.
pub fn dataset_summary(ds: &Dataset, json: bool) -> anyhow::Result<ExitCode> {
    let s = DatasetSummary {
        root: ds.root.display().to_string(),
        format: ds.format,
        images_dir: ds.images_dir.display().to_string(),
        images: ds.samples.len(),
        captions: ds.samples.iter().map(|s| s.captions.len()).sum(),
        uncaptioned_images: ds.uncaptioned,
        captions_of_missing_images: ds.missing_images,
        fingerprint: ds.fingerprint(),
        issues: &ds.issues,
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = terminal_width();
    let (root, dir) = (sanitize(&s.root), sanitize(&s.images_dir));
    let head =
        format!("{root} ({}): {} images with {} captions in {dir}", s.format, s.images, s.captions);
    writeln!(out, "{}", fit(&head, width))?;
    let counts = format!(
        "{} images without captions, {} captioned images missing, {} issues",
        s.uncaptioned_images,
        s.captions_of_missing_images,
        s.issues.len()
    );
    writeln!(out, "{}", fit(&counts, width))?;
    for i in s.issues {
        let line = i.line.map_or(String::new(), |l| format!(":{l}"));
        let text = format!("  {}{line}: {}", sanitize(&i.file), sanitize(&i.message));
        writeln!(out, "{}", fit(&text, width))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `relevance --pairs IN --out OUT`: every row of IN with one relevance column per method
/// (empty where an image is not in the dataset), the relevance model built once.
fn score_pairs(
    cfg: &Config,
    ds: &Dataset,
    pairs: &Path,
    out: &Path,
    methods: &[Method],
) -> anyhow::Result<ExitCode> {
    let file = super::validate::read_pairs(pairs, ds)?;
    let rels = relevances(cfg, ds, methods)?;
    let t = std::time::Instant::now();
    let mut w = csv::Writer::from_path(out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    let mut header = file.header.clone();
    header.extend(rels.iter().map(|r| format!("rel_{}", r.method)));
    w.write_record(&header)?;
    for (fields, pair) in &file.rows {
        let mut row = fields.clone();
        for r in &rels {
            row.push(pair.map_or_else(String::new, |(x, y)| format!("{:.6}", r.pair(x, y))));
        }
        w.write_record(&row)?;
    }
    w.flush().with_context(|| format!("cannot write {}", out.display()))?;
    let scored = file.rows.len() - file.unknown;
    crate::say!(
        "{scored} pairs scored with {} method(s) in {:.2} s; {} name images not in the dataset; wrote {}",
        rels.len(),
        t.elapsed().as_secs_f64(),
        file.unknown,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
