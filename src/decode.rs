//! Decoding image files safely: what every decoder in embtui (embedding, thumbnails, figures)
//! goes through.
//!
//! - Only regular files up to [`MAX_FILE_BYTES`] are read (`files.rs`).
//! - Images above a total-pixel limit are refused before any pixel memory is allocated (as
//!   Pillow does: warn above 89 MP, refuse above 179 MP by default; `--max-megapixels`).
//! - Decoding draws on one process-wide memory budget, so N threads never hold N huge images.
//! - A JPEG that ends before its data does (a cut download, a header claiming more pixels than
//!   the file holds) is refused with the reason, unless the caller accepts truncated images.

use std::io::Cursor;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use crate::files::{self, FileError};

/// The largest image file embtui reads.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Pillow's `MAX_IMAGE_PIXELS`: above it a decode is worth a warning.
pub const WARN_PIXELS: u64 = 89_478_485;
/// Twice that: refused by default (Pillow raises `DecompressionBombError` there).
pub const DEFAULT_MAX_PIXELS: u64 = 2 * WARN_PIXELS;
/// Bytes of decoded pixels all decoding threads of the process may hold at once.
const DECODE_BUDGET: u64 = 1 << 30;

/// Why one image could not be embedded. The run goes on; the image is skipped and counted.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ImageError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error("file is empty (0 bytes)")]
    Empty,
    #[error("not a supported image: {0}")]
    Format(String),
    #[error(
        "{width}×{height} is {mp:.0} megapixels, above the limit of {max_mp:.0} \
         (a decompression bomb?); raise it with --max-megapixels if the image is real"
    )]
    TooManyPixels { width: u32, height: u32, mp: f64, max_mp: f64 },
    #[error("image file is truncated ({0}); re-download it, or pass --accept-truncated")]
    Truncated(String),
    #[error("cannot decode image: {0}")]
    Decode(String),
}

/// How to decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    pub max_pixels: u64,
    /// Decode truncated JPEGs anyway (the missing part is grey); the caller counts them.
    pub accept_truncated: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { max_pixels: DEFAULT_MAX_PIXELS, accept_truncated: false }
    }
}

/// A decoded image and whether it was accepted although truncated.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: RgbImage,
    pub truncated: bool,
}

/// The metadata of an image file that may be read (regular, within the size cap).
pub fn check_file(path: &Path) -> Result<std::fs::Metadata, ImageError> {
    Ok(files::check(path, MAX_FILE_BYTES, "an image")?)
}

/// An image file's bytes (regular files within the size cap only).
pub fn read_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    Ok(files::read(path, MAX_FILE_BYTES, "an image")?)
}

/// Reads and decodes an image file to 8-bit RGB with the default options.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    load(path, &DecodeOptions::default()).map(|d| d.image)
}

/// Reads and decodes an image file to 8-bit RGB, EXIF orientation applied.
pub fn load(path: &Path, opts: &DecodeOptions) -> Result<Decoded, ImageError> {
    decode(&read_file(path)?, opts)
}

/// Decodes image bytes to 8-bit RGB, EXIF orientation applied, alpha dropped.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<Decoded, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Format(e.to_string()))?;
    match reader.format() {
        None => Err(ImageError::Format("unrecognised file signature".into())),
        Some(ImageFormat::Jpeg) => decode_jpeg(bytes, opts),
        Some(_) => decode_other(reader, opts),
    }
}

/// Refuses `width × height` above the limit, warns above Pillow's.
fn check_pixels(width: u32, height: u32, opts: &DecodeOptions) -> Result<u64, ImageError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(ImageError::Decode(format!("image has no pixels ({width}×{height})")));
    }
    if pixels > opts.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            mp: pixels as f64 / 1e6,
            max_mp: opts.max_pixels as f64 / 1e6,
        });
    }
    if pixels > WARN_PIXELS {
        crate::warn!(
            "decoding a {width}×{height} image ({:.0} megapixels, needs about {} MB)",
            pixels as f64 / 1e6,
            (pixels * 4) >> 20
        );
    }
    Ok(pixels)
}

fn decode_jpeg(bytes: &[u8], opts: &DecodeOptions) -> Result<Decoded, ImageError> {
    let strict = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), strict);
    d.decode_headers().map_err(|e| ImageError::Format(e.to_string()))?;
    let (w, h) = d.dimensions().ok_or_else(|| ImageError::Format("no frame header".into()))?;
    let (w, h) = (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX));
    let pixels = check_pixels(w, h, opts)?;
    let orientation = d.exif().and_then(|e| image::metadata::Orientation::from_exif_chunk(e));
    let _budget = Budget::acquire(pixels * 3);
    let mut truncated = false;
    let rgb = match d.decode() {
        Ok(v) => v,
        Err(e) if is_truncation(&e) => {
            if !opts.accept_truncated {
                return Err(ImageError::Truncated(format!("{e:?}")));
            }
            truncated = true;
            let lenient = strict.set_strict_mode(false);
            zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), lenient)
                .decode()
                .map_err(|e| ImageError::Decode(format!("{e:?}")))?
        }
        Err(e) => return Err(ImageError::Decode(format!("{e:?}"))),
    };
    let image = RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| ImageError::Decode("decoder returned fewer pixels than declared".into()))?;
    if let Some(why) = missing_rows(bytes, &image) {
        if !opts.accept_truncated {
            return Err(ImageError::Truncated(why));
        }
        truncated = true;
    }
    let mut img = DynamicImage::ImageRgb8(image);
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(Decoded { image: img.into_rgb8(), truncated })
}

/// zune-jpeg's strict mode says "Exhausted data" when the file ends inside the image data.
fn is_truncation(e: &zune_jpeg::errors::DecodeErrors) -> bool {
    let text = format!("{e:?}");
    text.contains("Exhausted") || text.contains("No more bytes") || text.contains("EOF")
}

/// A JPEG whose header claims more rows than its data holds decodes without error, the
/// missing rows filled with flat colours that have nothing to do with the photo. Two signs,
/// either enough:
/// - too few bytes: every 8×8 luma block takes at least 2 bits of entropy-coded data;
/// - a fill: the bottom quarter of the rows or more is flat (one colour per row, but for
///   stray blocks), and its colours appear nowhere in the row just above it. A flat area of
///   a real picture (a studio backdrop, a plain background) continues a colour that is there.
fn missing_rows(bytes: &[u8], img: &RgbImage) -> Option<String> {
    let (w, h) = img.dimensions();
    let blocks = u64::from(w.div_ceil(8)) * u64::from(h.div_ceil(8));
    if (bytes.len() as u64) * 8 < blocks * 2 {
        return Some(format!(
            "{} bytes cannot hold the {w}×{h} pixels its header declares",
            bytes.len()
        ));
    }
    let row = (w * 3) as usize;
    let flat = |r: &[u8]| r.chunks(3).zip(r.chunks(3).skip(1)).filter(|(a, b)| a != b).count() <= 2;
    let rows: Vec<&[u8]> = img.as_raw().chunks(row).collect();
    let quarter = &rows[rows.len() - rows.len() / 4..];
    if quarter.len() < 16 || quarter.iter().filter(|r| flat(r)).count() * 10 < quarter.len() * 9 {
        return None;
    }
    // Where the flat part starts: the first of 16 flat rows in a row.
    let start =
        (0..rows.len().saturating_sub(16)).find(|&i| rows[i..i + 16].iter().all(|r| flat(r)))?;
    let above = rows[start.checked_sub(1)?];
    let continues =
        rows[start..].iter().filter(|r| flat(r)).all(|r| above.chunks(3).any(|p| p == &r[..3]));
    (!continues).then(|| format!("its data ends near row {start} of the {h} its header declares"))
}

fn decode_other(
    reader: ImageReader<Cursor<&[u8]>>,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    let mut decoder = reader.into_decoder().map_err(|e| ImageError::Format(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    let pixels = check_pixels(w, h, opts)?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8));
    decoder.set_limits(limits).map_err(|e| ImageError::Decode(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let _budget = Budget::acquire(decoder.total_bytes() + pixels * 3);
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Decode(e.to_string()))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(Decoded { image: img.into_rgb8(), truncated: false })
}

/// A share of the process-wide decode budget, returned when dropped.
struct Budget(u64);

static AVAILABLE: Mutex<u64> = Mutex::new(DECODE_BUDGET);
static RETURNED: Condvar = Condvar::new();

impl Budget {
    /// Waits until `bytes` are free (an image larger than the whole budget waits for all of
    /// it, so it decodes alone).
    fn acquire(bytes: u64) -> Self {
        let want = bytes.min(DECODE_BUDGET);
        let mut free = AVAILABLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *free < want {
            free = RETURNED.wait(free).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *free -= want;
        Self(want)
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        let mut free = AVAILABLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *free += self.0;
        RETURNED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    #[test]
    fn empty_and_garbage_bytes_are_errors_not_panics() {
        let o = DecodeOptions::default();
        assert!(matches!(decode(b"", &o), Err(ImageError::Empty)));
        assert!(matches!(decode(b"hello, not an image", &o), Err(ImageError::Format(_))));
    }

    #[test]
    fn a_cut_jpeg_is_refused_unless_accepted() {
        let whole = jpeg(96, 64);
        let o = DecodeOptions::default();
        assert_eq!(decode(&whole, &o).unwrap().image.dimensions(), (96, 64));
        let cut = &whole[..whole.len() / 2];
        let err = decode(cut, &o).unwrap_err();
        assert!(matches!(err, ImageError::Truncated(_)), "{err}");
        let ok = decode(cut, &DecodeOptions { accept_truncated: true, ..o }).unwrap();
        assert!(ok.truncated && ok.image.dimensions() == (96, 64));
    }

    #[test]
    fn a_plain_background_is_not_mistaken_for_missing_data() {
        // A red square on grey: the bottom half is flat, and grey is in the rows above it.
        let img = RgbImage::from_fn(96, 96, |x, y| {
            if (20..40).contains(&x) && (10..40).contains(&y) {
                image::Rgb([200, 30, 30])
            } else {
                image::Rgb([128, 128, 128])
            }
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        let png = image::load_from_memory(&out).unwrap().to_rgb8();
        let mut jpg = Vec::new();
        png.write_to(&mut Cursor::new(&mut jpg), ImageFormat::Jpeg).unwrap();
        assert!(decode(&jpg, &DecodeOptions::default()).is_ok());
    }

    #[test]
    fn pixel_limit_refuses_before_decoding() {
        let o = DecodeOptions { max_pixels: 96 * 64 - 1, ..DecodeOptions::default() };
        let err = decode(&jpeg(96, 64), &o).unwrap_err();
        assert!(matches!(err, ImageError::TooManyPixels { width: 96, height: 64, .. }), "{err}");
    }
}
