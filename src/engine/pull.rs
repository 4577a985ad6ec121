//! `embtui models pull` and `models show`: a Hub repo into the zoo, and what was derived from
//! which field.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::PullArgs;
use crate::config::Config;
use crate::hub::{HubError, RepoRef};
use crate::text::{fit, sanitize, terminal_width, Table};

/// Pulls `a.repo` (cached files are reused) and prints the entry's derivation.
pub fn run(cfg: &Config, a: &PullArgs, show: bool) -> anyhow::Result<ExitCode> {
    let spec = match &a.variant {
        Some(v) if a.repo.contains(':') => anyhow::bail!(
            "{} names a variant and --variant {} gives another; use one of them",
            sanitize(&a.repo),
            sanitize(v)
        ),
        Some(v) => format!("{}:{v}", a.repo),
        None => a.repo.clone(),
    };
    let r = RepoRef::parse(&spec).ok_or_else(|| HubError::BadId(sanitize(&spec)))?;
    let mut hub = cfg.hub.clone();
    hub.progress = !a.json;
    let p = crate::model::pull::install(&cfg.models_dir, &r, &hub)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&p)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = terminal_width();
    if !show {
        let bytes: u64 = p
            .files
            .iter()
            .filter_map(|(f, _)| std::fs::metadata(p.snapshot.join(f)).ok())
            .map(|m| m.len())
            .sum();
        writeln!(
            out,
            "{}",
            fit(
                &format!(
                    "pulled {} at commit {} ({} files, {}); use it as --model {}",
                    p.entry.name,
                    &p.commit[..12],
                    p.files.len(),
                    crate::hub::human_bytes(bytes),
                    p.entry.name
                ),
                width
            )
        )?;
    }
    let mut t = Table::new(&[("field", false, 0), ("derived", false, 2), ("from", false, 1)]);
    for d in &p.how {
        t.row(vec![d.field.clone(), sanitize(&d.value), sanitize(&d.from)]);
    }
    t.row(vec!["dim".into(), p.entry.dim.to_string(), "a test batch through the graph".into()]);
    write!(out, "{}", t.render(width))?;
    let text = match (&p.entry.text, &p.no_text) {
        (Some(t), _) => format!("text tower: {} (search --text, the TUI's `t`)", t.file),
        (None, Some(why)) => format!("text tower: none usable ({})", sanitize(why)),
        (None, None) => "text tower: none in this repo".into(),
    };
    writeln!(out, "{}", fit(&text, width))?;
    writeln!(
        out,
        "{}",
        fit(
            &format!(
                "source: {}; files hashed in {}",
                p.entry.source,
                cfg.models_dir.join("models.lock.json").display()
            ),
            width
        )
    )?;
    Ok(ExitCode::SUCCESS)
}
