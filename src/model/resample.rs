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

/// Pillow's NEAREST: output pixel x reads input pixel floor((x + 0.5) · in / out).
fn nearest(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = (f64::from(src.width()), f64::from(src.height()));
    let xs: Vec<u32> = (0..w)
        .map(|x| (((f64::from(x) + 0.5) * sw / f64::from(w)) as u32).min(src.width() - 1))
        .collect();
    RgbImage::from_fn(w, h, |x, y| {
        let sy = (((f64::from(y) + 0.5) * sh / f64::from(h)) as u32).min(src.height() - 1);
        *src.get_pixel(xs[x as usize], sy)
    })
}

/// Resizes like Pillow's `Image.resize((w, h), resample=f)` on an RGB image.
pub fn resize(src: &RgbImage, w: u32, h: u32, f: Interpolation) -> RgbImage {
    if f == Interpolation::Nearest {
        return nearest(src, w, h);
    }
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (w, h) = (w as usize, h as usize);
    let mut cur: Vec<u8> = src.as_raw().clone();
    let mut cur_h = sh;
    let vert = coeffs(sh, h, f);
    if w != sw {
        // Only the rows the vertical pass reads are resampled horizontally, as Pillow does.
        let (first, last) = if h == sh {
            (0, sh)
        } else {
            let first = vert.bounds.first().map_or(0, |b| b.0);
            let last = vert.bounds.last().map_or(sh, |b| b.0 + b.1);
            (first, last)
        };
        let hc = coeffs(sw, w, f);
        let rows = last - first;
        let mut out = vec![0u8; w * rows * 3];
        let half = 1i32 << (PRECISION_BITS - 1);
        for y in 0..rows {
            let row = &cur[(y + first) * sw * 3..(y + first + 1) * sw * 3];
            for x in 0..w {
                let (xmin, n) = hc.bounds[x];
                let k = &hc.weights[x * hc.ksize..x * hc.ksize + n];
                let (mut r, mut g, mut b) = (half, half, half);
                for (px, &kw) in row[xmin * 3..(xmin + n) * 3].chunks_exact(3).zip(k) {
                    r += i32::from(px[0]) * kw;
                    g += i32::from(px[1]) * kw;
                    b += i32::from(px[2]) * kw;
                }
                let o = (y * w + x) * 3;
                out[o] = clip8(r);
                out[o + 1] = clip8(g);
                out[o + 2] = clip8(b);
            }
        }
        cur = out;
        cur_h = rows;
        if h != sh {
            return vertical(&cur, w, &vert, first, h);
        }
    }
    if h != sh {
        return vertical(&cur, w, &vert, 0, h);
    }
    debug_assert_eq!(cur_h * w * 3, cur.len());
    RgbImage::from_raw(w as u32, cur_h as u32, cur).expect("buffer size matches")
}

fn vertical(src: &[u8], w: usize, vc: &Coeffs, offset: usize, h: usize) -> RgbImage {
    let stride = w * 3;
    let mut out = vec![0u8; stride * h];
    let mut acc = vec![0i32; stride];
    let half = 1i32 << (PRECISION_BITS - 1);
    for y in 0..h {
        let (ymin, n) = vc.bounds[y];
        let k = &vc.weights[y * vc.ksize..y * vc.ksize + n];
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
}
