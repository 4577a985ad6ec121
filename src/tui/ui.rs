//! Render functions: they read `&App` and draw; nothing here changes state or does I/O.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use ratatui_image::Image;

use super::keys::{FOOTER, HELP};
use super::thumbs::THUMB_CELLS;
use super::{App, Focus, PromptKind, ThumbKey, View, TOP_K};
use crate::engine::worker::Hit;

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let [top, body, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(5), Constraint::Length(1)])
            .areas(frame.area());
    frame.render_widget(Paragraph::new(tabs(app)), top);
    match app.view {
        View::Compare => compare(app, frame, body),
        View::Metrics => metrics(app, frame, body),
        View::Disagree => disagree(app, frame, body),
    }
    frame.render_widget(Paragraph::new(footer(app)), bottom);
    if app.help {
        help(frame, body);
    }
}

fn tabs(app: &App) -> Line<'static> {
    let mut spans = vec![Span::from(format!(
        " embtui · {} ({} images) ",
        app.dataset,
        app.queries.items.len()
    ))
    .bold()];
    for (v, label) in
        [(View::Compare, "1 Compare"), (View::Metrics, "2 Metrics"), (View::Disagree, "3 Disagree")]
    {
        let s = format!(" {label} ");
        spans.push(if app.view == v { Span::from(s).reversed() } else { Span::from(s) });
    }
    Line::from(spans)
}

fn footer(app: &App) -> Line<'static> {
    if let Some((kind, input)) = &app.prompt {
        let label = match kind {
            PromptKind::Filter => "filter",
            PromptKind::ImagePath => "image file",
            PromptKind::Text => "text query",
        };
        return Line::from(format!(
            " {label}: {}▏  (Enter ok · Esc cancel)",
            crate::text::sanitize(input)
        ));
    }
    Line::from(vec![
        Span::from(format!(" {} ", app.status())).reversed(),
        Span::from(format!("  {FOOTER}")),
    ])
}

fn rel_style(app: &App, rel: Option<f32>) -> Style {
    let (true, Some(tau)) = (app.color, app.threshold()) else { return Style::default() };
    match rel {
        Some(r) if r >= tau => Style::default().fg(Color::Green),
        Some(r) if r >= 0.1 => Style::default().fg(Color::Yellow),
        Some(_) => Style::default().fg(Color::Red),
        None => Style::default(),
    }
}

fn compare(app: &App, frame: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(32), Constraint::Min(20)]).areas(area);
    query_list(app, frame, left);
    let [query, neighbours, detail] =
        Layout::vertical([Constraint::Length(10), Constraint::Min(6), Constraint::Length(4)])
            .areas(right);
    query_pane(app, frame, query);
    let n = app.models().len().max(1);
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(neighbours);
    for (m, col) in cols.iter().enumerate() {
        model_column(app, frame, *col, m);
    }
    let text = match app.focused_hit() {
        Some(h) => {
            let item = &app.queries.items[h.id as usize];
            let mut lines = vec![Line::from(format!("{} · captions:", item.name)).bold()];
            lines.extend(item.captions.iter().map(|c| Line::from(format!("· {c}"))));
            Text::from(lines)
        }
        None => Text::from("Tab, then ← → ↑ ↓ to focus a neighbour and read its captions"),
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title("focused neighbour")),
        detail,
    );
}

fn query_list(app: &App, frame: &mut Frame, area: Rect) {
    let q = &app.queries;
    let title = if q.filter.is_empty() {
        format!("queries ({})", q.visible.len())
    } else {
        format!("queries matching \"{}\" ({})", crate::text::sanitize(&q.filter), q.visible.len())
    };
    let items: Vec<ListItem> =
        q.visible.iter().map(|&i| ListItem::new(q.items[i].name.clone())).collect();
    let mut block = Block::bordered().title(title);
    if app.compare.focus == Focus::Queries {
        block = block.border_style(Style::default().add_modifier(Modifier::BOLD));
    }
    let list = List::new(items)
        .block(block)
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(app.query().map(|_| q.cursor));
    frame.render_stateful_widget(list, area, &mut state);
}

fn thumb(app: &App, frame: &mut Frame, area: Rect, key: &ThumbKey) {
    match app.thumbs.ready.get(key) {
        // Clipping lets a thumbnail show in rows a little shorter than it was made for.
        Some(p) => frame.render_widget(Image::new(p).allow_clipping(true), area),
        None => frame.render_widget(Paragraph::new("…").dim(), area),
    }
}

fn query_pane(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title("query");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [img, text] =
        Layout::horizontal([Constraint::Length(THUMB_CELLS.width + 2), Constraint::Min(10)])
            .areas(inner);
    let (key, lines) = match (&app.compare.outside, app.query()) {
        (Some((query, _)), _) => (
            match query {
                crate::engine::search::Query::Image(p) => Some(ThumbKey::Outside(p.clone())),
                crate::engine::search::Query::Text(_) => None,
            },
            vec![
                Line::from(crate::text::sanitize(&query.label())).bold(),
                Line::from("(outside the dataset: no captions, no relevance)"),
            ],
        ),
        (None, Some(q)) => {
            let item = &app.queries.items[q];
            let mut l = vec![Line::from(item.name.clone()).bold()];
            l.extend(item.captions.iter().map(|c| Line::from(format!("· {c}"))));
            (Some(ThumbKey::Image(q as u32)), l)
        }
        (None, None) => {
            frame.render_widget(Paragraph::new("no query matches the filter"), inner);
            return;
        }
    };
    if let Some(key) = key {
        thumb(app, frame, img, &key);
    } else {
        frame.render_widget(Paragraph::new("…").dim(), img);
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text);
}

fn model_column(app: &App, frame: &mut Frame, area: Rect, m: usize) {
    let Some(model) = app.models().get(m) else {
        let msg = match &app.phase {
            super::Phase::Loading { progress: Some((name, d, t)), .. } => {
                format!("indexing {}: {d}/{t}", crate::text::sanitize(name))
            }
            _ => app.status(),
        };
        frame.render_widget(
            Paragraph::new(msg).block(Block::bordered().title(app.model_names.join(" · "))),
            area,
        );
        return;
    };
    let ndcg =
        app.query().and_then(|q| model.ndcg.get(q)).filter(|_| app.compare.outside.is_none());
    let title = match ndcg {
        Some(v) => format!("{} · nDCG@10 {v:.2} · {}", model.name, model.device),
        None => format!("{} · {}", model.name, model.device),
    };
    let mut block = Block::bordered().title(title);
    if app.compare.focus == Focus::Neighbours && app.compare.model_cursor == m {
        block = block.border_style(Style::default().add_modifier(Modifier::BOLD));
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let hits: Vec<&Hit> = app.hits(m).iter().take(TOP_K).collect();
    let row_h = (inner.height / TOP_K as u16).clamp(1, THUMB_CELLS.height);
    for (rank, h) in hits.iter().enumerate() {
        let y = inner.y + rank as u16 * row_h;
        if y + row_h > inner.y + inner.height {
            break;
        }
        let row = Rect { x: inner.x, y, width: inner.width, height: row_h };
        let [img, text] =
            Layout::horizontal([Constraint::Length(THUMB_CELLS.width + 1), Constraint::Min(8)])
                .areas(row);
        thumb(app, frame, img, &ThumbKey::Image(h.id));
        let c = &app.compare;
        let focused = c.focus == Focus::Neighbours && c.model_cursor == m && c.rank_cursor == rank;
        let rel = h.rel.map_or("rel –".to_owned(), |r| format!("rel {r:.2}"));
        let mut lines = vec![
            Line::from(format!("{}. {:.3}", rank + 1, h.score)),
            Line::from(Span::styled(rel, rel_style(app, h.rel))),
            Line::from(app.queries.items[h.id as usize].name.clone()).dim(),
        ];
        if focused {
            lines[0] = lines[0].clone().reversed();
        }
        frame.render_widget(Paragraph::new(lines), text);
    }
}

fn metrics(app: &App, frame: &mut Frame, area: Rect) {
    let Some(r) = app.report() else {
        frame.render_widget(
            Paragraph::new(format!("evaluating… {}", app.status()))
                .block(Block::bordered().title("metrics")),
            area,
        );
        return;
    };
    let k_max = r.k.iter().max().copied().unwrap_or(10);
    let names: Vec<String> =
        [format!("ndcg@{k_max}"), "overlap@5".into(), "p@5".into(), "map@r".into(), "mrr".into()]
            .into_iter()
            .filter(|n| {
                n == "map@r"
                    || n == "mrr"
                    || r.models.first().is_none_or(|m| m.metrics.contains_key(n))
            })
            .collect();
    let mut header = vec!["model".to_owned()];
    header.extend(names.iter().cloned());
    let mut rows: Vec<Row> = r
        .models
        .iter()
        .map(|m| {
            let mut cells = vec![m.name.clone()];
            cells.extend(names.iter().map(|n| {
                m.metrics.get(n).map_or("-".into(), |s| crate::report::ci_cell(s.mean, s.ci95))
            }));
            Row::new(cells)
        })
        .collect();
    for (label, b) in [("random", &r.baselines.random), ("oracle", &r.baselines.oracle)] {
        let mut cells = vec![label.to_owned()];
        cells.extend(names.iter().map(|n| b.get(n).map_or("-".into(), |v| format!("{v:.3}"))));
        rows.push(Row::new(cells).dim());
    }
    let widths =
        std::iter::once(Constraint::Length(22)).chain(names.iter().map(|_| Constraint::Length(21)));
    let [table_area, chart_area] =
        Layout::vertical([Constraint::Length(rows.len() as u16 + 3), Constraint::Min(3)])
            .areas(area);
    let title = format!(
        "{} queries · relevance {} τ={} · 95% bootstrap CIs",
        r.dataset.queries, r.relevance.method, r.relevance.threshold
    );
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).bold())
            .block(Block::bordered().title(title)),
        table_area,
    );
    let mut lines = Vec::new();
    for m in &r.models {
        for k in &r.k {
            let v = m.metrics.get(&format!("ndcg@{k}")).map_or(0.0, |s| s.mean);
            let bar = "█".repeat((v * 40.0).round() as usize);
            lines.push(Line::from(format!("{:<22} ndcg@{k:<3} {bar:<40} {v:.3}", m.name)));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title("nDCG@k")), chart_area);
}

fn disagree(app: &App, frame: &mut Frame, area: Rect) {
    let items: Vec<ListItem> = app
        .disagree()
        .iter()
        .map(|&(q, gap)| {
            let per: Vec<String> =
                app.models().iter().map(|m| format!("{} {:.2}", m.name, m.ndcg[q])).collect();
            let name = &app.queries.items[q].name;
            ListItem::new(format!("{name:<28} gap {gap:.2}   {}", per.join("  ")))
        })
        .collect();
    let list = List::new(items)
        .block(
            Block::bordered()
                .title("queries where the models disagree most (nDCG@10 gap) · Enter opens"),
        )
        .highlight_symbol("> ")
        .highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default()
        .with_selected((!app.disagree().is_empty()).then_some(app.disagree_cursor));
    frame.render_stateful_widget(list, area, &mut state);
}

fn help(frame: &mut Frame, area: Rect) {
    let w = 80.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = HELP.iter().map(|(k, d)| Line::from(format!(" {k:<11} {d}"))).collect();
    frame.render_widget(Clear, r);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title("keys")), r);
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::tui::tests::sample_app;
    use crate::tui::Action;

    fn draw(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(app, f)).unwrap();
        format!("{}", t.backend())
    }

    #[test]
    fn compare_view_shows_query_captions_and_each_models_neighbours() {
        let mut app = sample_app();
        app.color = false;
        insta::assert_snapshot!(draw(&app, 100, 44));
    }

    #[test]
    fn focused_neighbour_shows_its_captions_without_escape_sequences() {
        let mut app = sample_app();
        app.color = false;
        app.update(Action::ToggleFocus);
        app.update(Action::Right);
        insta::assert_snapshot!(draw(&app, 100, 44));
    }

    #[test]
    fn metrics_view_shows_intervals_baselines_and_chart() {
        let mut app = sample_app();
        app.update(Action::ShowView(View::Metrics));
        insta::assert_snapshot!(draw(&app, 100, 16));
    }

    #[test]
    fn disagreement_view_lists_the_largest_gap_first() {
        let mut app = sample_app();
        app.update(Action::ShowView(View::Disagree));
        insta::assert_snapshot!(draw(&app, 80, 8));
    }

    #[test]
    fn help_overlay_lists_the_keys() {
        let mut app = sample_app();
        app.update(Action::ToggleHelp);
        insta::assert_snapshot!(draw(&app, 80, 20));
    }

    #[test]
    fn tiny_terminal_does_not_panic() {
        let app = sample_app();
        for (w, h) in [(1, 1), (10, 3), (20, 8)] {
            draw(&app, w, h);
        }
    }
}
