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
    /// Never decode at reduced scale (`--decode exact`).
    pub exact: bool,
    /// The smallest size the caller needs: large JPEGs are decoded at 1/2, 1/4 or 1/8 scale
    /// (libjpeg's scaled IDCT, as Pillow's `draft`) while they stay at least this big.
    pub draft: Option<Draft>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { max_pixels: DEFAULT_MAX_PIXELS, accept_truncated: false, exact: false, draft: None }
    }
}

/// How big a decoded image must stay: its shorter (or longer) side at least `at_least`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draft {
    pub shorter: bool,
    pub at_least: u32,
}

impl Draft {
    /// The JPEG scale (numerator over 8: 1, 2 or 4) that keeps the image at least this big, or
    /// None when only full scale does.
    pub fn scale(self, width: u32, height: u32) -> Option<u32> {
        let side = if self.shorter { width.min(height) } else { width.max(height) };
        [1u32, 2, 4].into_iter().find(|&num| (side * num).div_ceil(8) >= self.at_least)
    }
}

/// A decoded image and whether it was accepted although truncated. It holds its share of
/// the decode budget until dropped, so an image's preprocessing (resample buffers, copies)
/// happens inside the budget too.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: RgbImage,
    pub truncated: bool,
    /// Decoded below full scale (a large JPEG, `DecodeOptions::draft`).
    pub reduced: bool,
    _hold: Option<std::sync::Arc<Budget>>,
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
    // The decoded pixels, and as much again for what preprocessing makes of them.
    let budget = std::sync::Arc::new(Budget::acquire(pixels * 6));
    if let Some(num) = opts.draft.filter(|_| !opts.exact).and_then(|dr| dr.scale(w, h)) {
        // Any trouble (an unusual colour space, damage) goes to the exact path, which says
        // what is wrong.
        if let Some(image) = decode_jpeg_scaled(bytes, w, h, num) {
            let mut img = DynamicImage::ImageRgb8(image);
            if let Some(o) = orientation {
                img.apply_orientation(o);
            }
            let image = img.into_rgb8();
            return Ok(Decoded { image, truncated: false, reduced: true, _hold: Some(budget) });
        }
    }
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
    Ok(Decoded { image: img.into_rgb8(), truncated, reduced: false, _hold: Some(budget) })
}

/// Decodes a JPEG at `num`/8 scale with jpeg-decoder's scaled IDCT; None when that decoder
/// cannot (then the exact path decodes it and reports any problem).
fn decode_jpeg_scaled(bytes: &[u8], w: u32, h: u32, num: u32) -> Option<RgbImage> {
    let (sw, sh) = ((w * num).div_ceil(8), (h * num).div_ceil(8));
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    let got = d.scale(u16::try_from(sw).ok()?, u16::try_from(sh).ok()?).ok()?;
    if (u32::from(got.0), u32::from(got.1)) != (sw, sh) {
        return None;
    }
    let px = d.decode().ok()?;
    let rgb = match d.info()?.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => px,
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => return None,
    };
    let image = RgbImage::from_raw(sw, sh, rgb)?;
    // A cut file decodes with a flat fill here too: leave it to the exact path's checks.
    missing_rows(bytes, &image).is_none().then_some(image)
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
    let budget = std::sync::Arc::new(Budget::acquire(decoder.total_bytes() + pixels * 6));
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Decode(e.to_string()))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(Decoded { image: img.into_rgb8(), truncated: false, reduced: false, _hold: Some(budget) })
}

/// A share of the process-wide decode budget, returned when dropped.
#[derive(Debug)]
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

    #[test]
    fn draft_scale_is_the_smallest_that_keeps_the_needed_side() {
        let shorter = |n| Draft { shorter: true, at_least: n };
        // 4032×3024 for a 256 resize target (×2 = 512): 3024/8 = 378 < 512, 3024/4 = 756.
        assert_eq!(shorter(512).scale(4032, 3024), Some(2));
        assert_eq!(shorter(378).scale(4032, 3024), Some(1));
        assert_eq!(shorter(379).scale(4032, 3024), Some(2));
        // Flickr's 500×375 never qualifies for a 224 target (×2 = 448 > 375).
        assert_eq!(shorter(448).scale(500, 375), None);
        assert_eq!(Draft { shorter: false, at_least: 256 }.scale(3024, 4032), Some(1));
    }

    #[test]
    fn a_large_jpeg_is_decoded_at_reduced_scale_and_agrees_with_the_full_decode() {
        // Smooth content with edges, 1600×1200; the caller needs a shorter side of 448.
        let img = RgbImage::from_fn(1600, 1200, |x, y| {
            let edge = if (x / 200 + y / 150) % 2 == 0 { 60 } else { 0 };
            image::Rgb([(x / 10) as u8 + edge, (y / 6) as u8, ((x + y) / 12) as u8])
        });
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg).unwrap();
        let draft = DecodeOptions {
            draft: Some(Draft { shorter: true, at_least: 448 }),
            ..DecodeOptions::default()
        };
        let small = decode(&bytes, &draft).unwrap().image;
        assert_eq!(small.dimensions(), (800, 600), "1/2 scale keeps 600 ≥ 448");
        let exact = DecodeOptions { exact: true, ..draft };
        assert_eq!(decode(&bytes, &exact).unwrap().image.dimensions(), (1600, 1200));
        // Both shrunk to 224 rows: they differ by about one level on average.
        let full = decode(&bytes, &DecodeOptions::default()).unwrap().image;
        let a = image::imageops::resize(&small, 299, 224, image::imageops::FilterType::Triangle);
        let b = image::imageops::resize(&full, 299, 224, image::imageops::FilterType::Triangle);
        let diff: f64 =
            a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| f64::from(x.abs_diff(y))).sum::<f64>()
                / a.as_raw().len() as f64;
        assert!(diff < 1.5, "mean absolute difference {diff:.2} levels");
    }

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
