//! Flickr30k caption files: original `.token`, Kaggle `results.csv`, Karpathy JSON, Hugging Face CSV.

use std::path::{Path, PathBuf};

use super::{file_label, find_dir, read_lines, Captions, DatasetError, Result};

const IMAGE_DIRS: &[&str] = &[
    "flickr30k_images/flickr30k_images",
    "flickr30k_images",
    "flickr30k-images",
    "Flicker8k_Dataset",
    "Images",
    "images",
];

/// `<image>.jpg#<n><TAB><caption>` lines (Flickr30k `results_20130124.token`, Flickr8k token).
pub fn token(root: &Path) -> Result<(Captions, PathBuf)> {
    let path = ["results_20130124.token", "Flickr8k.token.txt"]
        .iter()
        .map(|f| root.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| root.join("results_20130124.token"));
    let mut caps = Captions::default();
    let file = file_label(&path);
    for (line, text) in read_lines(&path, &mut caps.issues)? {
        let Some((key, caption)) = text.split_once('\t') else {
            caps.issue(
                &file,
                Some(line),
                "expected `<image>#<n><TAB><caption>`; no tab found".into(),
            );
            continue;
        };
        let image = key.rsplit_once('#').map_or(key, |(img, _)| img);
        caps.add(&file, Some(line), image.trim(), caption);
    }
    // Flickr8k's split lists (one file name a line), when they sit beside the token file.
    for (list, split) in [
        ("Flickr_8k.trainImages.txt", "train"),
        ("Flickr_8k.devImages.txt", "val"),
        ("Flickr_8k.testImages.txt", "test"),
    ] {
        let p = root.join(list);
        if p.exists() {
            for (_, name) in read_lines(&p, &mut caps.issues)? {
                caps.split.insert(name.trim().to_owned(), split.to_owned());
            }
        }
    }
    Ok((caps, find_dir(root, IMAGE_DIRS)?))
}

/// Kaggle `results.csv`: `image_name| comment_number| comment`, with its one broken row
/// (`2199200615.jpg| 4   A dog runs across the grass .`, a pipe missing) repaired.
pub fn kaggle_csv(root: &Path) -> Result<(Captions, PathBuf)> {
    let path = root.join("results.csv");
    let mut caps = Captions::default();
    let file = file_label(&path);
    for (line, text) in read_lines(&path, &mut caps.issues)? {
        if line == 1 && text.starts_with("image_name") {
            continue;
        }
        let parts: Vec<&str> = text.splitn(3, '|').collect();
        match parts.as_slice() {
            [image, _, caption] => caps.add(&file, Some(line), image.trim(), caption),
            [image, rest] => {
                // The known broken row: the comment number and the comment share a field.
                let rest = rest.trim_start();
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                if digits == 0 {
                    caps.issue(
                        &file,
                        Some(line),
                        "expected 3 pipe-separated fields, found 2".into(),
                    );
                    continue;
                }
                caps.issue(
                    &file,
                    Some(line),
                    "missing pipe after the comment number; repaired".into(),
                );
                caps.add(&file, Some(line), image.trim(), &rest[digits..]);
            }
            _ => caps.issue(
                &file,
                Some(line),
                "expected `image_name| comment_number| comment`".into(),
            ),
        }
    }
    Ok((caps, find_dir(root, IMAGE_DIRS)?))
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
pub fn karpathy(root: &Path) -> Result<(Captions, PathBuf)> {
    let path = root.join("dataset_flickr30k.json");
    let mut caps = Captions::default();
    let parsed: KarpathyFile = super::read_json(&path, "Karpathy JSON", &mut caps.issues)?;
    let file = file_label(&path);
    for img in parsed.images {
        if let Some(split) = img.split {
            // Karpathy's "restval" is training data too.
            caps.split.insert(img.filename.clone(), split);
        }
        for s in img.sentences {
            caps.add(&file, None, &img.filename, &s.raw);
        }
    }
    Ok((caps, find_dir(root, IMAGE_DIRS)?))
}

/// Hugging Face `flickr_annotations_30k.csv`: `raw` is a JSON list of captions.
pub fn hf_csv(root: &Path) -> Result<(Captions, PathBuf)> {
    let path = root.join("flickr_annotations_30k.csv");
    let mut caps = Captions::default();
    let (text, headers) = super::csv_file(&path, &mut caps)?;
    let file = file_label(&path);
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(raw_col), Some(file_col)) = (col("raw"), col("filename")) else {
        return Err(DatasetError::Parse {
            file: path,
            what: "Hugging Face Flickr30k CSV",
            message: "columns `raw` and `filename` are required".into(),
        });
    };
    let split_col = col("split");
    let lines = super::LineIndex::new(&text);
    for rec in super::csv_records(&text) {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                caps.issue(&file, lines.line(e.position()), format!("bad CSV row: {e}"));
                continue;
            }
        };
        let line = lines.line(rec.position());
        let (Some(raw), Some(name)) = (rec.get(raw_col), rec.get(file_col)) else {
            caps.issue(&file, line, "row has too few fields".into());
            continue;
        };
        match serde_json::from_str::<Vec<String>>(raw) {
            Ok(list) => list.iter().for_each(|c| caps.add(&file, line, name, c)),
            Err(e) => caps.issue(&file, line, format!("`raw` is not a JSON list of strings: {e}")),
        }
        if let Some(split) = split_col.and_then(|c| rec.get(c)) {
            caps.split.insert(name.to_owned(), split.to_owned());
        }
    }
    Ok((caps, find_dir(root, IMAGE_DIRS)?))
}
