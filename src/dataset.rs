//! Datasets: images with their human captions, read from the layouts they are distributed in.
//!
//! `Dataset::open` detects the layout (or takes `--layout`), reads captions leniently (a bad
//! line is recorded as an [`Issue`] with file and line, never a panic) and never reads outside
//! the image folder.

mod coco;
mod flickr30k;
mod flickr8k;
mod read;

use std::collections::HashMap;
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
    #[error("{0} is not a folder; pass --dataset with the folder that holds the images and the caption file")]
    NotAFolder(PathBuf),
    #[error("{path} {why}; a caption file must be a regular text file")]
    NotReadable { path: PathBuf, why: String },
    #[error("{file} is not a text file (binary data at byte {offset}); pass the caption file of the dataset (see docs/datasets.md)")]
    Binary { file: PathBuf, offset: usize },
    #[error("no known dataset layout in {root}: found none of {looked}; it holds {found}; pass --layout, or see docs/datasets.md")]
    Unknown { root: PathBuf, looked: String, found: String },
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
    pub by_image: HashMap<String, Vec<String>>,
    pub split: HashMap<String, String>,
    pub issues: Vec<Issue>,
    /// Non-empty when the images lie in these subfolders of the image folder, one per split
    /// (COCO's `train2017/` and `val2017/`): an image's folder is its split.
    pub folders: Vec<String>,
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

pub(crate) fn file_label(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

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
    /// How the images were selected (`all`, `--split test --limit 100`, …).
    pub selection: String,
}

impl Selection {
    /// The selection in the words of its flags.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.split {
            parts.push(format!("--split {s}"));
        }
        if let Some((n, seed)) = self.sample {
            parts.push(format!("--sample {n} --seed {seed}"));
        }
        if let Some(n) = self.limit {
            parts.push(format!("--limit {n}"));
        }
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join(" ")
        }
    }
}

impl Dataset {
    /// Opens `root`, detecting its layout unless `format` is given.
    pub fn open(root: &Path, format: Option<Format>, sel: &Selection) -> Result<Self> {
        if !root.exists() {
            return Err(DatasetError::Missing(root.to_owned()));
        }
        if !root.is_dir() {
            return Err(DatasetError::NotAFolder(root.to_owned()));
        }
        let (root, format) = match format {
            Some(f) => (root.to_owned(), f),
            None => locate(root)?,
        };
        let root = root.as_path();
        let (captions, images_dir) = read_captions(root, format)?;
        Self::assemble(root, format, captions, images_dir?, sel)
    }

    /// Opens `root` for its captions alone: every captioned image is a sample, whether or not
    /// its file exists (`validate` and `relevance --pairs` need no pixels).
    pub fn open_captions(root: &Path, format: Option<Format>) -> Result<Self> {
        if !root.is_dir() {
            return Err(if root.exists() {
                DatasetError::NotAFolder(root.to_owned())
            } else {
                DatasetError::Missing(root.to_owned())
            });
        }
        let (root, format) = match format {
            Some(f) => (root.to_owned(), f),
            None => locate(root)?,
        };
        let (mut caps, images_dir) = read_captions(&root, format)?;
        let images_dir = images_dir.unwrap_or_else(|_| root.clone());
        let mut all: Vec<(String, Vec<String>)> =
            std::mem::take(&mut caps.by_image).into_iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if all.is_empty() {
            return Err(DatasetError::Empty { root: root.clone(), hint: " (no captions)".into() });
        }
        let samples = samples(all, &images_dir);
        Ok(Self {
            root,
            format,
            images_dir,
            samples,
            issues: caps.issues,
            uncaptioned: 0,
            missing_images: 0,
            selection: "all captioned images".into(),
        })
    }

    fn assemble(
        root: &Path,
        format: Format,
        mut caps: Captions,
        images_dir: PathBuf,
        sel: &Selection,
    ) -> Result<Self> {
        let Listing { names: on_disk, refused } = if caps.folders.is_empty() {
            listing(&images_dir)?
        } else {
            listing_in(&images_dir, &caps.folders)?
        };
        for (name, why) in refused.iter().take(20) {
            caps.issue(
                "images",
                None,
                format!("file name {name} {why}; rename the file to use it"),
            );
        }
        if refused.len() > 20 {
            caps.issue("images", None, format!("{} more file names refused", refused.len() - 20));
        }
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
        let samples = if caps.folders.is_empty() {
            samples(names, &images_dir)
        } else {
            // Each image in its split's folder.
            let mut s = samples(names, &images_dir);
            for x in &mut s {
                if let Some(folder) = caps.split.get(&x.name) {
                    x.path = images_dir.join(folder).join(&x.name);
                }
            }
            s
        };
        Ok(Self {
            root: root.to_owned(),
            format,
            images_dir,
            samples,
            issues: caps.issues,
            uncaptioned,
            missing_images: missing,
            selection: sel.describe(),
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
    let disk: std::collections::HashSet<&String> = on_disk.iter().collect();
    let mut names = Vec::new();
    let mut missing = 0;
    let mut all: Vec<(String, Vec<String>)> =
        std::mem::take(&mut caps.by_image).into_iter().collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, c) in all {
        if disk.contains(&name) {
            names.push((name, c));
            continue;
        }
        missing += 1;
        if missing <= 20 {
            let msg = match what_is(&images_dir.join(&name)) {
                Some(kind) => format!(
                    "captions name {}, which is {kind} in {}",
                    crate::text::sanitize(&name),
                    images_dir.display()
                ),
                None => format!(
                    "captions name {} but the image is not in {}",
                    crate::text::sanitize(&name),
                    images_dir.display()
                ),
            };
            caps.issue("captions", None, msg);
        }
    }
    if missing > 20 {
        caps.issue("captions", None, format!("{} more captioned images are missing", missing - 20));
    }
    let mut uncaptioned = 0;
    if count_uncaptioned {
        let captioned: std::collections::HashSet<&String> = names.iter().map(|(n, _)| n).collect();
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
        // The same seed picks the same images everywhere.
        crate::rng::draw(&mut names, n, seed);
        names.sort_by(|a, b| a.0.cmp(&b.0));
    }
    if let Some(n) = sel.limit {
        names.truncate(n);
    }
    names
}

/// Image files of `dir`, by name; symlinks are followed (datasets often live elsewhere), so
/// a link to a photo counts as the photo. Names that are not UTF-8 cannot be captioned and are
/// left out.
fn list_images(dir: &Path) -> Result<Vec<String>> {
    listing(dir).map(|l| l.names)
}

/// The images of several subfolders of `dir` as one listing (names are unique across them:
/// the captions name each image's folder).
fn listing_in(dir: &Path, folders: &[String]) -> Result<Listing> {
    let mut all = Listing { names: Vec::new(), refused: Vec::new() };
    for f in folders {
        let Listing { names, refused } = listing(&dir.join(f))?;
        all.names.extend(names);
        all.refused.extend(refused);
    }
    Ok(all)
}

/// An image folder's usable names and the image files refused for their names.
struct Listing {
    names: Vec<String>,
    /// Names shown escaped (`"a\nb.jpg"`, `"\xFF.jpg"`) with why they were refused.
    refused: Vec<(String, &'static str)>,
}

/// Lists an image folder. Names that are not UTF-8 or hold control characters are refused
/// (and reported): a row of `export`'s `.ids.txt` must always name its image, and untrusted
/// names never reach the terminal raw.
fn listing(dir: &Path) -> Result<Listing> {
    let rd = std::fs::read_dir(dir).map_err(|e| DatasetError::Read(dir.to_owned(), e))?;
    let mut names = Vec::new();
    let mut refused = Vec::new();
    for e in rd.filter_map(std::result::Result::ok) {
        let os = e.file_name();
        let looks_like_image = Path::new(&os)
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| IMAGE_EXTS.contains(&x.to_ascii_lowercase().as_str()));
        if !looks_like_image || !std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()) {
            continue;
        }
        match os.into_string() {
            Ok(n) if n.chars().any(char::is_control) => {
                refused.push((format!("{n:?}"), "contains control characters"));
            }
            Ok(n) => names.push(n),
            Err(os) => refused.push((format!("{:?}", os.to_string_lossy()), "is not UTF-8")),
        }
    }
    names.sort();
    refused.sort();
    Ok(Listing { names, refused })
}

/// What `path` is, in words, when it is there but not an image file.
fn what_is(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    let ft = m.file_type();
    Some(if ft.is_symlink() {
        if std::fs::metadata(path).is_err() {
            "a broken or looping symlink"
        } else if path.is_dir() {
            "a symlink to a directory"
        } else {
            "a symlink to something that is not a regular file"
        }
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        return None;
    })
}

/// The first existing folder among `candidates` (relative to `root`).
/// Samples numbered in order from (name, captions) pairs, their paths in `images_dir`.
fn samples(names: Vec<(String, Vec<String>)>, images_dir: &Path) -> Vec<Sample> {
    names
        .into_iter()
        .enumerate()
        .map(|(i, (name, captions))| Sample {
            id: i as u32,
            path: images_dir.join(&name),
            name,
            captions,
        })
        .collect()
}

/// The captions of `root` in `format`, and its image folder (or why none was found).
fn read_captions(root: &Path, format: Format) -> Result<(Captions, Result<PathBuf>)> {
    Ok(match format {
        Format::Flickr30kToken => flickr30k::token(root)?,
        Format::Flickr30kCsv => flickr30k::kaggle_csv(root)?,
        Format::Karpathy => flickr30k::karpathy(root)?,
        Format::Flickr30kHf => flickr30k::hf_csv(root)?,
        Format::Flickr8k => flickr8k::kaggle(root)?,
        Format::Coco => coco::captions(root)?,
        Format::Folder => (Captions::default(), Ok(root.to_owned())),
    })
}

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
pub fn detect(root: &Path) -> Option<Format> {
    for (file, fmt) in MARKERS {
        if root.join(file).exists() {
            return Some(*fmt);
        }
    }
    let coco_at_top = std::fs::read_dir(root).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("captions_") && n.to_ascii_lowercase().ends_with(".json")
        })
    });
    if coco_at_top {
        return Some(Format::Coco);
    }
    list_images(root).is_ok_and(|v| !v.is_empty()).then_some(Format::Folder)
}

/// The dataset folder and its layout: `root` itself, or the one folder just below it that
/// holds a caption file (the Kaggle Flickr30k download unpacks to
/// `flickr30k_images/results.csv` + `flickr30k_images/flickr30k_images/`).
pub fn locate(root: &Path) -> Result<(PathBuf, Format)> {
    if let Some(f) = detect(root) {
        return Ok((root.to_owned(), f));
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| DatasetError::Read(root.to_owned(), e))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    let found: Vec<(PathBuf, Format)> = subdirs
        .iter()
        .filter_map(|d| detect(d).filter(|f| *f != Format::Folder).map(|f| (d.clone(), f)))
        .collect();
    if let [(dir, f)] = found.as_slice() {
        crate::say!(
            "{} holds no caption file; found the {f} layout in {}",
            root.display(),
            dir.display()
        );
        return Ok((dir.clone(), *f));
    }
    let looked = MARKERS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ");
    let found_text = if found.len() > 1 {
        let list: Vec<String> =
            found.iter().map(|(d, f)| format!("{} ({f})", d.display())).collect();
        format!("several datasets one level down: {}; pass one of them", list.join(", "))
    } else {
        describe(root, &subdirs)
    };
    Err(DatasetError::Unknown {
        root: root.to_owned(),
        looked: format!("{looked}, or image files"),
        found: found_text,
    })
}

/// "3 folders (a, b, c) and 12 other files", with a hint for folders of images.
fn describe(root: &Path, subdirs: &[PathBuf]) -> String {
    let files = std::fs::read_dir(root).map_or(0, |rd| {
        rd.filter_map(std::result::Result::ok).filter(|e| e.path().is_file()).count()
    });
    let names: Vec<String> = subdirs
        .iter()
        .take(5)
        .map(|d| {
            let n = d.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
            match list_images(d).map(|v| v.len()) {
                Ok(k) if k > 0 => format!(
                    "{n}/ with {k} images (`--dataset {}` browses them without captions)",
                    d.display()
                ),
                _ => format!("{n}/"),
            }
        })
        .collect();
    let more =
        if subdirs.len() > 5 { format!(" and {} more", subdirs.len() - 5) } else { String::new() };
    format!(
        "{} folders ({}{more}) and {files} files",
        subdirs.len(),
        crate::text::sanitize(&names.join(", "))
    )
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

    /// Writes `lines` caption lines of one format into a fresh dataset folder.
    fn caption_file(dir: &Path, format: Format, lines: usize) {
        let images =
            dir.join(if format == Format::Flickr8k { "Images" } else { "flickr30k_images" });
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join("0.jpg"), b"x").unwrap();
        let mut text = String::new();
        match format {
            Format::Flickr8k => text.push_str("image,caption\r\n"),
            Format::Flickr30kCsv => text.push_str("image_name| comment_number| comment\n"),
            _ => {}
        }
        for i in 0..lines {
            let (img, n) = (i / 5, i % 5);
            text.push_str(&match format {
                Format::Flickr8k => format!("{img}.jpg,\"A dog, {i}, runs on grass .\"\r\n"),
                Format::Flickr30kCsv => format!("{img}.jpg| {n}| A dog {i} runs on grass .\n"),
                _ => format!("{img}.jpg#{n}\tA dog {i} runs on grass .\n"),
            });
        }
        let name = match format {
            Format::Flickr8k => "captions.txt",
            Format::Flickr30kCsv => "results.csv",
            _ => "results_20130124.token",
        };
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_quarter_million_lines_parse_whole_in_every_line_format() {
        // Parse speed is measured by `just bench-scale` (158,915 captions, each format) and
        // `just bench-coco` (616,767), not here: a timed test fails on a busy machine. What is
        // checked here is that a file 1.6 times Flickr30k's size parses line for line.
        for format in [Format::Flickr8k, Format::Flickr30kCsv, Format::Flickr30kToken] {
            let dir = tempfile::tempdir().unwrap();
            caption_file(dir.path(), format, 250_000);
            let ds = Dataset::open(dir.path(), Some(format), &Selection::default()).unwrap();
            let bad: Vec<&Issue> = ds.issues.iter().filter(|i| i.line.is_some()).collect();
            assert!(bad.is_empty(), "{format}: every line parses: {:?}", &bad[..bad.len().min(3)]);
            // 50,000 image names (5 captions each); only 0.jpg is on disk, so the other 49,999
            // are counted as missing and the first 20 of them named in issues.
            assert_eq!(ds.missing_images, 49_999, "{format}");
            let named = ds.issues.iter().filter(|i| i.message.contains("not in")).count();
            assert_eq!(named, 20, "{format}");
            assert_eq!(ds.samples.len(), 1, "{format}");
            let expected: Vec<String> = (0..5)
                .map(|i| match format {
                    Format::Flickr8k => format!("A dog, {i}, runs on grass ."),
                    _ => format!("A dog {i} runs on grass ."),
                })
                .collect();
            assert_eq!(ds.samples[0].captions, expected, "{format}");
        }
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
