//! Flickr8k Kaggle `captions.txt`: CSV with header `image,caption`.

use std::path::{Path, PathBuf};

use super::{file_label, find_dir, Captions, DatasetError, Result};

pub fn kaggle(root: &Path) -> Result<(Captions, PathBuf)> {
    let path = root.join("captions.txt");
    let mut caps = Captions::default();
    let (text, headers) = super::csv_file(&path, &mut caps)?;
    let file = file_label(&path);
    if headers.get(0) != Some("image") || headers.get(1) != Some("caption") {
        return Err(DatasetError::Parse {
            file: path,
            what: "Flickr8k captions.txt",
            message: format!(
                "header must be `image,caption`, found `{}`",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        });
    }
    let lines = super::LineIndex::new(&text);
    for rec in super::csv_records(&text) {
        match rec {
            Ok(r) if r.len() >= 2 => {
                let line = lines.line(r.position());
                if r.len() > 2 {
                    caps.issue(&file, line, "more than 2 fields (unquoted comma?); joined".into());
                }
                let caption: Vec<&str> = r.iter().skip(1).collect();
                caps.add(&file, line, &r[0], &caption.join(","));
            }
            Ok(r) => caps.issue(&file, lines.line(r.position()), "expected `image,caption`".into()),
            Err(e) => {
                caps.issue(&file, lines.line(e.position()), format!("bad CSV row: {e}"));
            }
        }
    }
    Ok((caps, find_dir(root, &["Images", "images", "Flicker8k_Dataset"])?))
}
