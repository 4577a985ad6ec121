//! Where everything goes, from the terminal's size, the number of models and k: the render
//! functions draw into these areas, `App` asks for thumbnails at these sizes, and mouse clicks
//! are resolved against them. One place, so the three always agree.

use ratatui::layout::{Rect, Size};

use super::{App, Mouse, View};

/// Width of a neighbour's text beside its thumbnail ("12. 0.912", "rel 0.45", name).
const TEXT_W: u16 = 13;
/// Columns narrower than this put a one-line text above the thumbnail instead.
const WIDE_COLUMN: u16 = TEXT_W + 15;
/// Half blocks: a cell is 1 pixel wide and 2 tall; photos are mostly 4:3.
fn width_for_height(rows: u16) -> u16 {
    (u32::from(rows) * 8 / 3) as u16
}

/// The compare view's areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Areas {
    pub tabs: Rect,
    pub body: Rect,
    pub status: Rect,
    pub list: Rect,
    pub right: Rect,
    pub query: Rect,
    pub columns: Vec<Rect>,
    pub detail: Rect,
}

/// One neighbour's place in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub thumb: Rect,
    pub text: Rect,
    /// True when the text is one line above the thumbnail (narrow columns).
    pub compact: bool,
}

/// Thumbnail sizes the current screen draws, and how many neighbour rows fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub query: Size,
    pub neighbour: Size,
    pub zoom: Size,
    pub rows: usize,
}

/// The areas of a `size` terminal with `models` model columns.
pub fn areas(size: Size, models: usize) -> Areas {
    let (w, h) = (size.width, size.height);
    let tabs = Rect::new(0, 0, w, 1.min(h));
    let status = Rect::new(0, h.saturating_sub(1), w, 1.min(h));
    let body = Rect::new(0, 1.min(h), w, h.saturating_sub(2));
    let list_w = match w {
        160.. => 38,
        110.. => 32,
        90.. => 26,
        _ => 22,
    }
    .min(w / 3);
    let list = Rect { width: list_w, ..body };
    let right = Rect { x: body.x + list_w, width: body.width - list_w, ..body };
    let query_h = (body.height / 4).clamp(5, 12).min(body.height);
    let detail_h = match body.height {
        40.. => 6,
        28.. => 4,
        _ => 3,
    }
    .min(body.height - query_h);
    let query = Rect { height: query_h, ..right };
    let detail = Rect { y: right.y + right.height - detail_h, height: detail_h, ..right };
    let neigh = Rect { y: query.y + query_h, height: right.height - query_h - detail_h, ..right };
    let n = models.max(1) as u16;
    let columns = (0..n)
        .map(|i| {
            let x0 = neigh.x + neigh.width * i / n;
            let x1 = neigh.x + neigh.width * (i + 1) / n;
            Rect { x: x0, width: x1 - x0, ..neigh }
        })
        .collect();
    Areas { tabs, body, status, list, right, query, columns, detail }
}

/// Inside a bordered block.
pub fn inner(r: Rect) -> Rect {
    Rect {
        x: r.x + 1.min(r.width),
        y: r.y + 1.min(r.height),
        width: r.width.saturating_sub(2),
        height: r.height.saturating_sub(2),
    }
}

/// Rows a column's inner area holds: at most `k`, each as tall as the space allows.
pub fn rows(col: Rect, k: usize) -> Vec<Row> {
    let compact = col.width < WIDE_COLUMN;
    // Three lines of text beside a thumbnail, or one line above a thumbnail of two rows.
    let fit = (col.height / 3) as usize;
    let n = k.min(fit);
    if n == 0 {
        return Vec::new();
    }
    let rh = col.height / n as u16;
    (0..n as u16)
        .map(|i| {
            let y = col.y + i * rh;
            if compact {
                let th = rh - 1;
                let tw = width_for_height(th).min(col.width);
                Row {
                    text: Rect::new(col.x, y, col.width, 1),
                    thumb: Rect::new(col.x, y + 1, tw, th),
                    compact,
                }
            } else {
                let tw = width_for_height(rh).min(col.width - TEXT_W);
                Row {
                    thumb: Rect::new(col.x, y, tw, rh),
                    text: Rect::new(col.x + tw + 1, y, col.width - tw - 1, rh),
                    compact,
                }
            }
        })
        .collect()
}

/// The query pane's thumbnail and text areas (inside its border).
pub fn query_split(query: Rect) -> (Rect, Rect) {
    let q = inner(query);
    let tw = width_for_height(q.height).min(q.width / 3);
    (Rect { width: tw, ..q }, Rect { x: q.x + tw + 1, width: q.width.saturating_sub(tw + 1), ..q })
}

/// The zoom view's thumbnail and text areas: the photo as large as the right side allows,
/// its text beside it when there is room, else below.
pub fn zoom_split(right: Rect) -> (Rect, Rect) {
    let r = inner(right);
    let text_w = 36.min(r.width / 3);
    if r.width >= 80 {
        let img = Rect { width: r.width - text_w - 1, ..r };
        (img, Rect { x: r.x + img.width + 1, width: text_w, ..r })
    } else {
        let text_h = 6.min(r.height / 3);
        let img = Rect { height: r.height - text_h, ..r };
        (img, Rect { y: r.y + img.height, height: text_h, ..r })
    }
}

impl Sizes {
    /// The sizes for `app`'s terminal, models and k.
    pub fn of(app: &App) -> Self {
        let a = areas(app.size, app.models().len().max(app.model_names.len()));
        let col = a.columns.first().map_or(Rect::default(), |c| inner(*c));
        let r = rows(col, app.compare.k);
        let (qt, _) = query_split(a.query);
        let (zt, _) = zoom_split(a.right);
        Sizes {
            query: qt.as_size(),
            neighbour: r.first().map_or(Size::new(0, 0), |x| x.thumb.as_size()),
            zoom: zt.as_size(),
            rows: r.len(),
        }
    }
}

/// What a click or scroll landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A row of the query list (index into the visible queries).
    Queries(usize),
    Neighbour {
        model: usize,
        rank: usize,
    },
    Tab(View),
    /// A row of the disagreement list.
    Disagreement(usize),
}

/// The first visible row of a list of `height` rows whose selection is `cursor` (the offset
/// ratatui's `List` uses when it starts from 0: the selection is kept on screen).
pub fn list_offset(cursor: usize, height: u16) -> usize {
    (cursor + 1).saturating_sub(height as usize)
}

/// The tab labels of the top bar, in order, with their views.
pub const TABS: [(View, &str); 3] =
    [(View::Compare, "1 Compare"), (View::Metrics, "2 Metrics"), (View::Disagree, "3 Disagree")];

/// Resolves a mouse position against the current screen.
pub fn hit_test(app: &App, m: Mouse) -> Option<Target> {
    let (Mouse::Click { column, row }
    | Mouse::ScrollUp { column, row }
    | Mouse::ScrollDown { column, row }) = m;
    let a = areas(app.size, app.models().len());
    let inside =
        |r: Rect| column >= r.x && column < r.x + r.width && row >= r.y && row < r.y + r.height;
    if row == a.tabs.y {
        let mut x = title(app).chars().count() as u16;
        for (v, label) in TABS {
            let w = label.chars().count() as u16 + 2;
            if column >= x && column < x + w {
                return Some(Target::Tab(v));
            }
            x += w;
        }
        return None;
    }
    match app.view {
        View::Disagree => {
            let l = inner(a.body);
            inside(l).then(|| {
                Target::Disagreement(
                    list_offset(app.disagree_cursor, l.height) + (row - l.y) as usize,
                )
            })
        }
        View::Metrics => None,
        View::Compare => {
            let l = inner(a.list);
            if inside(l) {
                let off = list_offset(app.queries.cursor, l.height);
                return Some(Target::Queries(off + (row - l.y) as usize));
            }
            if app.compare.zoom.is_some() {
                return None;
            }
            for (model, col) in a.columns.iter().enumerate() {
                for (rank, r) in rows(inner(*col), app.compare.k).iter().enumerate() {
                    if inside(r.thumb) || inside(r.text) {
                        return Some(Target::Neighbour { model, rank });
                    }
                }
            }
            None
        }
    }
}

/// The title at the left of the top bar (mouse hit-testing measures it).
pub fn title(app: &App) -> String {
    format!(" embtui · {} ({} images) ", app.dataset, app.queries.items.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_grow_with_the_terminal_and_shrink_with_more_models() {
        let big = rows(inner(areas(Size::new(200, 60), 2).columns[0]), 5);
        let small = rows(inner(areas(Size::new(80, 24), 4).columns[0]), 5);
        assert!(big[0].thumb.width >= 16, "{big:?}");
        assert!(big[0].thumb.width > small.first().map_or(0, |r| r.thumb.width));
        // At 80×24 with 4 models every column still shows its neighbours' text.
        assert!(!small.is_empty() && small.iter().all(|r| r.text.width >= 8), "{small:?}");
    }

    #[test]
    fn list_offset_keeps_the_selection_on_screen() {
        assert_eq!(list_offset(0, 10), 0);
        assert_eq!(list_offset(9, 10), 0);
        assert_eq!(list_offset(10, 10), 1);
    }
}
