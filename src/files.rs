//! Reading files safely: regular files only (following symlinks), with a size cap, so that a
//! FIFO never hangs a run, `/dev/zero` never fills memory and a 3 GB file named `x.jpg` is
//! refused before it is read.

use std::io::Read;
use std::path::Path;

/// embtui's data folder by the XDG rules: `$XDG_DATA_HOME/embtui`, else
/// `~/.local/share/embtui` (`just install` puts ONNX Runtime and the offline models there).
pub fn data_dir() -> std::path::PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    var("XDG_DATA_HOME")
        .map_or_else(
            || {
                std::path::PathBuf::from(var("HOME").unwrap_or_else(|| ".".into()))
                    .join(".local/share")
            },
            std::path::PathBuf::from,
        )
        .join("embtui")
}

/// Writes `bytes` to `path` through a temporary file beside it (mode 0644), so a reader never
/// sees half a file and a failed run never leaves one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Why a file was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("cannot read file: {0}")]
    Io(String),
    #[error("is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("is {size} bytes, above the {max}-byte limit for {what}")]
    TooBig { size: u64, max: u64, what: &'static str },
}

/// What a path is, in words, when it is not a regular file.
fn kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// The metadata of `path` (symlinks followed) when it is a regular file of at most `max` bytes.
pub fn check(path: &Path, max: u64, what: &'static str) -> Result<std::fs::Metadata, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| FileError::Io(e.to_string()))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile(kind(meta.file_type())));
    }
    if meta.len() > max {
        return Err(FileError::TooBig { size: meta.len(), max, what });
    }
    Ok(meta)
}

/// Reads a regular file of at most `max` bytes (also if it grows while being read).
pub fn read(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let meta = check(path, max, what)?;
    let f = std::fs::File::open(path).map_err(|e| FileError::Io(e.to_string()))?;
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(max + 1).read_to_end(&mut buf).map_err(|e| FileError::Io(e.to_string()))?;
    if buf.len() as u64 > max {
        return Err(FileError::TooBig { size: buf.len() as u64, max, what });
    }
    Ok(buf)
}

/// Reads a regular text file of at most `max` bytes as UTF-8 (for JSON reports and manifests).
pub fn read_to_string(path: &Path, max: u64, what: &'static str) -> Result<String, FileError> {
    let bytes = read(path, max, what)?;
    String::from_utf8(bytes).map_err(|e| FileError::Io(format!("not UTF-8 text: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_folders_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read(Path::new("/dev/zero"), 10, "x"),
            Err(FileError::NotAFile("a character device"))
        );
        assert_eq!(read(dir.path(), 10, "x"), Err(FileError::NotAFile("a directory")));
        let fifo = dir.path().join("q.jpg");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // Opening a FIFO for reading would block until a writer comes: it is never opened.
        assert_eq!(read(&fifo, 10, "x"), Err(FileError::NotAFile("a FIFO (named pipe)")));
    }

    #[test]
    fn files_over_the_cap_are_refused_and_symlinks_followed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, [7u8; 100]).unwrap();
        let err = read(&f, 99, "an image").unwrap_err();
        assert_eq!(err.to_string(), "is 100 bytes, above the 99-byte limit for an image");
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(read(&link, 100, "x").unwrap().len(), 100);
    }
}
