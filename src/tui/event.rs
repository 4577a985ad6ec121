//! One channel for everything the UI loop waits on: key presses, resizes, ticks and engine
//! events. The input thread blocks on crossterm; the engine sends from its workers.

use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use crossterm::event::{self, Event as CtEvent, KeyEvent};

use super::EngineEvent;

/// Anything the loop reacts to.
pub enum Event {
    Key(KeyEvent),
    Resize,
    Tick,
    Engine(EngineEvent),
}

/// The merged channel; `sender()` is handed to the engine.
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

/// The UI loop: waits on the merged channel, folds each event into `app`, forwards requests to
/// the engine, redraws. Generic over the backend so tests can drive it on `TestBackend`.
pub fn run_loop<B: ratatui::backend::Backend>(
    terminal: &mut ratatui::Terminal<B>,
    app: &mut super::App,
    rx: &Receiver<Event>,
    requests: &Sender<super::Request>,
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
            Event::Engine(e) => super::Action::Engine(e),
        };
        for r in app.update(action) {
            let _ = requests.send(r);
        }
        // Draw once per burst of events, so a flood of thumbnails never lags the keys.
        if rx.is_empty() {
            terminal.draw(|f| super::ui::render(app, f))?;
        }
    }
    Ok(())
}
