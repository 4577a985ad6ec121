//! What several commands share for their outputs: checking an output path before the work,
//! writing a file atomically, reading a saved report, saying evaluation stages on stderr.

use std::path::Path;

use anyhow::{bail, Context};

use crate::report::{self, EvalReport};
use crate::say;

/// An [`OnStage`] for the command line: says each new stage once on stderr, as `PREFIX: stage`.
pub fn say_stages(prefix: &'static str) -> impl Fn(&str, f64) + Sync {
    let last = std::sync::Mutex::new(String::new());
    move |stage: &str, _done: f64| {
        let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != stage {
            say!("{prefix}: {stage}");
            stage.clone_into(&mut last);
        }
    }
}

/// Fails now (not after the embedding) when `--out` cannot be written.
pub fn check_writable(p: &Path) -> anyhow::Result<()> {
    let existed = p.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .with_context(|| format!("--out {} cannot be written", p.display()))?;
    if !existed {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, so a failed run never leaves
/// half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::files::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads a saved report for `--check`.
pub fn load_report(p: &Path) -> anyhow::Result<EvalReport> {
    let text = crate::files::read_to_string(p, 256 << 20, "a report")
        .with_context(|| format!("reading baseline {}", p.display()))?;
    let r: EvalReport = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an embtui eval report; write one with `embtui eval --json --out FILE`",
            p.display()
        )
    })?;
    if !report::READABLE_SCHEMAS.contains(&r.schema.as_str()) {
        bail!(
            "{} has schema {:?}, this embtui reads {:?}",
            p.display(),
            r.schema,
            report::READABLE_SCHEMAS
        );
    }
    Ok(r)
}
