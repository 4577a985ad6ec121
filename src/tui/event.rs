//! One channel for everything the UI loop waits on: key presses, resizes, ticks, engine events
//! and finished thumbnails. The input thread blocks on crossterm; the workers send theirs.

use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use crossterm::event::{self, Event as CtEvent, KeyEvent};
use ratatui_image::protocol::Protocol;

use super::{Action, App, Effect, ThumbKey};
use crate::engine::worker::{EngineEvent, Request};

/// Anything the loop reacts to.
pub enum Event {
    Key(KeyEvent),
    Resize,
    Tick,
    Engine(EngineEvent),
    Thumb(ThumbKey, Box<Protocol>),
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
                        Ok(CtEvent::Resize(..)) => Event::Resize,
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
    pub thumbs: Sender<ThumbKey>,
}

impl Outlets {
    fn carry_out(&self, effects: Vec<Effect>) {
        for e in effects {
            // A worker that has stopped has already reported why; nothing more to do here.
            let _ = match e {
                Effect::Engine(r) => self.engine.send(r).map_err(drop),
                Effect::Thumb(k) => self.thumbs.send(k).map_err(drop),
            };
        }
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
    terminal.draw(|f| super::ui::render(app, f))?;
    while !app.quit {
        let Ok(ev) = rx.recv() else { break };
        let action = match ev {
            Event::Key(k) => match super::keys::action(k, app.prompt.is_some()) {
                Some(a) => a,
                None => continue,
            },
            Event::Resize | Event::Tick => {
                terminal.draw(|f| super::ui::render(app, f))?;
                continue;
            }
            Event::Engine(e) => Action::Engine(e),
            Event::Thumb(k, p) => Action::Thumb(k, p),
        };
        outlets.carry_out(app.update(action));
        // Draw once per burst of events, so a flood of thumbnails never lags the keys.
        if rx.is_empty() {
            terminal.draw(|f| super::ui::render(app, f))?;
        }
    }
    Ok(())
}
