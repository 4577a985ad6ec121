//! Flickr8k Kaggle `captions.txt`: CSV with header `image,caption`, read in one streaming pass.

use std::path::{Path, PathBuf};

use super::read::{record, TextFile};
use super::{find_dir, Captions, DatasetError, Result};

pub fn kaggle(root: &Path) -> Result<(Captions, Result<PathBuf>)> {
    let path = root.join("captions.txt");
    let mut caps = Captions::default();
    let file = TextFile::open(&path)?;
    let label = file.label.clone();
    let mut reader = file.csv();
    let headers = reader.byte_headers().map_err(|e| DatasetError::Parse {
        file: path.clone(),
        what: "CSV",
        message: e.to_string(),
    })?;
    if headers.get(0) != Some(b"image".as_slice()) || headers.get(1) != Some(b"caption".as_slice())
    {
        let found =
            String::from_utf8_lossy(&headers.as_slice()[..headers.as_slice().len().min(60)])
                .into_owned();
        return Err(DatasetError::Parse {
            file: path,
            what: "Flickr8k captions.txt",
            message: format!(
                "line 1 must be the header `image,caption`, found `{}`",
                crate::text::fit(&crate::text::sanitize(&found), 60)
            ),
        });
    }
    let mut issues = Vec::new();
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
        match fields.as_slice() {
            [image, caption] => caps.add(&label, line, image, caption),
            [image, rest @ ..] if !rest.is_empty() => {
                caps.issue(&label, line, "more than 2 fields (unquoted comma?); joined".into());
                caps.add(&label, line, image, &rest.join(","));
            }
            _ => caps.issue(&label, line, "expected `image,caption`".into()),
        }
    }
    caps.issues.extend(issues);
    Ok((caps, find_dir(root, &["Images", "images", "Flicker8k_Dataset"])))
}
