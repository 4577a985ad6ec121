//! Flickr30k caption files: original `.token`, Kaggle `results.csv`, Karpathy JSON, Hugging Face
//! CSV. Each is read in one streaming pass.

use std::path::{Path, PathBuf};

use super::read::{record, TextFile};
use super::{find_dir, Captions, DatasetError, Issue, Result};

const IMAGE_DIRS: &[&str] = &[
    "flickr30k_images/flickr30k_images",
    "flickr30k_images",
    "flickr30k-images",
    "Flicker8k_Dataset",
    "Images",
    "images",
];

/// `<image>.jpg#<n><TAB><caption>` lines (Flickr30k `results_20130124.token`, Flickr8k token;
/// Flickr8k has 3 lines with a space instead of the tab, accepted and reported).
pub fn token(root: &Path) -> Result<(Captions, Result<PathBuf>)> {
    let path = ["results_20130124.token", "Flickr8k.token.txt"]
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| root.join("results_20130124.token"));
    let mut caps = Captions::default();
    let file = TextFile::open(&path)?;
    let label = file.label.clone();
    let mut read_issues = Vec::new();
    file.for_each_line(&mut read_issues, |line, text| {
        let split = text.split_once('\t').or_else(|| {
            let (key, cap) = text.split_once(' ')?;
            key.contains('#').then_some((key, cap))
        });
        let Some((key, caption)) = split else {
            caps.issue(
                &label,
                Some(line),
                "expected `<image>#<n><TAB><caption>`; no tab found".into(),
            );
            return;
        };
        if !text.contains('\t') {
            caps.issue(
                &label,
                Some(line),
                "a space instead of the tab after the image name; accepted".into(),
            );
        }
        let image = key.rsplit_once('#').map_or(key, |(img, _)| img);
        caps.add(&label, Some(line), image.trim(), caption);
    })?;
    caps.issues.extend(read_issues);
    // Flickr8k's split lists (one file name a line), when they sit beside the token file.
    for (list, split) in [
        ("Flickr_8k.trainImages.txt", "train"),
        ("Flickr_8k.devImages.txt", "val"),
        ("Flickr_8k.testImages.txt", "test"),
    ] {
        let p = root.join(list);
        if p.exists() {
            let mut issues = Vec::new();
            TextFile::open(&p)?.for_each_line(&mut issues, |_, name| {
                caps.split.insert(name.trim().to_owned(), split.to_owned());
            })?;
            caps.issues.extend(issues);
        }
    }
    Ok((caps, find_dir(root, IMAGE_DIRS)))
}

/// Kaggle `results.csv`: `image_name| comment_number| comment`, with its one broken row
/// (`2199200615.jpg| 4   A dog runs across the grass .`, a pipe missing) repaired.
pub fn kaggle_csv(root: &Path) -> Result<(Captions, Result<PathBuf>)> {
    let path = root.join("results.csv");
    let mut caps = Captions::default();
    let file = TextFile::open(&path)?;
    let label = file.label.clone();
    let mut read_issues = Vec::new();
    file.for_each_line(&mut read_issues, |line, text| {
        if line == 1 && text.starts_with("image_name") {
            return;
        }
        let parts: Vec<&str> = text.splitn(3, '|').collect();
        match parts.as_slice() {
            [image, _, caption] => caps.add(&label, Some(line), image.trim(), caption),
            [image, rest] => {
                // The known broken row: the comment number and the comment share a field.
                let rest = rest.trim_start();
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                if digits == 0 {
                    caps.issue(
                        &label,
                        Some(line),
                        "expected 3 pipe-separated fields, found 2".into(),
                    );
                    return;
                }
                caps.issue(
                    &label,
                    Some(line),
                    "missing pipe after the comment number; repaired".into(),
                );
                caps.add(&label, Some(line), image.trim(), &rest[digits..]);
            }
            _ => caps.issue(
                &label,
                Some(line),
                "expected `image_name| comment_number| comment`".into(),
            ),
        }
    })?;
    caps.issues.extend(read_issues);
    Ok((caps, find_dir(root, IMAGE_DIRS)))
}

#[derive(serde::Deserialize)]
struct KarpathyFile {
    images: Vec<KarpathyImage>,
}

#[derive(serde::Deserialize)]
struct KarpathyImage {
    filename: String,
    #[serde(default)]
    split: Option<String>,
    sentences: Vec<KarpathySentence>,
}

#[derive(serde::Deserialize)]
struct KarpathySentence {
    raw: String,
}

/// Karpathy `dataset_flickr30k.json` (captions from `raw`, splits kept for `--split`).
pub fn karpathy(root: &Path) -> Result<(Captions, Result<PathBuf>)> {
    let path = root.join("dataset_flickr30k.json");
    let mut caps = Captions::default();
    let file = TextFile::open(&path)?;
    let label = file.label.clone();
    let parsed: KarpathyFile = file.json("Karpathy JSON")?;
    for img in parsed.images {
        if let Some(split) = img.split {
            // Karpathy's "restval" is training data too.
            caps.split.insert(img.filename.clone(), split);
        }
        for s in img.sentences {
            caps.add(&label, None, &img.filename, &s.raw);
        }
    }
    Ok((caps, find_dir(root, IMAGE_DIRS)))
}

/// Hugging Face `flickr_annotations_30k.csv`: `raw` is a JSON list of captions.
pub fn hf_csv(root: &Path) -> Result<(Captions, Result<PathBuf>)> {
    let path = root.join("flickr_annotations_30k.csv");
    let mut caps = Captions::default();
    let file = TextFile::open(&path)?;
    let label = file.label.clone();
    let mut reader = file.csv();
    let headers = reader.headers().map_err(|e| DatasetError::Parse {
        file: path.clone(),
        what: "CSV",
        message: e.to_string(),
    })?;
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(raw_col), Some(file_col)) = (col("raw"), col("filename")) else {
        return Err(DatasetError::Parse {
            file: path,
            what: "Hugging Face Flickr30k CSV",
            message: "columns `raw` and `filename` are required".into(),
        });
    };
    let split_col = col("split");
    let mut issues: Vec<Issue> = Vec::new();
    for rec in reader.byte_records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(csv::Position::line);
                caps.issue(&label, line, format!("bad CSV row: {e}"));
                continue;
            }
        };
        let (fields, line) = record(&rec, &label, &mut issues);
        let (Some(raw), Some(name)) = (fields.get(raw_col), fields.get(file_col)) else {
            caps.issue(&label, line, "row has too few fields".into());
            continue;
        };
        match serde_json::from_str::<Vec<String>>(raw) {
            Ok(list) => list.iter().for_each(|c| caps.add(&label, line, name, c)),
            Err(e) => caps.issue(&label, line, format!("`raw` is not a JSON list of strings: {e}")),
        }
        if let Some(split) = split_col.and_then(|c| fields.get(c)) {
            caps.split.insert(name.clone(), split.clone());
        }
    }
    caps.issues.extend(issues);
    Ok((caps, find_dir(root, IMAGE_DIRS)))
}
