//! Flickr8k Kaggle `captions.txt`: CSV with header `image,caption`.

use std::path::{Path, PathBuf};

use super::{file_label, find_dir, read_text, Captions, DatasetError, Result};

pub fn kaggle(root: &Path) -> Result<(Captions, PathBuf)> {
    let path = root.join("captions.txt");
    let mut caps = Captions::default();
    let text = read_text(&path, &mut caps.issues)?;
    let file = file_label(&path);
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| DatasetError::Parse {
            file: path.clone(),
            what: "CSV",
            message: e.to_string(),
        })?
        .clone();
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
    for rec in rdr.records() {
        match rec {
            Ok(r) if r.len() >= 2 => {
                let line = super::line_at(&text, r.position());
                if r.len() > 2 {
                    caps.issue(&file, line, "more than 2 fields (unquoted comma?); joined".into());
                }
                let caption: Vec<&str> = r.iter().skip(1).collect();
                caps.add(&file, line, &r[0], &caption.join(","));
            }
            Ok(r) => caps.issue(
                &file,
                super::line_at(&text, r.position()),
                "expected `image,caption`".into(),
            ),
            Err(e) => {
                caps.issue(&file, super::line_at(&text, e.position()), format!("bad CSV row: {e}"))
            }
        }
    }
    Ok((caps, find_dir(root, &["Images", "images", "Flicker8k_Dataset"])?))
}
