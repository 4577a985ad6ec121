//! Convolution resampling that reproduces Pillow's `Image.resize` for 8-bit RGB exactly:
//! the same filters, support scaling, 22-bit fixed-point weights and horizontal-then-vertical
//! passes with 8-bit clamping in between. Exactness here is what keeps embtui's embeddings
//! within cosine 0.999 of the PIL-based pipelines the article used.

use image::RgbImage;

use super::manifest::Interpolation;

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn support(f: Interpolation) -> f64 {
    match f {
        Interpolation::Nearest => 0.0,
        Interpolation::Area => 0.5,
        Interpolation::Bilinear => 1.0,
        Interpolation::Bicubic => 2.0,
        Interpolation::Lanczos3 => 3.0,
    }
}

fn weight(f: Interpolation, x: f64) -> f64 {
    match f {
        Interpolation::Nearest => 0.0,
        Interpolation::Area => {
            if (-0.5..0.5).contains(&x) {
                1.0
            } else {
                0.0
            }
        }
        Interpolation::Bilinear => (1.0 - x.abs()).max(0.0),
        Interpolation::Bicubic => {
            let a = -0.5;
            let x = x.abs();
            if x < 1.0 {
                ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * a
            } else {
                0.0
            }
        }
        Interpolation::Lanczos3 => {
            if (-3.0..3.0).contains(&x) {
                sinc(x) * sinc(x / 3.0)
            } else {
                0.0
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Per output pixel: first input index and fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

fn coeffs(in_size: usize, out_size: usize, f: Interpolation) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support(f) * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // Truncation toward zero, as C's (int) cast.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = weight(f, (x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for x in 0..n {
            let w = if ww == 0.0 { k[x] } else { k[x] / ww };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] =
                if w < 0.0 { (fixed - 0.5) as i32 } else { (fixed + 0.5) as i32 };
        }
        bounds.push((xmin, n));
    }
    Coeffs { bounds, weights, ksize }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// A rectangle of a resized image: columns `x..x + w`, rows `y..y + h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// Pillow's NEAREST: output pixel x reads input pixel floor((x + 0.5) · in / out).
fn nearest(src: &RgbImage, w: u32, h: u32, win: Window) -> RgbImage {
    let (sw, sh) = (f64::from(src.width()), f64::from(src.height()));
    let pick = |i: usize, n: u32, s: f64, max: u32| {
        (((i as f64 + 0.5) * s / f64::from(n)) as u32).min(max - 1)
    };
    let xs: Vec<u32> = (win.x..win.x + win.w).map(|x| pick(x, w, sw, src.width())).collect();
    RgbImage::from_fn(win.w as u32, win.h as u32, |x, y| {
        let sy = pick(win.y + y as usize, h, sh, src.height());
        *src.get_pixel(xs[x as usize], sy)
    })
}

/// Resizes like Pillow's `Image.resize((w, h), resample=f)` on an RGB image (the tests' whole
/// image; the pipeline asks for the window it keeps).
#[cfg(test)]
pub fn resize(src: &RgbImage, w: u32, h: u32, f: Interpolation) -> RgbImage {
    let all = Window { x: 0, y: 0, w: w as usize, h: h as usize };
    resize_window(src, w, h, f, all)
}

/// The `win` part of `resize(src, w, h, f)`, pixel for pixel, computing only that part:
/// each output pixel depends on its own filter taps alone, so a centre crop needs only the
/// columns and rows it keeps (EfficientNet's resize to 341×256 then crop to 224×224 skips
/// a third of the work). `win` must lie inside w×h.
pub fn resize_window(src: &RgbImage, w: u32, h: u32, f: Interpolation, win: Window) -> RgbImage {
    debug_assert!(win.x + win.w <= w as usize && win.y + win.h <= h as usize);
    if f == Interpolation::Nearest {
        return nearest(src, w, h, win);
    }
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (w, h) = (w as usize, h as usize);
    let raw = src.as_raw();
    // Input rows the window needs (all the vertical taps of its rows), as Pillow, which
    // resamples horizontally only the rows the vertical pass reads.
    let vert = (h != sh).then(|| coeffs(sh, h, f));
    let (first, last) = match &vert {
        Some(v) => {
            let rows = &v.bounds[win.y..win.y + win.h];
            let first = rows.iter().map(|b| b.0).min().unwrap_or(0);
            let last = rows.iter().map(|b| b.0 + b.1).max().unwrap_or(first);
            (first, last)
        }
        None => (win.y, win.y + win.h),
    };
    let rows = last - first;
    let mut cur = vec![0u8; win.w * rows * 3];
    if w == sw {
        for y in 0..rows {
            let from = ((y + first) * sw + win.x) * 3;
            cur[y * win.w * 3..(y + 1) * win.w * 3].copy_from_slice(&raw[from..from + win.w * 3]);
        }
    } else {
        let hc = coeffs(sw, w, f);
        let half = 1i32 << (PRECISION_BITS - 1);
        for y in 0..rows {
            let row = &raw[(y + first) * sw * 3..(y + first + 1) * sw * 3];
            let out = &mut cur[y * win.w * 3..(y + 1) * win.w * 3];
            for (x, o) in (win.x..win.x + win.w).zip(out.chunks_exact_mut(3)) {
                let (xmin, n) = hc.bounds[x];
                let k = &hc.weights[x * hc.ksize..x * hc.ksize + n];
                let (mut r, mut g, mut b) = (half, half, half);
                for (px, &kw) in row[xmin * 3..(xmin + n) * 3].chunks_exact(3).zip(k) {
                    r += i32::from(px[0]) * kw;
                    g += i32::from(px[1]) * kw;
                    b += i32::from(px[2]) * kw;
                }
                o[0] = clip8(r);
                o[1] = clip8(g);
                o[2] = clip8(b);
            }
        }
    }
    match vert {
        Some(v) => vertical(&cur, win.w, &v, first, win.y, win.h),
        None => RgbImage::from_raw(win.w as u32, win.h as u32, cur).expect("buffer size matches"),
    }
}

/// The vertical pass for output rows `y0..y0 + h`; `src` holds input rows from `offset` on.
fn vertical(src: &[u8], w: usize, vc: &Coeffs, offset: usize, y0: usize, h: usize) -> RgbImage {
    let stride = w * 3;
    let mut out = vec![0u8; stride * h];
    let mut acc = vec![0i32; stride];
    let half = 1i32 << (PRECISION_BITS - 1);
    for y in 0..h {
        let (ymin, n) = vc.bounds[y0 + y];
        let k = &vc.weights[(y0 + y) * vc.ksize..(y0 + y) * vc.ksize + n];
        acc.fill(half);
        // Row-major accumulation: each tap adds a whole source row (contiguous, vectorisable).
        for (i, &kw) in k.iter().enumerate() {
            let row = &src[(ymin - offset + i) * stride..(ymin - offset + i + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * kw;
            }
        }
        for (o, &a) in out[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("buffer size matches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_halving_averages_pixel_pairs() {
        // 4×1 → 2×1 bilinear: scale 2 widens the triangle to support 2. Output 0 is centred at
        // 1.0 and reads pixels 0..3 at distances .75 .25 .75 → weights .75 .75 .25, normalised
        // 3/7 3/7 1/7: (0·3 + 100·3 + 200)/7 = 71.4 → 71. Output 1 reads pixels 1..4 with 1/7
        // 3/7 3/7: (100 + 600 + 600)/7 = 185.7 → 186. Pillow gives [71, 186].
        let src = RgbImage::from_fn(4, 1, |x, _| image::Rgb([[0, 100, 200, 200][x as usize]; 3]));
        let out = resize(&src, 2, 1, Interpolation::Bilinear);
        assert_eq!(out.get_pixel(0, 0).0[0], 71);
        assert_eq!(out.get_pixel(1, 0).0[0], 186);
    }

    #[test]
    fn box_filter_area_average() {
        let src = RgbImage::from_fn(4, 2, |x, _| image::Rgb([[10, 20, 30, 50][x as usize]; 3]));
        let out = resize(&src, 2, 1, Interpolation::Area);
        assert_eq!(out.get_pixel(0, 0).0[0], 15);
        assert_eq!(out.get_pixel(1, 0).0[0], 40);
    }

    #[test]
    fn nearest_picks_centre_samples_like_pillow() {
        // 4 → 2: centres 0.5·2 = 1.0 → pixel 1, 1.5·2 = 3.0 → pixel 3.
        let src = RgbImage::from_fn(4, 1, |x, _| image::Rgb([x as u8 * 10; 3]));
        let out = resize(&src, 2, 1, Interpolation::Nearest);
        assert_eq!((out.get_pixel(0, 0).0[0], out.get_pixel(1, 0).0[0]), (10, 30));
    }

    #[test]
    fn uniform_image_stays_uniform_under_bicubic() {
        let src = RgbImage::from_pixel(37, 23, image::Rgb([77, 128, 250]));
        let out = resize(&src, 11, 50, Interpolation::Bicubic);
        assert!(out.pixels().all(|p| p.0 == [77, 128, 250]));
    }

    #[test]
    fn a_window_equals_the_same_part_of_the_whole_resize() {
        // A 61×47 gradient with texture; every filter, windows touching each edge and none.
        let src = RgbImage::from_fn(61, 47, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
        });
        let filters = [
            Interpolation::Nearest,
            Interpolation::Area,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
            Interpolation::Lanczos3,
        ];
        for f in filters {
            for (w, h) in [(29, 23), (61, 20), (30, 47), (61, 47), (90, 70)] {
                let whole = resize(&src, w, h, f);
                let (w, h) = (w as usize, h as usize);
                for win in [
                    Window { x: 0, y: 0, w, h },
                    Window { x: 3, y: 2, w: w - 6, h: h - 5 },
                    Window { x: w - 7, y: 0, w: 7, h: 1 },
                    Window { x: 0, y: h - 4, w: 5, h: 4 },
                ] {
                    let part = resize_window(&src, w as u32, h as u32, f, win);
                    assert_eq!(part.dimensions(), (win.w as u32, win.h as u32));
                    for (x, y, p) in part.enumerate_pixels() {
                        let q = whole.get_pixel(x + win.x as u32, y + win.y as u32);
                        assert_eq!(p, q, "{f:?} {w}x{h} {win:?} at ({x},{y})");
                    }
                }
            }
        }
    }
}
