//! The HTML report: `embtui report` (from a saved evaluation) and `eval --html`, with the
//! thumbnails they embed (also the figure's). Rendering lives in `report::html`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use image::RgbImage;
use rayon::prelude::*;

use super::output::{check_writable, load_report, write_atomic};
use crate::cli::ReportArgs;
use crate::config::Config;
use crate::dataset::Dataset;
use crate::report::{self, figure, EvalReport};
use crate::{decode, say, warn};

/// Thumbnails (fitted into the figure's tile) of `names`, decoded in parallel; names whose
/// file is missing or unreadable are left out with a warning (their tiles say "missing").
pub fn thumbnails(images_dir: &Path, names: &BTreeSet<String>) -> HashMap<String, RgbImage> {
    names
        .par_iter()
        .filter_map(|name| {
            let path = images_dir.join(name);
            let opts = decode::DecodeOptions {
                draft: Some(decode::Draft { shorter: false, at_least: 2 * figure::TILE }),
                ..decode::DecodeOptions::default()
            };
            match decode::load(&path, &opts) {
                Ok(d) => Some((name.clone(), figure::thumbnail(&d.image))),
                Err(e) => {
                    warn!("{}: {e}; its tile is left grey", path.display());
                    None
                }
            }
        })
        .collect()
}

/// The HTML report of `rep` with thumbnails from `images_dir`, written to `out`.
pub fn write_html(
    rep: &EvalReport,
    images_dir: &Path,
    gallery: usize,
    out: &Path,
) -> anyhow::Result<()> {
    let metric = rep.main_metric();
    let mut names = BTreeSet::new();
    for i in report::most_disagreeing(&rep.per_query, &metric, gallery) {
        let q = &rep.per_query[i];
        names.insert(q.image.clone());
        names.extend(q.models.values().flat_map(|m| m.top.iter().map(|h| h.image.clone())));
    }
    for w in rep.check.iter().flat_map(|c| &c.models).flat_map(|m| &m.worse) {
        names.insert(w.image.clone());
        names.extend(w.baseline_top.iter().chain(&w.current_top).map(|h| h.image.clone()));
    }
    let thumbs = thumbnails(images_dir, &names);
    let html = report::html::render(rep, &|n| thumbs.get(n).cloned(), gallery)?;
    write_atomic(out, html.as_bytes())?;
    say!(
        "wrote {} ({} KB, {} gallery queries)",
        out.display(),
        html.len() / 1024,
        gallery.min(rep.per_query.len())
    );
    Ok(())
}

/// `embtui report`.
pub fn report(_cfg: &Config, a: &ReportArgs) -> anyhow::Result<ExitCode> {
    check_writable(&a.out)?;
    let rep = load_report(&a.from)?;
    let root = a.dataset.clone().unwrap_or_else(|| PathBuf::from(&rep.dataset.root));
    let gallery = usize::try_from(a.gallery).unwrap_or(6);
    if rep.per_query.is_empty() {
        warn!(
            "{} has no per-query results, so the report has no gallery and no distributions; make it with `embtui eval … --per-query --json --out FILE`",
            a.from.display()
        );
    }
    let images_dir = match Dataset::open_captions(&root, None) {
        Ok(ds) => ds.images_dir,
        Err(e) => {
            if !rep.per_query.is_empty() && gallery > 0 {
                warn!("{e}; the gallery's tiles are left grey (pass --dataset with where the photos are now)");
            }
            root
        }
    };
    write_html(&rep, &images_dir, gallery, &a.out)?;
    Ok(ExitCode::SUCCESS)
}
