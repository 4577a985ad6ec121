//! Datasets: images with their human captions, read from the layouts they are distributed in.
//!
//! `Dataset::open` detects the layout (or takes `--format`), reads captions leniently (a bad
//! line is recorded as an [`Issue`] with file and line, never a panic) and never reads outside
//! the image folder.

mod coco;
mod flickr30k;
mod flickr8k;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One image and its captions. `id` is its position in the dataset (sorted by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub id: u32,
    /// File name relative to the image folder.
    pub name: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub captions: Vec<String>,
}

/// The caption layouts embtui reads; see docs/datasets.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Flickr30k `results_20130124.token` (also Flickr8k `Flickr8k.token.txt`).
    Flickr30kToken,
    /// Kaggle Flickr30k `results.csv` (pipe-separated).
    Flickr30kCsv,
    /// Karpathy `dataset_flickr30k.json` (with splits).
    Karpathy,
    /// Hugging Face `flickr_annotations_30k.csv`.
    Flickr30kHf,
    /// Kaggle Flickr8k `captions.txt`.
    Flickr8k,
    /// COCO `annotations/captions_*.json`.
    Coco,
    /// A plain folder of images, no captions.
    Folder,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = clap::ValueEnum::to_possible_value(self).ok_or(std::fmt::Error)?;
        f.write_str(v.get_name())
    }
}

/// A problem with one line or file of a dataset; counted in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

/// Which images to keep.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub limit: Option<usize>,
    pub sample: Option<(usize, u64)>,
    pub split: Option<String>,
}

/// Why a dataset could not be opened at all (bad lines are [`Issue`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{0} does not exist; pass --dataset with a folder holding images and captions")]
    Missing(PathBuf),
    #[error("no known dataset layout in {root}: found none of {looked}; pass --format, or see docs/datasets.md")]
    Unknown { root: PathBuf, looked: String },
    #[error("dataset {root}: no image folder found (looked for {looked})")]
    NoImages { root: PathBuf, looked: String },
    #[error("could not read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{file} is not valid {what}: {message}")]
    Parse { file: PathBuf, what: &'static str, message: String },
    #[error("dataset {root} has no images with captions{hint}")]
    Empty { root: PathBuf, hint: String },
    #[error("--split {split} matched no image; the file has splits {known}")]
    NoSplit { split: String, known: String },
}

pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Captions per image name, as read from a captions file, before images are matched.
#[derive(Debug, Default)]
pub(crate) struct Captions {
    pub by_image: BTreeMap<String, Vec<String>>,
    pub split: BTreeMap<String, String>,
    pub issues: Vec<Issue>,
}

impl Captions {
    /// Adds a caption unless the name is unsafe or the caption is a duplicate.
    pub fn add(&mut self, file: &str, line: Option<u64>, image: &str, caption: &str) {
        let caption = caption.trim();
        if let Err(why) = check_name(image) {
            self.issue(
                file,
                line,
                format!("image name {:?} refused: {why}", crate::text::sanitize(image)),
            );
            return;
        }
        if caption.is_empty() {
            self.issue(file, line, format!("empty caption for {image}"));
            return;
        }
        let caps = self.by_image.entry(image.to_owned()).or_default();
        if caps.iter().any(|c| c == caption) {
            self.issue(file, line, format!("duplicate caption for {image} dropped"));
        } else {
            caps.push(caption.to_owned());
        }
    }

    pub fn issue(&mut self, file: &str, line: Option<u64>, message: String) {
        self.issues.push(Issue { file: file.to_owned(), line, message });
    }
}

/// Refuses file names that could point outside the image folder.
pub fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.contains('/') || name.contains('\\') {
        return Err("contains a path separator");
    }
    if name == ".." || name == "." || name.contains('\0') {
        return Err("not a file name");
    }
    if name.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// Reads a text file as lines: BOM stripped, CRLF accepted, invalid UTF-8 replaced (and reported).
pub(crate) fn read_lines(path: &Path, issues: &mut Vec<Issue>) -> Result<Vec<(u64, String)>> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::Read(path.to_owned(), e))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let file = file_label(path);
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = i as u64 + 1;
        let text = if let Ok(s) = std::str::from_utf8(raw) {
            s.to_owned()
        } else {
            issues.push(Issue {
                file: file.clone(),
                line: Some(line),
                message: "invalid UTF-8 replaced with U+FFFD".into(),
            });
            String::from_utf8_lossy(raw).into_owned()
        };
        if !text.trim().is_empty() {
            out.push((line, text));
        }
    }
    Ok(out)
}

/// Reads a whole text file leniently (BOM stripped, invalid UTF-8 replaced and reported).
pub(crate) fn read_text(path: &Path, issues: &mut Vec<Issue>) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::Read(path.to_owned(), e))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(e) => {
            issues.push(Issue {
                file: file_label(path),
                line: None,
                message: format!("invalid UTF-8 ({e}) replaced"),
            });
            String::from_utf8_lossy(bytes).into_owned()
        }
    })
}

/// Reads a JSON caption file (lenient about encoding, strict about structure).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    issues: &mut Vec<Issue>,
) -> Result<T> {
    let text = read_text(path, issues)?;
    serde_json::from_str(&text).map_err(|e| DatasetError::Parse {
        file: path.to_owned(),
        what,
        message: e.to_string(),
    })
}

/// Reads a CSV file leniently: its text (for line numbers), a flexible reader and the header.
pub(crate) fn csv_file(path: &Path, caps: &mut Captions) -> Result<(String, csv::StringRecord)> {
    let text = read_text(path, &mut caps.issues)?;
    let headers = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes())
        .headers()
        .map_err(|e| DatasetError::Parse {
            file: path.to_owned(),
            what: "CSV",
            message: e.to_string(),
        })?
        .clone();
    Ok((text, headers))
}

/// Records after the header of CSV `text`.
pub(crate) fn csv_records(text: &str) -> csv::StringRecordsIntoIter<&[u8]> {
    csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes()).into_records()
}

/// Byte offsets of line starts, for turning a byte position into a 1-based line number in
/// O(log lines) (csv's own line count is off for CRLF files).
pub(crate) struct LineIndex<'a> {
    text: &'a [u8],
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let text = text.as_bytes();
        let starts = std::iter::once(0)
            .chain(text.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The line of a CSV record or error position.
    pub fn line(&self, pos: Option<&csv::Position>) -> Option<u64> {
        let mut byte = usize::try_from(pos?.byte()).ok()?.min(self.text.len());
        // A record's position can sit on the terminator of the line before it.
        while byte < self.text.len() && (self.text[byte] == b'\r' || self.text[byte] == b'\n') {
            byte += 1;
        }
        Some(self.starts.partition_point(|&s| s <= byte) as u64)
    }
}

pub(crate) fn file_label(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

fn is_image_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A dataset: its images, their captions and what was wrong with the input.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    pub root: PathBuf,
    pub format: Format,
    pub images_dir: PathBuf,
    pub samples: Vec<Sample>,
    pub issues: Vec<Issue>,
    /// Images in the folder that have no caption (not evaluated).
    pub uncaptioned: usize,
    /// Caption entries naming images that are not in the folder.
    pub missing_images: usize,
}

impl Dataset {
    /// Opens `root`, detecting its layout unless `format` is given.
    pub fn open(root: &Path, format: Option<Format>, sel: &Selection) -> Result<Self> {
        if !root.exists() {
            return Err(DatasetError::Missing(root.to_owned()));
        }
        let format = match format {
            Some(f) => f,
            None => detect(root)?,
        };
        let (captions, images_dir) = match format {
            Format::Flickr30kToken => flickr30k::token(root)?,
            Format::Flickr30kCsv => flickr30k::kaggle_csv(root)?,
            Format::Karpathy => flickr30k::karpathy(root)?,
            Format::Flickr30kHf => flickr30k::hf_csv(root)?,
            Format::Flickr8k => flickr8k::kaggle(root)?,
            Format::Coco => coco::captions(root)?,
            Format::Folder => (Captions::default(), root.to_owned()),
        };
        Self::assemble(root, format, captions, images_dir, sel)
    }

    fn assemble(
        root: &Path,
        format: Format,
        mut caps: Captions,
        images_dir: PathBuf,
        sel: &Selection,
    ) -> Result<Self> {
        let on_disk = list_images(&images_dir)?;
        if let Some(split) = &sel.split {
            keep_split(&mut caps, split)?;
        }
        let (mut names, uncaptioned, missing) = if format == Format::Folder {
            (on_disk.iter().map(|n| (n.clone(), Vec::new())).collect(), 0, 0)
        } else {
            match_captions(&mut caps, &on_disk, &images_dir, sel.split.is_none())
        };
        names = select(names, sel);
        if names.is_empty() {
            let hint = if format == Format::Folder {
                String::new()
            } else {
                format!(" (format {format:?}, images in {})", images_dir.display())
            };
            return Err(DatasetError::Empty { root: root.to_owned(), hint });
        }
        let samples = names
            .into_iter()
            .enumerate()
            .map(|(i, (name, captions))| Sample {
                id: i as u32,
                path: images_dir.join(&name),
                name,
                captions,
            })
            .collect();
        Ok(Self {
            root: root.to_owned(),
            format,
            images_dir,
            samples,
            issues: caps.issues,
            uncaptioned,
            missing_images: missing,
        })
    }

    /// True when captions exist, so metrics can be computed.
    pub fn has_captions(&self) -> bool {
        self.format != Format::Folder
    }

    /// A fingerprint of the image list (names, in order), for the store's metadata.
    pub fn fingerprint(&self) -> String {
        let mut all = Vec::new();
        for s in &self.samples {
            all.extend_from_slice(s.name.as_bytes());
            all.push(b'\n');
        }
        hex::encode(&crate::hash::bytes_sha256(&all)[..8])
    }
}

/// Keeps only the captions of images in `split`; an unknown split names the known ones.
fn keep_split(caps: &mut Captions, split: &str) -> Result<()> {
    if !caps.split.values().any(|s| s == split) {
        let mut known: Vec<&str> = caps.split.values().map(String::as_str).collect();
        known.sort_unstable();
        known.dedup();
        let known = if known.is_empty() { "none".into() } else { known.join(", ") };
        return Err(DatasetError::NoSplit { split: split.to_owned(), known });
    }
    let split_of = std::mem::take(&mut caps.split);
    caps.by_image.retain(|name, _| split_of.get(name).is_some_and(|s| s == split));
    caps.split = split_of;
    Ok(())
}

/// Pairs captions with the image files on disk: (name, captions) of the images found, the
/// number of images without captions (when `count_uncaptioned`) and of captioned images that
/// are missing, each reported as an issue.
fn match_captions(
    caps: &mut Captions,
    on_disk: &[String],
    images_dir: &Path,
    count_uncaptioned: bool,
) -> (Vec<(String, Vec<String>)>, usize, usize) {
    let disk: std::collections::BTreeSet<&String> = on_disk.iter().collect();
    let mut names = Vec::new();
    let mut missing = 0;
    for (name, c) in std::mem::take(&mut caps.by_image) {
        if disk.contains(&name) {
            names.push((name, c));
            continue;
        }
        missing += 1;
        if missing <= 20 {
            let msg = format!(
                "captions name {} but the image is not in {}",
                crate::text::sanitize(&name),
                images_dir.display()
            );
            caps.issue("captions", None, msg);
        }
    }
    if missing > 20 {
        caps.issue("captions", None, format!("{} more captioned images are missing", missing - 20));
    }
    let mut uncaptioned = 0;
    if count_uncaptioned {
        let captioned: std::collections::BTreeSet<&String> = names.iter().map(|(n, _)| n).collect();
        uncaptioned = on_disk.iter().filter(|n| !captioned.contains(n)).count();
    }
    if uncaptioned > 0 {
        let msg = format!(
            "{uncaptioned} images in {} have no caption and are not evaluated",
            images_dir.display()
        );
        caps.issue("images", None, msg);
    }
    (names, uncaptioned, missing)
}

fn select(mut names: Vec<(String, Vec<String>)>, sel: &Selection) -> Vec<(String, Vec<String>)> {
    names.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some((n, seed)) = sel.sample {
        let mut rng = crate::rng::SplitMix64(seed);
        // Fisher–Yates with a fixed PRNG: the same seed picks the same images everywhere.
        for i in (1..names.len()).rev() {
            let j = rng.below(i + 1);
            names.swap(i, j);
        }
        names.truncate(n);
        names.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if let Some(n) = sel.limit {
        names.truncate(n);
    }
    names
}

fn list_images(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DatasetError::Read(dir.to_owned(), e))?;
    let mut out: Vec<String> = rd
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_image_name(n))
        .collect();
    out.sort();
    Ok(out)
}

/// The first existing folder among `candidates` (relative to `root`).
pub(crate) fn find_dir(root: &Path, candidates: &[&str]) -> Result<PathBuf> {
    for c in candidates {
        let p = root.join(c);
        if p.is_dir() && list_images(&p).is_ok_and(|v| !v.is_empty()) {
            return Ok(p);
        }
    }
    Err(DatasetError::NoImages { root: root.to_owned(), looked: candidates.join(", ") })
}

const MARKERS: &[(&str, Format)] = &[
    ("results_20130124.token", Format::Flickr30kToken),
    ("Flickr8k.token.txt", Format::Flickr30kToken),
    ("results.csv", Format::Flickr30kCsv),
    ("dataset_flickr30k.json", Format::Karpathy),
    ("flickr_annotations_30k.csv", Format::Flickr30kHf),
    ("captions.txt", Format::Flickr8k),
    ("annotations", Format::Coco),
];

/// Detects the layout from the files in `root`.
pub fn detect(root: &Path) -> Result<Format> {
    for (file, fmt) in MARKERS {
        if root.join(file).exists() {
            return Ok(*fmt);
        }
    }
    if list_images(root).is_ok_and(|v| !v.is_empty()) {
        return Ok(Format::Folder);
    }
    let looked = MARKERS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ");
    Err(DatasetError::Unknown {
        root: root.to_owned(),
        looked: format!("{looked}, or image files"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_separators_or_dotdot_are_refused() {
        assert!(check_name("../etc/passwd").is_err());
        assert!(check_name("a/b.jpg").is_err());
        assert!(check_name("a\\b.jpg").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("1000092795.jpg").is_ok());
    }

    #[test]
    fn sampling_is_seeded_and_sorted() {
        let names: Vec<_> = (0..100).map(|i| (format!("{i:03}.jpg"), vec![])).collect();
        let sel = Selection { sample: Some((5, 7)), ..Selection::default() };
        let a = select(names.clone(), &sel);
        let b = select(names, &sel);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
