//! One channel for everything the UI loop waits on: keys, mouse, resizes, ticks, engine events,
//! finished thumbnails and path completions. The input thread blocks on crossterm; the
//! workers send theirs.

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use crossterm::event::{self, Event as CtEvent, KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::Size;
use ratatui_image::protocol::Protocol;

use super::{Action, App, Effect, Mouse, ThumbKey};
use crate::engine::search::Query;
use crate::engine::worker::{EngineEvent, Request};

/// Anything the loop reacts to.
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(Size),
    Tick,
    Engine(EngineEvent),
    Thumb(ThumbKey, Size, Box<Protocol>),
    Completions(Vec<String>),
}

/// The merged channel; clones of `tx` go to the input thread and the workers.
pub struct Events {
    pub tx: Sender<Event>,
    pub rx: Receiver<Event>,
}

impl Events {
    pub fn new() -> Self {
        let (tx, rx) = unbounded();
        Self { tx, rx }
    }

    /// Starts the terminal input thread (not used under tests, which send keys directly).
    pub fn spawn_input(&self) {
        let tx = self.tx.clone();
        std::thread::spawn(move || loop {
            match event::poll(Duration::from_millis(250)) {
                Ok(true) => {
                    let ev = match event::read() {
                        Ok(CtEvent::Key(k)) => Event::Key(k),
                        Ok(CtEvent::Mouse(m)) => Event::Mouse(m),
                        Ok(CtEvent::Resize(w, h)) => Event::Resize(Size::new(w, h)),
                        Ok(_) => continue,
                        Err(_) => return,
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                Ok(false) => {
                    if tx.send(Event::Tick).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        });
    }
}

/// Where the loop sends what `App::update` asks for.
pub struct Outlets {
    pub engine: Sender<Request>,
    pub thumbs: Sender<(ThumbKey, Size)>,
    /// Where path completions are sent back (the merged channel).
    pub events: Sender<Event>,
}

/// `~/…` → `$HOME/…`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if path == "~" => {
            std::env::var_os("HOME").map_or_else(|| PathBuf::from(path), PathBuf::from)
        }
        _ => PathBuf::from(path),
    }
}

/// The entries of `prefix`'s folder whose names start with its last part, written the way
/// the user typed the folder (`~` kept); folders end in `/`.
pub fn complete(prefix: &str) -> Vec<String> {
    let (dir_typed, stem) = match prefix.rfind('/') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    let dir = if dir_typed.is_empty() { PathBuf::from(".") } else { expand_home(dir_typed) };
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with(stem) || (name.starts_with('.') && !stem.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            Some(format!("{dir_typed}{name}{slash}"))
        })
        .take(200)
        .collect();
    out.sort();
    out
}

impl Outlets {
    fn carry_out(&self, effects: Vec<Effect>) {
        for e in effects {
            // A worker that has stopped has already reported why; nothing more to do here.
            let _ = match e {
                Effect::Engine(Request::Outside(Query::Image(p))) => {
                    let p = expand_home(&p.to_string_lossy());
                    self.engine.send(Request::Outside(Query::Image(p))).map_err(drop)
                }
                Effect::Engine(r) => self.engine.send(r).map_err(drop),
                Effect::Thumb(k, s) => self.thumbs.send((k, s)).map_err(drop),
                Effect::Complete(prefix) => {
                    let tx = self.events.clone();
                    std::thread::spawn(move || {
                        let _ = tx.send(Event::Completions(complete(&prefix)));
                    });
                    Ok(())
                }
            };
        }
    }
}

fn mouse(m: MouseEvent) -> Option<Mouse> {
    let (column, row) = (m.column, m.row);
    match m.kind {
        MouseEventKind::Down(_) => Some(Mouse::Click { column, row }),
        MouseEventKind::ScrollUp => Some(Mouse::ScrollUp { column, row }),
        MouseEventKind::ScrollDown => Some(Mouse::ScrollDown { column, row }),
        _ => None,
    }
}

/// The UI loop: waits on the merged channel, folds each event into `app`, carries out the
/// effects, redraws. Generic over the backend so tests can drive it on `TestBackend`.
pub fn run_loop<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    app: &mut App,
    rx: &Receiver<Event>,
    outlets: &Outlets,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let size = terminal.size()?;
    outlets.carry_out(app.update(Action::Resize(size)));
    terminal.draw(|f| super::ui::render(app, f))?;
    while !app.quit {
        let Ok(ev) = rx.recv() else { break };
        let action = match ev {
            Event::Key(k) => match super::keys::action(k, app.prompt.is_some()) {
                Some(a) => a,
                None => continue,
            },
            Event::Mouse(m) => match mouse(m) {
                Some(m) => Action::Mouse(m),
                None => continue,
            },
            Event::Resize(s) => Action::Resize(s),
            Event::Tick => {
                terminal.draw(|f| super::ui::render(app, f))?;
                continue;
            }
            Event::Engine(e) => Action::Engine(e),
            Event::Thumb(k, s, p) => Action::Thumb(k, s, p),
            Event::Completions(c) => Action::Completions(c),
        };
        outlets.carry_out(app.update(action));
        // Draw once per burst of events, so a flood of thumbnails never lags the keys.
        if rx.is_empty() {
            terminal.draw(|f| super::ui::render(app, f))?;
        }
    }
    Ok(())
}
