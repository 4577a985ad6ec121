//! The module map of docs/architecture (README "Layout"): dependencies point down the layers,
//! never up, so there is no import cycle; the pure modules import nothing above them.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers from the top; a module may use modules of its own layer's lower neighbours only.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["tui"],
    &["engine"],
    &["config"],
    &["cli"],
    &["report"],
    &["model", "store", "dataset", "decode"],
    &["hub"],
    &["relevance", "metrics", "rank"],
    &["text", "warn", "rng", "hash", "files"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("{module} has no layer"))
}

/// Top-level module of a source file: src/engine/eval.rs → engine.
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::x` a file names (in `use` lines and paths alike).
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    // `use crate::{a, b::c}` groups.
    for (i, _) in text.match_indices("use crate::{") {
        let rest = &text[i + "use crate::{".len()..];
        let group = &rest[..rest.find("};").unwrap_or(rest.len())];
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.insert(item.trim().split("::").next().unwrap().to_owned());
                    item.clear();
                }
                _ if depth == 0 => item.push(c),
                _ => {}
            }
        }
        if !item.trim().is_empty() {
            out.insert(item.trim().split("::").next().unwrap().to_owned());
        }
    }
    out.retain(|m| !m.is_empty() && m.chars().next().unwrap().is_lowercase());
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn dependencies_point_down_the_layers_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Test modules may reach anywhere (fixtures); only the program's own code counts.
        let code = text.split("#[cfg(test)]").next().unwrap();
        let from = module_of(f, &src);
        for to in uses(code) {
            if to != from && to != "warn" && to != "say" {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    let upward: Vec<String> = edges
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| layer_of(to) < layer_of(from))
        .map(|(from, to)| format!("{from} → {to}"))
        .collect();
    assert!(upward.is_empty(), "imports that point up the layers: {upward:?}\nall: {edges:?}");
    // Within a layer, imports are allowed but may not form a cycle.
    for start in edges.keys() {
        let mut stack: Vec<&String> = edges[start].iter().collect();
        let mut seen = BTreeSet::new();
        while let Some(m) = stack.pop() {
            assert!(m != start, "import cycle through {start}: {edges:?}");
            if seen.insert(m) {
                stack.extend(edges.get(m).into_iter().flatten());
            }
        }
    }
}

#[test]
fn pure_modules_import_only_the_bottom_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for m in ["metrics.rs", "relevance.rs", "rank.rs"] {
        let text = std::fs::read_to_string(src.join(m)).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for used in uses(code) {
            assert!(["rng", "text"].contains(&used.as_str()), "{m} imports crate::{used}");
        }
        for io in ["std::fs", "std::io", "std::env", "println!", "eprintln!"] {
            assert!(!code.contains(io), "{m} does I/O ({io})");
        }
    }
}

/// Sibling files of one folder (`src/engine/`, `src/tui/`): each may use the other or be used
/// by it, not both (no import cycle through `super::NAME`).
#[test]
fn files_of_a_folder_form_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for folder in ["engine", "tui", "model", "report", "hub", "store", "dataset"] {
        let dir = src.join(folder);
        let files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let text = std::fs::read_to_string(dir.join(format!("{f}.rs"))).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for other in files.iter().filter(|o| *o != f) {
                let direct = code.contains(&format!("super::{other}::"))
                    || code.contains(&format!("super::{other};"))
                    || code.contains(&format!("super::{{{other}"));
                let grouped = code.match_indices("use super::{").any(|(i, _)| {
                    let group = &code[i..code[i..].find("};").map_or(code.len(), |e| i + e)];
                    group.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == other)
                });
                if direct || grouped {
                    edges.entry(f.clone()).or_default().insert(other.clone());
                }
            }
        }
        for (a, tos) in &edges {
            for b in tos {
                assert!(
                    !edges.get(b).is_some_and(|t| t.contains(a)),
                    "src/{folder}/{a}.rs and src/{folder}/{b}.rs use each other: {edges:?}"
                );
            }
        }
    }
}
