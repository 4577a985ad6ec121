//! MS-COCO captions: `annotations/captions_*.json` (or `captions_*.json` at the top) with its
//! image folder (`val2017/`, …).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{file_label, find_dir, Captions, DatasetError, Result};

#[derive(serde::Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
}

#[derive(serde::Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
}

#[derive(serde::Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    caption: String,
}

pub fn captions(root: &Path) -> Result<(Captions, Result<PathBuf>)> {
    // `annotations/captions_*.json`, or such a file at the top (CxC's captions-only folders).
    let dir = root.join("annotations");
    let listed = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DatasetError::Read(dir.to_owned(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("captions_")
                        && Path::new(n).extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
                })
            })
            .collect();
        files.sort();
        Ok(files)
    };
    let files = if dir.is_dir() { listed(&dir)? } else { listed(root)? };
    let Some(path) = files.first().cloned() else {
        return Err(DatasetError::NoImages {
            root: root.to_owned(),
            looked: "annotations/captions_*.json".into(),
        });
    };
    let mut caps = Captions::default();
    let file = super::read::TextFile::open(&path)?;
    let parsed: CocoFile = file.json("COCO captions JSON")?;
    let names: HashMap<u64, &str> =
        parsed.images.iter().map(|i| (i.id, i.file_name.as_str())).collect();
    let file = file_label(&path);
    for a in &parsed.annotations {
        match names.get(&a.image_id) {
            Some(name) => caps.add(&file, None, name, &a.caption),
            None => caps.issue(&file, None, format!("caption for unknown image_id {}", a.image_id)),
        }
    }
    let stem = file.trim_start_matches("captions_").trim_end_matches(".json").to_owned();
    Ok((caps, find_dir(root, &[&stem, "val2017", "train2017", "images"])))
}
