//! Image decoding and preprocessing: file bytes → the model's input tensor, as the manifest says.
//!
//! Mirrors `onnx/reference.py` (PIL + numpy) step for step; `fast_image_resize` implements the
//! same convolution filters as PIL, which keeps embtui's embeddings within cosine 0.999 of it.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::manifest::{Channels, Layout, ModelEntry, ResizeRule, Rounding};

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

/// Size after the resize step with the manifest's rounding of the kept-aspect side.
pub fn resized_size_with(
    width: u32,
    height: u32,
    rule: ResizeRule,
    to: u32,
    round: Rounding,
) -> (u32, u32) {
    if rule == ResizeRule::Exact {
        return (to, to);
    }
    let side = if rule == ResizeRule::Shorter { width.min(height) } else { width.max(height) };
    let other = if width == side { height } else { width };
    let v = match round {
        // Python: round(other * (to / side)), ties to even.
        Rounding::Nearest => {
            (f64::from(other) * (f64::from(to) / f64::from(side))).round_ties_even()
        }
        // Hugging Face: int(to * other / side).
        Rounding::Floor => (f64::from(to) * f64::from(other) / f64::from(side)).floor(),
    };
    let v = (v as u32).max(1);
    if width == side {
        (to, v)
    } else {
        (v, to)
    }
}

/// Resizes with the manifest's rule and filter (Pillow-exact, see `resample.rs`).
pub fn resize(img: &RgbImage, m: &ModelEntry) -> Result<RgbImage, ImageError> {
    let (w, h) =
        resized_size_with(img.width(), img.height(), m.resize.rule, m.resize.to, m.resize.round);
    if (w, h) == img.dimensions() {
        return Ok(img.clone());
    }
    Ok(super::resample::resize(img, w, h, m.resize.interpolation))
}

/// Writes the model input for one decoded image into `out` (`size*size*3` floats, in the
/// manifest's layout and channel order): resize → centre crop → centred zero pad → normalise.
pub fn write_tensor(img: &RgbImage, m: &ModelEntry, out: &mut [f32]) -> Result<(), ImageError> {
    let s = m.size as usize;
    debug_assert_eq!(out.len(), s * s * 3);
    let resized = resize(img, m)?;
    let (rw, rh) = (resized.width() as i64, resized.height() as i64);
    // Offset of the model canvas inside the resized image: positive crops, negative pads.
    let (off_x, off_y) = match (m.crop, m.pad) {
        (Some(c), _) => ((rw - i64::from(c)) / 2, (rh - i64::from(c)) / 2),
        (None, Some(p)) => (-((i64::from(p) - rw) / 2), -((i64::from(p) - rh) / 2)),
        (None, None) => (0, 0),
    };
    let order: [usize; 3] = match m.channels {
        Channels::Rgb => [0, 1, 2],
        Channels::Bgr => [2, 1, 0],
    };
    // Per channel: value = pixel * scale + shift, with scale = rescale/std, shift = -mean/std.
    let scale: [f32; 3] = std::array::from_fn(|c| m.rescale / m.std[c]);
    let shift: [f32; 3] = std::array::from_fn(|c| -m.mean[c] / m.std[c]);
    let pad_value: [f32; 3] = shift;
    let plane = s * s;
    let raw = resized.as_raw();
    for y in 0..s {
        let sy = y as i64 + off_y;
        let row_inside = sy >= 0 && sy < rh;
        for x in 0..s {
            let sx = x as i64 + off_x;
            let base = if row_inside && sx >= 0 && sx < rw {
                Some(((sy * rw + sx) * 3) as usize)
            } else {
                None
            };
            for (c, &src_c) in order.iter().enumerate() {
                let v = match base {
                    Some(b) => f32::from(raw[b + src_c]) * scale[c] + shift[c],
                    None => pad_value[c],
                };
                let idx = match m.layout {
                    Layout::Nchw => c * plane + y * s + x,
                    Layout::Nhwc => (y * s + x) * 3 + c,
                };
                out[idx] = v;
            }
        }
    }
    Ok(())
}

/// Decodes a file and writes its model input; what a worker does for one image.
pub fn load_tensor(path: &Path, m: &ModelEntry, out: &mut [f32]) -> Result<(), ImageError> {
    let img = load_rgb(path)?;
    write_tensor(&img, m, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::Manifest;

    fn resized_size(w: u32, h: u32, rule: ResizeRule, to: u32) -> (u32, u32) {
        resized_size_with(w, h, rule, to, Rounding::Nearest)
    }

    #[test]
    fn hugging_face_rounding_truncates() {
        // 500×375 → shorter side 224: 224·500/375 = 298.67; Python rounds to 299, HF takes 298.
        assert_eq!(resized_size(500, 375, ResizeRule::Shorter, 224), (299, 224));
        assert_eq!(
            resized_size_with(500, 375, ResizeRule::Shorter, 224, Rounding::Floor),
            (298, 224)
        );
    }

    #[test]
    fn shorter_side_resize_rounds_like_python() {
        // 500×375 → shorter side 256: 500*256/375 = 341.33 → 341.
        assert_eq!(resized_size(500, 375, ResizeRule::Shorter, 256), (341, 256));
        // 375×500 portrait keeps the width at 256.
        assert_eq!(resized_size(375, 500, ResizeRule::Shorter, 256), (256, 341));
        // 500×333 → longest to 224: 333*0.448 = 149.18 → 149.
        assert_eq!(resized_size(500, 333, ResizeRule::Longest, 224), (224, 149));
        // Ties go to even as in Python: 5*0.5 = 2.5 → 2.
        assert_eq!(resized_size(10, 5, ResizeRule::Longest, 5), (5, 2));
        assert_eq!(resized_size(1, 1, ResizeRule::Shorter, 256), (256, 256));
    }

    #[test]
    fn uniform_grey_image_normalises_to_the_hand_computed_value() {
        let m = Manifest::load(&[]).unwrap().get("efficientnet-lite0").unwrap().clone();
        let img = RgbImage::from_pixel(300, 200, image::Rgb([128, 128, 128]));
        let mut out = vec![0.0; 224 * 224 * 3];
        write_tensor(&img, &m, &mut out).unwrap();
        let want = (128.0 / 255.0 - 0.498) / 0.502; // 0.00767
        assert!(out.iter().all(|v| (v - want).abs() < 1e-5), "{}", out[0]);
    }

    #[test]
    fn padding_is_zero_before_normalisation_and_centred() {
        let m = Manifest::load(&[]).unwrap().get("dinov2-s14-imgfocus").unwrap().clone();
        // 448×224 white → 224×112, padded 56 rows above and below.
        let img = RgbImage::from_pixel(448, 224, image::Rgb([255, 255, 255]));
        let mut out = vec![0.0; 224 * 224 * 3];
        write_tensor(&img, &m, &mut out).unwrap();
        let red = |y: usize, x: usize| out[y * 224 + x]; // channel 0, NCHW
        let pad = (0.0 - 0.485) / 0.229;
        let white = (1.0 - 0.485) / 0.229;
        assert!((red(55, 100) - pad).abs() < 1e-5);
        assert!((red(56, 100) - white).abs() < 1e-5);
        assert!((red(167, 100) - white).abs() < 1e-5);
        assert!((red(168, 100) - pad).abs() < 1e-5);
    }

    #[test]
    fn bgr_nhwc_puts_blue_first_and_channels_last() {
        let m = Manifest::load(&[]).unwrap().get("open-nsfw").unwrap().clone();
        let img = RgbImage::from_pixel(256, 256, image::Rgb([10, 20, 30]));
        let mut out = vec![0.0; 224 * 224 * 3];
        write_tensor(&img, &m, &mut out).unwrap();
        assert_eq!(&out[..3], &[30.0 - 104.0, 20.0 - 117.0, 10.0 - 123.0]);
    }

    #[test]
    fn empty_and_garbage_bytes_are_errors_not_panics() {
        assert_eq!(decode_rgb(b""), Err(ImageError::Empty));
        assert!(matches!(decode_rgb(b"hello, not an image"), Err(ImageError::Format(_))));
    }
}
