//! The article's figure as a contact sheet: per query a block with the query photo and its
//! first caption, then one row per model of its top-k neighbours, each thumbnail framed in the
//! colour of its caption relevance (number below), the model's per-query score at the row's
//! end. One layout (positions of every tile and text), two back ends: PNG and SVG.
//!
//! Sizes are fixed in pixels so the sheet reads at 100% zoom: 128-pixel thumbnails, 8×13 and
//! 9×15 bitmap fonts (embedded-graphics' ISO 8859-1 fonts; other characters draw as `?`).

use std::io::Cursor;

use base64::Engine as _;
use embedded_graphics::mono_font::iso_8859_1::{FONT_8X13, FONT_9X15_BOLD};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Pixel, Point, RgbColor, Size};
use embedded_graphics::text::{Baseline, Text};
use embedded_graphics::Drawable;
use image::{Rgb, RgbImage};
use serde::Serialize;

use super::{relevance_rgb, Hit};
use crate::text::{fit, sanitize};

/// Thumbnail side (pixels); photos are fitted inside, aspect kept.
pub const TILE: u32 = 128;
/// Width of the relevance frame around a thumbnail.
pub const FRAME: u32 = 4;
const GAP: u32 = 10;
const MARGIN: u32 = 16;
const LABEL_W: u32 = 176;
const SCORE_W: u32 = 120;
/// Line height of the 8×13 body font.
const LINE: u32 = 16;
const CHAR_W: u32 = 8;
const BOLD_W: u32 = 9;
const INK: [u8; 3] = [30, 30, 30];
const MUTED: [u8; 3] = [110, 110, 110];
const BACKDROP: [u8; 3] = [236, 236, 236];
const QUERY_FRAME: [u8; 3] = [60, 90, 170];

/// What the figure shows.
#[derive(Debug, Clone)]
pub struct Spec {
    /// First line at the top: dataset, relevance method and τ.
    pub title: String,
    pub threshold: f32,
    /// The per-query score at each row's end, e.g. `ndcg@10`.
    pub metric: String,
    pub blocks: Vec<Block>,
}

/// One query: its photo, first caption, one row per model.
#[derive(Debug, Clone)]
pub struct Block {
    pub query: String,
    pub caption: String,
    pub rows: Vec<Row>,
}

/// One model's top-k neighbours of a query and its score there.
#[derive(Debug, Clone)]
pub struct Row {
    pub model: String,
    pub hits: Vec<Hit>,
    pub score: f64,
}

/// A thumbnail's place on the sheet (the photo area inside the frame).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    pub image: String,
    /// `query` or `neighbour`.
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<f32>,
    /// The frame's colour (relevance colour for neighbours).
    pub frame: [u8; 3],
}

/// A line of text (top-left anchored).
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub x: u32,
    pub y: u32,
    pub text: String,
    pub rgb: [u8; 3],
    pub bold: bool,
}

/// Where everything goes.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<Tile>,
    #[serde(skip)]
    pub labels: Vec<Label>,
    /// y of the rules between blocks.
    #[serde(skip)]
    pub rules: Vec<u32>,
}

/// Cuts text to what fits in `px` pixels of `char_w`-wide characters, control characters
/// removed.
fn fit_px(s: &str, px: u32, char_w: u32) -> String {
    fit(&sanitize(s), (px / char_w) as usize)
}

/// Word-wraps `s` into at most `lines` lines of `cols` characters (the last one cut with `…`);
/// words longer than a line (file names) are broken.
fn wrap(s: &str, cols: usize, lines: usize) -> Vec<String> {
    let cols = cols.max(2);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let clean = sanitize(s);
    let words = clean.split_whitespace().flat_map(|w| {
        let chars: Vec<char> = w.chars().collect();
        chars.chunks(cols).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>()
    });
    for word in words {
        let len = cur.chars().count();
        if len > 0 && len + 1 + word.chars().count() > cols {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            *last = fit(&format!("{last} …"), cols);
        }
    }
    out.into_iter().map(|l| fit(&l, cols)).collect()
}

/// Places every tile and text of `spec`.
pub fn layout(spec: &Spec) -> Layout {
    let k = spec.blocks.iter().flat_map(|b| b.rows.iter().map(|r| r.hits.len())).max().unwrap_or(1);
    let cell = TILE + 2 * FRAME + GAP;
    let tiles_x = MARGIN + LABEL_W;
    let width = (2 * MARGIN + LABEL_W + k.max(3) as u32 * cell + SCORE_W).max(640);
    let mut l =
        Layout { width, height: 0, tiles: Vec::new(), labels: Vec::new(), rules: Vec::new() };
    let text = |l: &mut Layout, x: u32, y: u32, s: String, rgb: [u8; 3], bold: bool| {
        l.labels.push(Label { x, y, text: s, rgb, bold });
    };
    let mut y = MARGIN;
    text(&mut l, MARGIN, y, fit_px(&spec.title, width - 2 * MARGIN, BOLD_W), INK, true);
    y += LINE + 4;
    let legend = format!(
        "frame = caption relevance of the pair: green >= {t:.2} (relevant), amber >= {a:.2}, red below; score = per-query {m}",
        t = spec.threshold,
        a = spec.threshold / 3.0,
        m = spec.metric
    );
    text(&mut l, MARGIN, y, fit_px(&legend, width - 2 * MARGIN, CHAR_W), MUTED, false);
    y += LINE + GAP;
    for b in &spec.blocks {
        l.rules.push(y);
        y += GAP;
        // The query: label, photo, caption beside it.
        text(&mut l, MARGIN, y + FRAME, "query".into(), INK, true);
        for (i, line) in
            wrap(&b.query, (LABEL_W - GAP) as usize / CHAR_W as usize, 3).into_iter().enumerate()
        {
            text(&mut l, MARGIN, y + FRAME + LINE + 4 + i as u32 * LINE, line, MUTED, false);
        }
        l.tiles.push(Tile {
            x: tiles_x + FRAME,
            y: y + FRAME,
            size: TILE,
            image: b.query.clone(),
            role: "query",
            model: None,
            rank: None,
            relevance: None,
            frame: QUERY_FRAME,
        });
        let cap_x = tiles_x + cell;
        let cols = ((width - MARGIN - cap_x) / CHAR_W) as usize;
        for (i, line) in wrap(&format!("\"{}\"", b.caption), cols, 7).into_iter().enumerate() {
            text(&mut l, cap_x, y + FRAME + i as u32 * LINE, line, INK, false);
        }
        y += TILE + 2 * FRAME + GAP;
        for row in &b.rows {
            let mid = y + FRAME + TILE / 2 - LINE;
            let name = wrap(&row.model, ((LABEL_W - GAP) / BOLD_W) as usize, 2);
            for (i, line) in name.into_iter().enumerate() {
                text(&mut l, MARGIN, mid + i as u32 * (LINE + 2), line, INK, true);
            }
            for (i, h) in row.hits.iter().enumerate() {
                let x = tiles_x + i as u32 * cell;
                let rgb = relevance_rgb(h.relevance, spec.threshold);
                l.tiles.push(Tile {
                    x: x + FRAME,
                    y: y + FRAME,
                    size: TILE,
                    image: h.image.clone(),
                    role: "neighbour",
                    model: Some(row.model.clone()),
                    rank: Some(i + 1),
                    relevance: Some(h.relevance),
                    frame: rgb,
                });
                let caption = format!("{}. rel {:.3}", i + 1, h.relevance);
                text(&mut l, x, y + TILE + 2 * FRAME + 2, caption, rgb, false);
            }
            let sx = tiles_x + k as u32 * cell;
            text(&mut l, sx, mid, spec.metric.clone(), MUTED, false);
            text(&mut l, sx, mid + LINE + 2, format!("{:.3}", row.score), INK, true);
            y += TILE + 2 * FRAME + LINE + GAP;
        }
    }
    l.height = y + MARGIN;
    l
}

/// Fits a photo inside `TILE`×`TILE` (aspect kept, never enlarged beyond the tile).
pub fn thumbnail(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = f64::from(TILE) / f64::from(w.max(h).max(1));
    let (tw, th) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    image::imageops::resize(img, tw, th, image::imageops::FilterType::Triangle)
}

struct Canvas<'a>(&'a mut RgbImage);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(p.x), u32::try_from(p.y)) {
                if x < w && y < h {
                    self.0.put_pixel(x, y, Rgb([c.r(), c.g(), c.b()]));
                }
            }
        }
        Ok(())
    }
}

fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            img.put_pixel(xx, yy, Rgb(rgb));
        }
    }
}

/// Where a thumbnail of `w`×`h` sits inside a tile at (x, y): centred.
fn centred(t: &Tile, w: u32, h: u32) -> (u32, u32) {
    (t.x + (t.size - w.min(t.size)) / 2, t.y + (t.size - h.min(t.size)) / 2)
}

/// Draws the layout as an RGB image; `thumb` gives each tile's thumbnail (None: a grey tile
/// marked "missing").
pub fn raster(l: &Layout, thumb: &dyn Fn(&str) -> Option<RgbImage>) -> RgbImage {
    let mut img = RgbImage::from_pixel(l.width, l.height, Rgb([255, 255, 255]));
    for &y in &l.rules {
        fill(&mut img, MARGIN, y, l.width - 2 * MARGIN, 1, [200, 200, 200]);
    }
    for t in &l.tiles {
        fill(&mut img, t.x - FRAME, t.y - FRAME, t.size + 2 * FRAME, t.size + 2 * FRAME, t.frame);
        fill(&mut img, t.x, t.y, t.size, t.size, BACKDROP);
        match thumb(&t.image) {
            Some(th) => {
                let (x, y) = centred(t, th.width(), th.height());
                image::imageops::replace(&mut img, &th, i64::from(x), i64::from(y));
            }
            None => draw_text(&mut img, t.x + 8, t.y + t.size / 2 - 8, "missing", MUTED, false),
        }
    }
    for lb in &l.labels {
        draw_text(&mut img, lb.x, lb.y, &lb.text, lb.rgb, lb.bold);
    }
    img
}

/// Text in the bitmap fonts' ISO 8859-1: τ as "tau", … as "...", other characters as `?`.
fn latin1(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'τ' => out.push_str("tau"),
            '…' => out.push_str("..."),
            '≥' => out.push_str(">="),
            '–' | '—' | '−' => out.push('-'),
            '‘' | '’' => out.push('\''),
            '“' | '”' => out.push('"'),
            c if u32::from(c) < 256 => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

fn draw_text(img: &mut RgbImage, x: u32, y: u32, s: &str, rgb: [u8; 3], bold: bool) {
    let font = if bold { &FONT_9X15_BOLD } else { &FONT_8X13 };
    let style = MonoTextStyle::new(font, Rgb888::new(rgb[0], rgb[1], rgb[2]));
    let at = Point::new(x as i32, y as i32);
    let _ = Text::with_baseline(&latin1(s), at, style, Baseline::Top).draw(&mut Canvas(img));
}

/// The figure as PNG bytes.
pub fn png(l: &Layout, thumb: &dyn Fn(&str) -> Option<RgbImage>) -> anyhow::Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    let enc = PngEncoder::new_with_quality(
        Cursor::new(&mut out),
        CompressionType::Best,
        FilterType::Adaptive,
    );
    raster(l, thumb).write_with_encoder(enc)?;
    Ok(out)
}

/// Text made safe inside XML: control characters removed, markup characters escaped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in sanitize(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A thumbnail as a `data:` URI (JPEG, quality 85).
pub fn data_uri(img: &RgbImage) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85).encode_image(img)?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// The figure as one self-contained SVG document (thumbnails embedded as JPEG).
pub fn svg(l: &Layout, thumb: &dyn Fn(&str) -> Option<RgbImage>) -> anyhow::Result<String> {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans Mono, monospace\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        w = l.width,
        h = l.height
    );
    for &y in &l.rules {
        s += &format!(
            "<rect x=\"{MARGIN}\" y=\"{y}\" width=\"{}\" height=\"1\" fill=\"#c8c8c8\"/>\n",
            l.width - 2 * MARGIN
        );
    }
    for t in &l.tiles {
        let side = t.size + 2 * FRAME;
        s += &format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{side}\" height=\"{side}\" fill=\"{}\"/><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n",
            t.x - FRAME,
            t.y - FRAME,
            hex(t.frame),
            t.x,
            t.y,
            t.size,
            t.size,
            hex(BACKDROP)
        );
        if let Some(th) = thumb(&t.image) {
            let (x, y) = centred(t, th.width(), th.height());
            s += &format!(
                "<image x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" href=\"{}\"><title>{}</title></image>\n",
                th.width(),
                th.height(),
                data_uri(&th)?,
                xml_escape(&t.image)
            );
        }
    }
    for lb in &l.labels {
        s += &format!(
            "<text x=\"{}\" y=\"{}\" dominant-baseline=\"hanging\" font-size=\"{}\"{} fill=\"{}\">{}</text>\n",
            lb.x,
            lb.y,
            if lb.bold { 14 } else { 13 },
            if lb.bold { " font-weight=\"bold\"" } else { "" },
            hex(lb.rgb),
            xml_escape(&lb.text)
        );
    }
    s += "</svg>\n";
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(queries: usize, models: usize, k: usize) -> Spec {
        let blocks = (0..queries)
            .map(|q| Block {
                query: format!("q{q}.jpg"),
                caption: "A dog runs through the snow beside a \u{1b}[31mred\u{1b}[0m fence".into(),
                rows: (0..models)
                    .map(|m| Row {
                        model: format!("model-{m}"),
                        hits: (0..k)
                            .map(|i| Hit {
                                image: format!("n{i}.jpg"),
                                cosine: 0.9,
                                relevance: i as f32 / 10.0,
                            })
                            .collect(),
                        score: 0.5,
                    })
                    .collect(),
            })
            .collect();
        Spec { title: "t".into(), threshold: 0.3, metric: "ndcg@10".into(), blocks }
    }

    #[test]
    fn one_tile_per_query_and_per_neighbour_none_overlapping() {
        let l = layout(&spec(2, 3, 5));
        assert_eq!(l.tiles.len(), 2 * (1 + 3 * 5));
        // 2 margins + label column + 5 cells of 128 + 2·4 + 10 + score column.
        assert_eq!(l.width, 16 * 2 + 176 + 5 * 146 + 120);
        for (i, a) in l.tiles.iter().enumerate() {
            assert!(a.x + a.size + FRAME <= l.width && a.y + a.size + FRAME <= l.height);
            for b in &l.tiles[i + 1..] {
                let apart = a.x + a.size + FRAME <= b.x - FRAME
                    || b.x + b.size + FRAME <= a.x - FRAME
                    || a.y + a.size + FRAME <= b.y - FRAME
                    || b.y + b.size + FRAME <= a.y - FRAME;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn frames_take_the_relevance_colour_and_escapes_never_reach_the_text() {
        let l = layout(&spec(1, 1, 5));
        let n: Vec<&Tile> = l.tiles.iter().filter(|t| t.role == "neighbour").collect();
        // relevances 0.0, 0.1, 0.2, 0.3, 0.4 at τ 0.3: red, amber (≥ 0.1), amber, green, green.
        let frames: Vec<[u8; 3]> = n.iter().map(|t| t.frame).collect();
        assert_eq!(
            frames,
            [[200, 40, 40], [222, 150, 0], [222, 150, 0], [34, 139, 34], [34, 139, 34]]
        );
        assert!(l.labels.iter().all(|lb| !lb.text.contains('\u{1b}')));
        assert!(l.labels.iter().any(|lb| lb.text.contains("red fence")));
    }

    #[test]
    fn raster_draws_photos_frames_and_text() {
        let l = layout(&spec(1, 1, 3));
        let photo = RgbImage::from_pixel(64, 48, Rgb([10, 200, 10]));
        let img = raster(&l, &|name| (name != "n2.jpg").then(|| thumbnail(&photo)));
        assert_eq!(img.dimensions(), (l.width, l.height));
        let q = &l.tiles[0];
        // The 64×48 photo is fitted to 128×96 and centred: rows 16..112 of the tile.
        assert_eq!(img.get_pixel(q.x + 64, q.y + 64).0, [10, 200, 10]);
        assert_eq!(img.get_pixel(q.x + 64, q.y + 4).0, BACKDROP);
        assert_eq!(img.get_pixel(q.x - 2, q.y + 64).0, QUERY_FRAME);
        let missing = &l.tiles[3];
        assert_eq!(img.get_pixel(missing.x + 64, missing.y + 4).0, BACKDROP);
        let svg = svg(&l, &|_| Some(thumbnail(&photo))).unwrap();
        assert_eq!(svg.matches("<image ").count(), 4);
        assert!(svg.contains("data:image/jpeg;base64,") && !svg.contains('\u{1b}'));
    }
}
