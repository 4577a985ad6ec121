//! Reading caption files as streams: one pass, memory independent of the file's size, exact
//! 1-based line numbers in every message. Only regular files are opened (a FIFO never hangs a
//! run), a binary file is refused with the offset of its first NUL byte, a UTF-8 BOM is
//! skipped, CRLF is accepted, and invalid UTF-8 is replaced and reported with its line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{file_label, DatasetError, Issue, Result};

/// The largest caption file read (all of Flickr30k's is 16 MB; COCO's train JSON 90 MB).
pub const MAX_CAPTION_FILE: u64 = 4 << 30;

/// A caption file opened for reading, positioned after any BOM.
pub struct TextFile {
    pub path: PathBuf,
    pub label: String,
    reader: BufReader<File>,
}

impl TextFile {
    /// Opens `path` when it is a regular text file.
    pub fn open(path: &Path) -> Result<Self> {
        crate::files::check(path, MAX_CAPTION_FILE, "a caption file")
            .map_err(|e| DatasetError::NotReadable { path: path.to_owned(), why: e.to_string() })?;
        let f = File::open(path).map_err(|e| DatasetError::Read(path.to_owned(), e))?;
        let mut reader = BufReader::with_capacity(1 << 16, f);
        let head = reader.fill_buf().map_err(|e| DatasetError::Read(path.to_owned(), e))?;
        if let Some(at) = head.iter().take(8192).position(|&b| b == 0) {
            return Err(DatasetError::Binary { file: path.to_owned(), offset: at + 1 });
        }
        if head.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
        Ok(Self { path: path.to_owned(), label: file_label(path), reader })
    }

    /// Calls `f(line number, text)` for every non-blank line.
    pub fn for_each_line(
        mut self,
        issues: &mut Vec<Issue>,
        mut f: impl FnMut(u64, &str),
    ) -> Result<()> {
        let mut buf = Vec::with_capacity(256);
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| DatasetError::Read(self.path.clone(), e))?;
            if n == 0 {
                return Ok(());
            }
            line += 1;
            let raw = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = utf8(raw, &self.label, line, issues);
            if !text.trim().is_empty() {
                f(line, &text);
            }
        }
    }

    /// A flexible CSV reader over the rest of the file. Carriage returns are dropped on the
    /// way in: csv's line count (kept for messages) is one short per record in CRLF files.
    pub fn csv(self) -> csv::Reader<NoCr<BufReader<File>>> {
        csv::ReaderBuilder::new().flexible(true).from_reader(NoCr(self.reader))
    }

    /// Parses the file as JSON in one streaming pass.
    pub fn json<T: serde::de::DeserializeOwned>(self, what: &'static str) -> Result<T> {
        serde_json::from_reader(self.reader).map_err(|e| DatasetError::Parse {
            file: self.path,
            what,
            message: e.to_string(),
        })
    }
}

/// A reader that drops every `\r` byte (CRLF → LF; captions never hold a bare CR).
pub struct NoCr<R>(R);

impl<R: BufRead> std::io::Read for NoCr<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let buf = self.0.fill_buf()?;
            if buf.is_empty() {
                return Ok(0);
            }
            let mut n = 0;
            let mut used = 0;
            for &b in buf {
                if n == out.len() {
                    break;
                }
                used += 1;
                if b != b'\r' {
                    out[n] = b;
                    n += 1;
                }
            }
            self.0.consume(used);
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// Text of `raw`, invalid UTF-8 replaced and reported at `line` of `file`.
pub fn utf8<'a>(
    raw: &'a [u8],
    file: &str,
    line: u64,
    issues: &mut Vec<Issue>,
) -> std::borrow::Cow<'a, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => s.into(),
        Err(e) => {
            issues.push(Issue {
                file: file.to_owned(),
                line: Some(line),
                message: format!(
                    "invalid UTF-8 at byte {} of the line, replaced with U+FFFD",
                    e.valid_up_to() + 1
                ),
            });
            String::from_utf8_lossy(raw)
        }
    }
}

/// The fields of a CSV record as text (invalid UTF-8 replaced and reported) and its line.
pub fn record(
    rec: &csv::ByteRecord,
    file: &str,
    issues: &mut Vec<Issue>,
) -> (Vec<String>, Option<u64>) {
    let line = rec.position().map(csv::Position::line);
    let fields =
        rec.iter().map(|f| utf8(f, file, line.unwrap_or(0), issues).into_owned()).collect();
    (fields, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("captions.txt");
        std::fs::write(&p, bytes).unwrap();
        (d, p)
    }

    #[test]
    fn lines_are_numbered_exactly_with_bom_crlf_blank_lines_and_bad_utf8() {
        let (_d, p) = file(b"\xEF\xBB\xBFa\r\n\r\nb\xff\nc");
        let mut issues = Vec::new();
        let mut seen = Vec::new();
        TextFile::open(&p)
            .unwrap()
            .for_each_line(&mut issues, |n, t| seen.push((n, t.to_owned())))
            .unwrap();
        assert_eq!(seen, [(1, "a".into()), (3, "b\u{fffd}".into()), (4, "c".into())]);
        assert_eq!(issues.len(), 1);
        assert_eq!(
            (issues[0].line, issues[0].message.as_str()),
            (Some(3), "invalid UTF-8 at byte 2 of the line, replaced with U+FFFD")
        );
    }

    #[test]
    fn csv_records_know_their_line_with_crlf_and_quoted_newlines() {
        let (_d, p) = file(b"image,caption\r\na.jpg,\"one\r\ntwo\"\r\nb.jpg,\"x, y\"\r\n");
        let mut r = TextFile::open(&p).unwrap().csv();
        let mut issues = Vec::new();
        let recs: Vec<(Vec<String>, Option<u64>)> =
            r.byte_records().map(|x| record(&x.unwrap(), "captions.txt", &mut issues)).collect();
        assert_eq!(recs[0].1, Some(2));
        assert_eq!(recs[1], (vec!["b.jpg".to_owned(), "x, y".to_owned()], Some(4)));
    }

    #[test]
    fn binary_files_are_refused_with_the_offset() {
        let (_d, p) = file(b"image,caption\n\x89PNG\0\0");
        let err = TextFile::open(&p).err().unwrap().to_string();
        assert!(err.contains("binary") && err.contains("byte 19"), "{err}");
    }
}
