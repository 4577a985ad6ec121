//! Preprocessing: a decoded image → the model's input tensor, as the manifest says.
//!
//! Mirrors `onnx/reference.py` (PIL + numpy) step for step; `resample.rs` reproduces PIL's
//! convolution filters exactly, which keeps embtui's embeddings within cosine 0.999 of it.

use std::path::Path;

use image::RgbImage;

use super::manifest::{Channels, Layout, ModelEntry, ResizeRule, Rounding};
pub use crate::decode::{DecodeOptions, ImageError};

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

/// Writes the model input for one decoded image into `out` (`size*size*3` floats, in the
/// manifest's layout and channel order): resize → centre crop → centred zero pad → normalise.
/// Only the part of the resized image that the crop keeps is computed (pixel for pixel the
/// same as resizing the whole image, then cropping).
pub fn write_tensor(img: &RgbImage, m: &ModelEntry, out: &mut [f32]) {
    let s = m.size as usize;
    debug_assert_eq!(out.len(), s * s * 3);
    let (w, h) =
        resized_size_with(img.width(), img.height(), m.resize.rule, m.resize.to, m.resize.round);
    let (rw, rh) = (i64::from(w), i64::from(h));
    // Offset of the model canvas inside the resized image: positive crops, negative pads.
    let (off_x, off_y) = match (m.crop, m.pad) {
        (Some(c), _) => ((rw - i64::from(c)) / 2, (rh - i64::from(c)) / 2),
        (None, Some(p)) => (-((i64::from(p) - rw) / 2), -((i64::from(p) - rh) / 2)),
        (None, None) => (0, 0),
    };
    // The part of the resized image inside the s×s canvas.
    let span = |off: i64, len: i64| {
        let a = off.clamp(0, len);
        let b = (off + s as i64).clamp(0, len);
        (a as usize, (b - a) as usize)
    };
    let ((wx, ww), (wy, wh)) = (span(off_x, rw), span(off_y, rh));
    let win = super::resample::Window { x: wx, y: wy, w: ww, h: wh };
    let part = super::resample::resize_window(img, w, h, m.resize.interpolation, win);
    let order: [usize; 3] = match m.channels {
        Channels::Rgb => [0, 1, 2],
        Channels::Bgr => [2, 1, 0],
    };
    // Per channel: value = pixel * scale + shift, with scale = rescale/std, shift = -mean/std;
    // padding is zero before normalisation, i.e. `shift`.
    let scale: [f32; 3] = std::array::from_fn(|c| m.rescale / m.std[c]);
    let shift: [f32; 3] = std::array::from_fn(|c| -m.mean[c] / m.std[c]);
    let plane = s * s;
    let index = |c: usize, y: usize, x: usize| match m.layout {
        Layout::Nchw => c * plane + y * s + x,
        Layout::Nhwc => (y * s + x) * 3 + c,
    };
    if (ww, wh) != (s, s) {
        for y in 0..s {
            for x in 0..s {
                for (c, v) in shift.iter().enumerate() {
                    out[index(c, y, x)] = *v;
                }
            }
        }
    }
    if ww == 0 || wh == 0 {
        return;
    }
    // Canvas position of the window's top-left pixel.
    let (cx, cy) = ((wx as i64 - off_x) as usize, (wy as i64 - off_y) as usize);
    let raw = part.as_raw();
    for (y, row) in raw.chunks_exact(ww * 3).enumerate() {
        for (x, px) in row.chunks_exact(3).enumerate() {
            for (c, &src_c) in order.iter().enumerate() {
                out[index(c, cy + y, cx + x)] = f32::from(px[src_c]) * scale[c] + shift[c];
            }
        }
    }
}

/// What the resize step needs of a decoded photo, with a margin of 2: JPEGs at least twice
/// the model's resize target are decoded at reduced scale (the Pillow-exact resample then
/// still shrinks by 2 or more, where DCT scaling and a full decode agree closely).
pub fn draft(m: &ModelEntry) -> crate::decode::Draft {
    crate::decode::Draft {
        shorter: m.resize.rule != ResizeRule::Longest,
        at_least: 2 * m.resize.to,
    }
}

/// How an image was decoded for its model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Accepted although truncated (`--accept-truncated`).
    pub truncated: bool,
    /// Decoded at reduced scale (a large JPEG): its vector differs slightly from a full
    /// decode's, so the store keeps it apart (`--decode exact` never reuses it).
    pub reduced: bool,
}

/// Decodes a file and writes its model input; what a worker does for one image.
pub fn load_tensor(
    path: &Path,
    m: &ModelEntry,
    opts: &DecodeOptions,
    out: &mut [f32],
) -> Result<Loaded, ImageError> {
    let opts = DecodeOptions { draft: Some(draft(m)), ..*opts };
    let d = crate::decode::load(path, &opts)?;
    write_tensor(&d.image, m, out);
    Ok(Loaded { truncated: d.truncated, reduced: d.reduced })
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
        write_tensor(&img, &m, &mut out);
        let want = (128.0 / 255.0 - 0.498) / 0.502; // 0.00767
        assert!(out.iter().all(|v| (v - want).abs() < 1e-5), "{}", out[0]);
    }

    #[test]
    fn padding_is_zero_before_normalisation_and_centred() {
        let m = Manifest::load(&[]).unwrap().get("dinov2-s14-imgfocus").unwrap().clone();
        // 448×224 white → 224×112, padded 56 rows above and below.
        let img = RgbImage::from_pixel(448, 224, image::Rgb([255, 255, 255]));
        let mut out = vec![0.0; 224 * 224 * 3];
        write_tensor(&img, &m, &mut out);
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
        write_tensor(&img, &m, &mut out);
        assert_eq!(&out[..3], &[30.0 - 104.0, 20.0 - 117.0, 10.0 - 123.0]);
    }
}
