//! Render functions: they read `&App` and draw into the areas of `layout.rs`; nothing here
//! changes state or does I/O.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use ratatui_image::Image;

use super::keys::{FOOTER, HELP, LEGEND, METRICS_HELP};
use super::layout::{self, areas, inner, list_offset, Areas, TABS};
use super::{App, Eval, Focus, Phase, Sort, ThumbKey, View, Zoom};
use crate::engine::search::Query;
use crate::engine::worker::Hit;
use crate::text::sanitize;
use crate::text::short_names;

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let a = areas(frame.area().as_size(), app.models().len().max(app.model_names.len()));
    frame.render_widget(Paragraph::new(tabs(app)), a.tabs);
    match app.view {
        View::Compare => compare(app, frame, &a),
        View::Metrics => metrics(app, frame, a.body),
        View::Disagree => disagree(app, frame, a.body),
    }
    frame.render_widget(Paragraph::new(footer(app, a.status.width)), a.status);
    if app.help {
        help(frame, a.body);
    }
    if app.color && !app.truecolor {
        to_256_colours(frame.buffer_mut());
    }
}

fn tabs(app: &App) -> Line<'static> {
    let mut spans = vec![Span::from(layout::title(app)).bold()];
    for (v, label) in TABS {
        let s = format!(" {label} ");
        spans.push(if app.view == v { Span::from(s).reversed() } else { Span::from(s) });
    }
    Line::from(spans)
}

fn footer(app: &App, width: u16) -> Line<'static> {
    if let Some(p) = &app.prompt {
        let label = match p.kind {
            super::PromptKind::Filter => "filter",
            super::PromptKind::ImagePath => "image file (Tab completes)",
            super::PromptKind::Text => "text query",
        };
        let text = sanitize(&p.text());
        let (before, after): (String, String) = {
            let c: Vec<char> = text.chars().collect();
            let at = p.cursor().min(c.len());
            (c[..at].iter().collect(), c[at..].iter().collect())
        };
        let mut spans =
            vec![Span::from(format!(" {label}: {before}")), Span::from("▏"), Span::from(after)];
        if p.candidates.is_empty() {
            spans.push(Span::from("  (Enter ok · Esc cancel · Ctrl-U/W/K edit)").dim());
        } else {
            let names: Vec<String> = p
                .candidates
                .iter()
                .map(|c| sanitize(c.rsplit('/').find(|s| !s.is_empty()).unwrap_or(c)))
                .collect();
            spans.push(Span::from(format!("   [{}]", names.join(" "))).dim());
        }
        return Line::from(spans);
    }
    let status = format!(" {} ", app.status());
    let room = (width as usize).saturating_sub(status.chars().count() + 2);
    let hint: String = FOOTER.chars().take(room).collect();
    Line::from(vec![Span::from(status).reversed(), Span::from(format!("  {hint}"))])
}

/// Relevance colour: green at or above τ, yellow above τ/3, red below (no colour without a
/// report or under NO_COLOR).
fn rel_style(app: &App, rel: Option<f32>) -> Style {
    let (true, Some(tau), Some(r)) = (app.color, app.threshold(), rel) else {
        return Style::default();
    };
    let c = if r >= tau {
        Color::Green
    } else if r >= tau / 3.0 {
        Color::Yellow
    } else {
        Color::Red
    };
    Style::default().fg(c)
}

fn focus_style(app: &App, focused: bool) -> Style {
    if !focused {
        return Style::default();
    }
    let s = Style::default().add_modifier(Modifier::BOLD);
    if app.color {
        s.fg(Color::Cyan)
    } else {
        s
    }
}

fn compare(app: &App, frame: &mut Frame, a: &Areas) {
    query_list(app, frame, a.list);
    if let Some(z) = app.compare.zoom {
        zoom(app, frame, a.right, z);
        return;
    }
    query_pane(app, frame, a.query);
    let names = column_names(app, a.columns.first().map_or(0, |c| c.width));
    for (m, col) in a.columns.iter().enumerate() {
        model_column(app, frame, *col, m, names.get(m).map_or("", String::as_str));
    }
    detail(app, frame, a.detail);
}

/// Model names for column titles of `width`, abbreviated alike where needed.
fn column_names(app: &App, width: u16) -> Vec<String> {
    let names: Vec<String> = app.models().iter().map(|m| sanitize(&m.name)).collect();
    // Title: "name 0.58" inside the border: the name gets what the score leaves.
    short_names(&names, (width as usize).saturating_sub(8).max(4))
}

fn query_list(app: &App, frame: &mut Frame, area: Rect) {
    let q = &app.queries;
    let order = match q.sort {
        Sort::Name => String::new(),
        Sort::Ndcg(m) => format!(
            " · worst nDCG of {} first",
            app.models().get(m).map_or("?", |x| x.name.as_str())
        ),
        Sort::Disagreement => " · most disagreement first".into(),
    };
    let title = if q.filter.is_empty() {
        format!("queries ({}){order}", q.visible.len())
    } else {
        format!("\"{}\" ({}){order}", sanitize(&q.filter), q.visible.len())
    };
    let inner_w = area.width.saturating_sub(4) as usize;
    let h = inner(area).height;
    let offset = list_offset(q.cursor, h);
    let items: Vec<ListItem> = q
        .visible
        .iter()
        .skip(offset)
        .take(h as usize)
        .map(|&i| {
            let it = &q.items[i];
            let name: String = it.name.chars().take(inner_w).collect();
            let room = inner_w.saturating_sub(name.chars().count() + 1);
            let snippet: String =
                it.captions.first().map_or(String::new(), |c| c.chars().take(room).collect());
            ListItem::new(Line::from(vec![
                Span::from(name),
                Span::from(" "),
                Span::from(snippet).dim(),
            ]))
        })
        .collect();
    let block = Block::bordered()
        .title(title)
        .border_style(focus_style(app, app.compare.focus == Focus::Queries));
    let list = List::new(items)
        .block(block)
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state =
        ListState::default().with_selected(app.query().map(|_| q.cursor.saturating_sub(offset)));
    frame.render_stateful_widget(list, area, &mut state);
}

/// Draws the thumbnail of `key` in `area`: the one made for this size, else any size of it
/// (clipped) while the right one is made, else a placeholder.
fn thumb(app: &App, frame: &mut Frame, area: Rect, key: &ThumbKey) {
    let exact = app.thumbs.ready.get(&(key.clone(), area.as_size()));
    let any = || app.thumbs.ready.iter().find(|((k, _), _)| k == key).map(|(_, p)| p);
    match exact.or_else(any) {
        Some(p) => frame.render_widget(Image::new(p).allow_clipping(true), area),
        None => frame.render_widget(Paragraph::new("…").dim(), area),
    }
}

/// One line per model: its nDCG on the selected query (once evaluated).
fn per_query_scores(app: &App, q: usize) -> Option<Line<'static>> {
    let k = app.report()?.k.iter().max().copied().unwrap_or(10);
    let names = short_names(&app.models().iter().map(|m| m.name.clone()).collect::<Vec<_>>(), 12);
    let parts: Vec<String> = names
        .iter()
        .enumerate()
        .filter_map(|(m, n)| Some(format!("{n} {:.2}", app.ndcg(m, q)?)))
        .collect();
    if parts.is_empty() {
        // Evaluated on a sample of queries that this image is not in.
        return Some(Line::from(format!("nDCG@{k}: – (not among the sampled queries)")).dim());
    }
    Some(Line::from(format!("nDCG@{k}: {}", parts.join(" · "))).bold())
}

fn query_pane(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title("query");
    frame.render_widget(block, area);
    let (img, text) = layout::query_split(area);
    let (key, lines) = match (&app.compare.outside, app.query()) {
        (Some((query, _)), _) => (
            match query {
                Query::Image(p) => Some(ThumbKey::Outside(p.clone())),
                Query::Text(_) => None,
            },
            vec![
                Line::from(sanitize(&query.label())).bold(),
                Line::from("outside the dataset: no captions, no relevance · Esc returns"),
            ],
        ),
        (None, Some(q)) => {
            let item = &app.queries.items[q];
            let mut l = vec![Line::from(item.name.clone()).bold()];
            l.extend(per_query_scores(app, q));
            l.extend(item.captions.iter().map(|c| Line::from(format!("· {c}"))));
            if item.captions.is_empty() {
                l.push(Line::from("(no captions: neighbours and scores only)").dim());
            }
            (Some(ThumbKey::Image(q as u32)), l)
        }
        (None, None) => {
            frame.render_widget(Paragraph::new("no query matches the filter"), inner(area));
            return;
        }
    };
    match key {
        Some(k) => thumb(app, frame, img, &k),
        None => frame.render_widget(Paragraph::new("(text)").dim(), img),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text);
}

fn model_column(app: &App, frame: &mut Frame, area: Rect, m: usize, short: &str) {
    let Some(model) = app.models().get(m) else {
        let msg = match &app.phase {
            Phase::Loading { progress: Some((name, d, t)), .. } => {
                format!("indexing {}: {d}/{t}", sanitize(name))
            }
            _ => app.status(),
        };
        let title = app.model_names.get(m).cloned().unwrap_or_default();
        frame.render_widget(
            Paragraph::new(msg).wrap(Wrap { trim: true }).block(Block::bordered().title(title)),
            area,
        );
        return;
    };
    let ndcg = app.query().and_then(|q| app.ndcg(m, q)).filter(|_| app.compare.outside.is_none());
    let title = match ndcg {
        Some(v) => format!("{short} {v:.2}"),
        None => short.to_owned(),
    };
    let focused = app.compare.focus == Focus::Neighbours && app.compare.model_cursor == m;
    let block = Block::bordered().title(title).border_style(focus_style(app, focused));
    let col = block.inner(area);
    frame.render_widget(block, area);
    let hits = app.hits(m);
    if hits.is_empty() {
        let msg = if app.query().is_some_and(|q| {
            !app.loaded().is_some_and(|l| l.evaluated.get(q).copied().unwrap_or(false))
        }) {
            "not embedded by every model"
        } else {
            "…"
        };
        frame.render_widget(Paragraph::new(msg).dim(), col);
        return;
    }
    let _ = model;
    for (rank, (row, h)) in layout::rows(col, app.compare.k).iter().zip(hits).enumerate() {
        thumb(app, frame, row.thumb, &ThumbKey::Image(h.id));
        let sel = focused && app.compare.rank_cursor == rank;
        neighbour_text(app, frame, row, rank, h, sel);
    }
}

fn neighbour_text(
    app: &App,
    frame: &mut Frame,
    row: &layout::Row,
    rank: usize,
    h: &Hit,
    selected: bool,
) {
    let rel_span = |text: String| Span::styled(text, rel_style(app, h.rel));
    let name = app.queries.items[h.id as usize].name.clone();
    let lines = if row.compact {
        // One line, by priority: rank and rel always, then the cosine, then the name.
        let mut head = Span::from(format!("{}.", rank + 1));
        if selected {
            head = head.reversed();
        }
        let rel = h.rel.map_or("r –".to_owned(), |r| format!("r{r:.2}"));
        let score = format!("{:.3}", h.score);
        let width = row.text.width as usize;
        let mut used = head.width() + 1 + rel.chars().count();
        let mut spans = vec![head, Span::from(" "), rel_span(rel)];
        if used + 1 + score.len() <= width {
            used += 1 + score.len();
            spans.push(Span::from(" "));
            spans.push(Span::from(score));
        }
        if used + 2 <= width {
            let room = width - used - 1;
            spans.push(Span::from(" "));
            spans.push(Span::from(name.chars().take(room).collect::<String>()).dim());
        }
        vec![Line::from(spans)]
    } else {
        let mut head = Span::from(format!("{}. {:.3}", rank + 1, h.score));
        if selected {
            head = head.reversed();
        }
        let rel = h.rel.map_or("rel –".to_owned(), |r| format!("rel {r:.2}"));
        vec![Line::from(head), Line::from(rel_span(rel)), Line::from(name).dim()]
    };
    frame.render_widget(Paragraph::new(lines), row.text);
}

/// The focused neighbour: name, model, rank, score, rel and every caption.
fn detail(app: &App, frame: &mut Frame, area: Rect) {
    let text = match app.focused_hit() {
        Some(h) => Text::from(photo_lines(
            app,
            Some((app.compare.model_cursor, app.compare.rank_cursor, h)),
            h.id as usize,
        )),
        None => Text::from(
            "Tab, then ← → ↑ ↓ to focus a neighbour · z zooms · Enter makes it the query",
        )
        .dim(),
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title("focused neighbour")),
        area,
    );
}

fn photo_lines(app: &App, hit: Option<(usize, usize, &Hit)>, id: usize) -> Vec<Line<'static>> {
    let item = &app.queries.items[id];
    let mut head = vec![Span::from(item.name.clone()).bold()];
    if let Some((m, rank, h)) = hit {
        let model = app.models().get(m).map_or(String::new(), |x| sanitize(&x.name));
        head.push(Span::from(format!(" · {model} #{} · cosine {:.3} · ", rank + 1, h.score)));
        let rel = h.rel.map_or("rel –".to_owned(), |r| format!("rel {r:.2}"));
        head.push(Span::styled(rel, rel_style(app, h.rel)));
    }
    let mut lines = vec![Line::from(head)];
    lines.extend(item.captions.iter().map(|c| Line::from(format!("· {c}"))));
    lines
}

fn zoom(app: &App, frame: &mut Frame, area: Rect, z: Zoom) {
    let title = "zoom · z or Esc closes · ↑ ↓ ← → move";
    frame.render_widget(Block::bordered().title(title), area);
    let (img, text) = layout::zoom_split(area);
    if let Some(key) = app.zoomed_key() {
        thumb(app, frame, img, &key);
    }
    let lines = match z {
        Zoom::Query => match (&app.compare.outside, app.query()) {
            (Some((q, _)), _) => vec![Line::from(sanitize(&q.label())).bold()],
            (None, Some(q)) => {
                let mut l = photo_lines(app, None, q);
                l.extend(per_query_scores(app, q));
                l
            }
            _ => Vec::new(),
        },
        Zoom::Neighbour { model, rank } => match app.hits(model).get(rank) {
            Some(h) => photo_lines(app, Some((model, rank, h)), h.id as usize),
            None => Vec::new(),
        },
    };
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text);
}

fn metrics(app: &App, frame: &mut Frame, area: Rect) {
    let Some(r) = app.report() else {
        let msg = match app.loaded().map(|l| &l.eval) {
            Some(Eval::Running { stage, done }) => {
                format!("evaluating: {} {:.0}%", sanitize(stage), done * 100.0)
            }
            Some(Eval::NoCaptions) => "no captions in this folder: metrics need captions".into(),
            _ => app.status(),
        };
        frame.render_widget(Paragraph::new(msg).block(Block::bordered().title("metrics")), area);
        return;
    };
    let lines = crate::report::metrics_lines(r, inner(area).width as usize);
    let [table_area, chart_area] = ratatui::layout::Layout::vertical([
        ratatui::layout::Constraint::Length(lines.len() as u16 + 2),
        ratatui::layout::Constraint::Min(3),
    ])
    .areas(area);
    let sampled = r
        .dataset
        .query_sample
        .as_ref()
        .map(|s| format!(" (seed {}) of {}", s.seed, s.of))
        .unwrap_or_default();
    let title = format!(
        "{} queries{sampled} · relevance {} τ={} · 95% bootstrap CIs",
        r.dataset.queries, r.relevance.method, r.relevance.threshold
    );
    let styled: Vec<Line> = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                Line::from(l).bold()
            } else if l.starts_with("random") || l.starts_with("oracle") {
                Line::from(l).dim()
            } else {
                Line::from(l)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(styled).block(Block::bordered().title(title)), table_area);
    let chart_w = inner(chart_area).width as usize;
    let names = short_names(&r.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(), 12);
    let bar_w = chart_w.saturating_sub(12 + 9 + 7).max(1);
    let mut chart = Vec::new();
    for (m, name) in r.models.iter().zip(&names) {
        for k in &r.k {
            let v = m.metrics.get(&format!("ndcg@{k}")).map_or(0.0, |s| s.mean);
            let bar = "█".repeat((v * bar_w as f64).round() as usize);
            chart.push(Line::from(format!("{name:<12} ndcg@{k:<3} {bar:<bar_w$} {v:.3}")));
        }
    }
    frame.render_widget(Paragraph::new(chart).block(Block::bordered().title("nDCG@k")), chart_area);
}

fn disagree(app: &App, frame: &mut Frame, area: Rect) {
    let models = app.models();
    if models.len() < 2 || app.report().is_none() {
        let msg = if models.len() < 2 {
            "disagreement compares two models: browse with --model A,B".to_owned()
        } else {
            app.status()
        };
        frame.render_widget(
            Paragraph::new(msg).block(Block::bordered().title("disagreement")),
            area,
        );
        return;
    }
    let (a, b) = app.pair;
    let names = short_names(&models.iter().map(|m| m.name.clone()).collect::<Vec<_>>(), 14);
    let deltas = app.pair_deltas();
    let wins_a = deltas.iter().filter(|d| d.1 > 0.0).count();
    let wins_b = deltas.iter().filter(|d| d.1 < 0.0).count();
    let title = format!(
        "{} vs {} (m/M change) · wins {wins_a}:{wins_b} · per-query nDCG, largest gap first · Enter opens",
        names[a], names[b]
    );
    let h = inner(area).height;
    let offset = list_offset(app.disagree_cursor, h);
    let w = inner(area).width as usize;
    let items: Vec<ListItem> = deltas
        .iter()
        .skip(offset)
        .take(h as usize)
        .map(|&(q, d)| {
            let (va, vb) = (app.ndcg(a, q).unwrap_or(0.0), app.ndcg(b, q).unwrap_or(0.0));
            let winner = if d > 0.0 {
                names[a].as_str()
            } else if d < 0.0 {
                names[b].as_str()
            } else {
                "tie"
            };
            let win_w = names[a].chars().count().max(names[b].chars().count()).max(3);
            let stats =
                format!("{} {va:.2}  {} {vb:.2}  Δ {d:+.2} {winner:<win_w$}", names[a], names[b]);
            let name_w = w.saturating_sub(stats.chars().count() + 3).max(8);
            let name: String = app.queries.items[q].name.chars().take(name_w).collect();
            let style = if !app.color {
                Style::default()
            } else if d > 0.0 {
                Style::default().fg(Color::Green)
            } else {
                Style::default().fg(Color::Magenta)
            };
            ListItem::new(Line::from(vec![
                Span::from(format!("{name:<name_w$} ")),
                Span::styled(stats, style),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(Block::bordered().title(title))
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default()
        .with_selected((!deltas.is_empty()).then_some(app.disagree_cursor.saturating_sub(offset)));
    frame.render_stateful_widget(list, area, &mut state);
}

fn help(frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> =
        HELP.iter().map(|(k, d)| Line::from(format!(" {k:<14} {d}"))).collect();
    lines.push(Line::from(""));
    lines.push(Line::from(" colours").bold());
    lines.extend(LEGEND.iter().map(|l| Line::from(format!(" {l}"))));
    lines.push(Line::from(""));
    lines.push(Line::from(" metrics").bold());
    lines.extend(METRICS_HELP.iter().map(|l| Line::from(format!(" {l}"))));
    let w = (lines.iter().map(Line::width).max().unwrap_or(40) as u16 + 2).min(area.width);
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("keys · ? or Esc closes")),
        r,
    );
}

/// Maps every 24-bit colour of the frame to the nearest of the xterm 256 (for terminals that
/// do not announce truecolor in COLORTERM).
fn to_256_colours(buf: &mut Buffer) {
    for cell in &mut buf.content {
        if let Color::Rgb(r, g, b) = cell.fg {
            cell.fg = Color::Indexed(nearest_256(r, g, b));
        }
        if let Color::Rgb(r, g, b) = cell.bg {
            cell.bg = Color::Indexed(nearest_256(r, g, b));
        }
    }
}

/// The xterm-256 index nearest to an RGB colour: the 6×6×6 cube or the grey ramp.
pub fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let q = |v: u8| {
        LEVELS
            .iter()
            .enumerate()
            .min_by_key(|(_, &l)| (i32::from(l) - i32::from(v)).abs())
            .map_or(0, |(i, _)| i as u8)
    };
    let (qr, qg, qb) = (q(r), q(g), q(b));
    let cube = (LEVELS[qr as usize], LEVELS[qg as usize], LEVELS[qb as usize]);
    let grey_level = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3).saturating_sub(3) / 10;
    let grey_level = grey_level.min(23) as u8;
    let gv = 8 + 10 * grey_level;
    let dist = |c: (u8, u8, u8)| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        d(c.0, r) + d(c.1, g) + d(c.2, b)
    };
    if dist((gv, gv, gv)) < dist(cube) {
        232 + grey_level
    } else {
        16 + 36 * qr + 6 * qg + qb
    }
}

#[cfg(test)]
mod tests;
