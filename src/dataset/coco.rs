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
    if files.len() == 1 {
        let stem = read_file(&path, &mut caps)?;
        return Ok((caps, find_dir(root, &[&stem, "val2017", "train2017", "images"])));
    }
    // Several files (captions_train2017.json and captions_val2017.json): one dataset of every
    // split, each split's images in the folder named like its file.
    for path in &files {
        let stem = read_file(path, &mut caps)?;
        if !root.join(&stem).is_dir() {
            return Err(DatasetError::NoImages {
                root: root.to_owned(),
                looked: format!(
                    "{stem}/ (the images of {}); or pass --split to read one file's images",
                    file_label(path)
                ),
            });
        }
        caps.folders.push(stem);
    }
    Ok((caps, Ok(root.to_owned())))
}

/// Adds one COCO captions file's captions (its images' split is the file's stem: `val2017`
/// for `captions_val2017.json`); returns the stem.
fn read_file(path: &Path, caps: &mut Captions) -> Result<String> {
    let file = super::read::TextFile::open(path)?;
    let parsed: CocoFile = file.json("COCO captions JSON")?;
    let names: HashMap<u64, &str> =
        parsed.images.iter().map(|i| (i.id, i.file_name.as_str())).collect();
    let label = file_label(path);
    let stem = label.trim_start_matches("captions_").trim_end_matches(".json").to_owned();
    for a in &parsed.annotations {
        let Some(&name) = names.get(&a.image_id) else {
            caps.issue(&label, None, format!("caption for unknown image_id {}", a.image_id));
            continue;
        };
        match caps.split.get(name) {
            Some(other) if *other != stem => caps.issue(
                &label,
                None,
                format!(
                    "image {} is also in split {}; its captions here are left out",
                    crate::text::sanitize(name),
                    crate::text::sanitize(other)
                ),
            ),
            _ => {
                caps.add(&label, None, name, &a.caption);
                caps.split.insert(name.to_owned(), stem.clone());
            }
        }
    }
    Ok(stem)
}
