//! `embtui bench tui`: key press to frame on an in-memory terminal, every thumbnail cached.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use serde::Serialize;

use super::{keys, Action, App, ThumbKey};
use crate::cli::DatasetArgs;
use crate::config::Config;
use crate::engine::worker::{EngineEvent, Hit, ModelResult};

/// What `bench tui` prints.
#[derive(Debug, Serialize)]
struct TuiBench {
    bench: &'static str,
    presses: usize,
    terminal: &'static str,
    p50_ms: f64,
    p99_ms: f64,
}

/// Times `presses` key presses (update + full render) on a 160 × 48 test terminal.
pub fn run(cfg: &Config, data: &DatasetArgs, presses: usize) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(data)?;
    let items: Vec<(String, Vec<String>)> =
        ds.samples.iter().map(|s| (s.name.clone(), s.captions.clone())).collect();
    let n = items.len();
    let mut app = App::new("bench", items, vec!["a".into(), "b".into()], true);
    let hits = |q: usize, off: usize| {
        (1..=5)
            .map(|j| Hit { id: ((q + j * off) % n) as u32, score: 0.5, rel: Some(0.2) })
            .collect::<Vec<_>>()
    };
    let models = (1..=2)
        .map(|m| ModelResult {
            name: format!("model-{m}"),
            device: "cpu".into(),
            hits: (0..n).map(|q| hits(q, m)).collect(),
            ndcg: vec![0.5; n],
        })
        .collect();
    let report = Box::new(crate::report::EvalReport::empty(crate::engine::environment()));
    app.update(Action::Engine(EngineEvent::Ready { models, report }));
    let picker = ratatui_image::picker::Picker::halfblocks();
    for (i, s) in ds.samples.iter().enumerate() {
        let p = super::thumbs::encode(&picker, &s.path, super::thumbs::THUMB_CELLS)?;
        app.update(Action::Thumb(ThumbKey::Image(i as u32), Box::new(p)));
    }
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48))?;
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
        terminal: "160x48 TestBackend, half-block thumbnails cached",
        p50_ms: crate::engine::bench::percentile(&lat, 0.5),
        p99_ms: crate::engine::bench::percentile(&lat, 0.99),
    };
    writeln!(std::io::stdout(), "{}", serde_json::to_string(&out)?)?;
    Ok(ExitCode::SUCCESS)
}
