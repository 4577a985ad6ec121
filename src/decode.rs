//! Reading image files safely: what every decoder in embtui (embedding, thumbnails, figures)
//! goes through. Refuses what would hang or exhaust memory before allocating for it.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// The largest image embtui decodes, in pixels per side; larger declared sizes are refused
/// before any pixel memory is allocated.
pub const MAX_SIDE: u32 = 16_384;
/// Decoder memory limit (bytes).
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// Why one image could not be embedded. The run goes on; the image is skipped and counted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("cannot read file: {0}")]
    Io(String),
    #[error("file is empty (0 bytes)")]
    Empty,
    #[error("not a supported image: {0}")]
    Format(String),
    #[error("declared size {width}×{height} exceeds the limit of {max}×{max} pixels")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("cannot decode image: {0}")]
    Decode(String),
}

/// Reads and decodes an image file to 8-bit RGB, EXIF orientation applied.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::Io(e.to_string()))?;
    decode_rgb(&bytes)
}

/// Decodes image bytes to 8-bit RGB, EXIF orientation applied, alpha dropped.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Io(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageError::Format("unrecognised file signature".into()));
    }
    let mut decoder = reader.into_decoder().map_err(|e| ImageError::Format(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::TooLarge { width, height, max: MAX_SIDE });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Decode(format!("image has no pixels ({width}×{height})")));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    decoder.set_limits(limits).map_err(|e| ImageError::Decode(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Decode(e.to_string()))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_bytes_are_errors_not_panics() {
        assert_eq!(decode_rgb(b""), Err(ImageError::Empty));
        assert!(matches!(decode_rgb(b"hello, not an image"), Err(ImageError::Format(_))));
    }
}
