//! `embtui bench tui`: key press to frame on an in-memory terminal of 200 × 60 with four
//! model columns, every thumbnail cached at its layout size.

use std::process::ExitCode;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Size;
use serde::Serialize;

use super::{keys, layout, Action, App, ThumbKey};
use crate::cli::DatasetArgs;
use crate::config::Config;
use crate::engine::worker::{EngineEvent, Hit, ModelInfo, MAX_NEIGHBOURS};

/// What `bench tui` prints.
#[derive(Debug, Serialize)]
struct TuiBench {
    bench: &'static str,
    presses: usize,
    terminal: &'static str,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Times `presses` key presses (update + full render).
pub fn run(
    cfg: &Config,
    data: &DatasetArgs,
    presses: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(data)?;
    let items: Vec<(String, Vec<String>)> =
        ds.samples.iter().map(|s| (s.name.clone(), s.captions.clone())).collect();
    let n = items.len();
    let names: Vec<String> = (1..=4).map(|m| format!("model-{m}")).collect();
    let mut app = App::new("bench", items, &names, true);
    let size = Size::new(200, 60);
    app.update(Action::Resize(size));
    let models =
        names.iter().map(|name| ModelInfo { name: name.clone(), device: "cpu".into() }).collect();
    app.update(Action::Engine(EngineEvent::Ready { models, evaluated: vec![true; n] }));
    // Every query's neighbours, as the engine would send them.
    for q in 0..n {
        let hits = (1..=4)
            .map(|m| {
                (1..=MAX_NEIGHBOURS)
                    .map(|j| Hit { id: ((q + j * m) % n) as u32, score: 0.5, rel: Some(0.2) })
                    .collect()
            })
            .collect();
        app.update(Action::Engine(EngineEvent::Neighbours { query: q, hits }));
    }
    let picker = ratatui_image::picker::Picker::halfblocks();
    let sizes = layout::Sizes::of(&app);
    for (i, s) in ds.samples.iter().enumerate() {
        let img = super::thumbs::small(&s.path, &cfg.decode)?;
        for size in [sizes.neighbour, sizes.query] {
            let p = super::thumbs::encode(&picker, &img, size)?;
            app.update(Action::Thumb(ThumbKey::Image(i as u32), size, Box::new(p)));
        }
    }
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(size.width, size.height))?;
    let mut lat = Vec::with_capacity(presses);
    for i in 0..presses {
        let key = KeyEvent::from(if i % 50 < 25 { KeyCode::Down } else { KeyCode::Up });
        let t = Instant::now();
        if let Some(a) = keys::action(key, false) {
            app.update(a);
        }
        terminal.draw(|f| super::ui::render(&app, f))?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let out = TuiBench {
        bench: "tui",
        presses,
        terminal: "200x60 TestBackend, 4 models, half-block thumbnails cached",
        p50_ms: crate::engine::bench::percentile(&lat, 0.5),
        p99_ms: crate::engine::bench::percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
    };
    crate::engine::bench::print(&serde_json::to_string(&out)?, json)?;
    Ok(ExitCode::SUCCESS)
}
