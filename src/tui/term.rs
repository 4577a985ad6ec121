//! `embtui browse`: the terminal (raw mode, alternate screen, mouse), the graphics protocol,
//! the workers and the loop.

use std::io::Write;
use std::process::ExitCode;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui_image::picker::{Picker, ProtocolType};

use super::event::{run_loop, Event, Events, Outlets};
use super::App;
use crate::cli::{BrowseArgs, ImageProtocol};
use crate::config::Config;
use crate::engine::eval::QuerySet;
use crate::engine::worker;

/// Opens the TUI on a dataset with the given models.
pub fn browse(cfg: &Config, a: &BrowseArgs) -> anyhow::Result<ExitCode> {
    let ds = cfg.dataset(&a.data)?;
    // Refused (or announced) before the terminal is taken over.
    let (queries, announce) = QuerySet::resolve(a.queries, ds.samples.len(), a.data.seed)?;
    if let Some(line) = announce {
        crate::say!("{line}");
    }
    let entries = cfg.models(&a.models.names)?;
    let items = ds.samples.iter().map(|s| (s.name.clone(), s.captions.clone())).collect();
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(
        &ds.root.display().to_string(),
        items,
        &entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        color,
    );
    app.text_tower = entries.iter().any(|e| e.text.is_some());
    app.truecolor = crate::text::truecolor();
    let paths = ds.samples.iter().map(|s| s.path.clone()).collect();
    let decode = cfg.decode;
    let mut terminal = ratatui::try_init()?;
    crate::warn::set_quiet(true);
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let picker = picker(a.image_protocol);
    let events = Events::new();
    events.spawn_input();
    let (tx_t, tx_e) = (events.tx.clone(), events.tx.clone());
    let outlets = Outlets {
        thumbs: super::thumbs::spawn(picker, paths, decode, move |k, s, p| {
            tx_t.send(Event::Thumb(k, s, Box::new(p))).is_ok()
        }),
        engine: worker::spawn(cfg.clone(), ds, entries, queries, move |e| {
            tx_e.send(Event::Engine(e)).is_ok()
        }),
        events: events.tx.clone(),
    };
    let res = run_loop(&mut terminal, &mut app, &events.rx, &outlets);
    crate::warn::set_quiet(false);
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    let _ = std::io::stdout().flush();
    res.map(|()| ExitCode::SUCCESS)
}

fn picker(protocol: ImageProtocol) -> Picker {
    let queried = || Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks());
    match protocol {
        ImageProtocol::Auto => queried(),
        ImageProtocol::Halfblocks => Picker::halfblocks(),
        other => {
            let mut p = queried();
            p.set_protocol_type(match other {
                ImageProtocol::Sixel => ProtocolType::Sixel,
                ImageProtocol::Kitty => ProtocolType::Kitty,
                _ => ProtocolType::Iterm2,
            });
            p
        }
    }
}
