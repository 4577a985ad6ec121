//! The keymap and the help text: every key the TUI understands, in one place.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{Action, PromptKind, View};

/// Maps a key press to an action; `prompt` is true while a text prompt is open.
pub fn action(key: KeyEvent, prompt: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if prompt {
        return match key.code {
            KeyCode::Enter => Some(Action::PromptSubmit),
            KeyCode::Esc => Some(Action::PromptCancel),
            KeyCode::Backspace => Some(Action::PromptBackspace),
            KeyCode::Char(c) => Some(Action::PromptInput(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Tab => Action::ToggleFocus,
        KeyCode::Enter => Action::Select,
        KeyCode::Char('1') => Action::ShowView(View::Compare),
        KeyCode::Char('2') => Action::ShowView(View::Metrics),
        KeyCode::Char('3') => Action::ShowView(View::Disagree),
        KeyCode::Char('/') => Action::OpenPrompt(PromptKind::Filter),
        KeyCode::Char('o') => Action::OpenPrompt(PromptKind::ImagePath),
        KeyCode::Char('t') => Action::OpenPrompt(PromptKind::Text),
        _ => return None,
    })
}

/// The help overlay, one line per key.
pub const HELP: &[(&str, &str)] = &[
    ("j k ↑ ↓", "move through queries (or neighbours)"),
    ("PgUp PgDn", "move by 10"),
    ("Tab", "switch between the query list and the neighbours"),
    ("h l ← →", "choose the model column (neighbours focused)"),
    ("Enter", "focused neighbour becomes the query; opens a disagreement"),
    ("1 2 3", "compare · metrics · disagreement views"),
    ("/", "filter queries by caption words"),
    ("o", "query by any image file path"),
    ("t", "query by text (models with a text tower)"),
    ("?", "this help"),
    ("q Esc", "quit"),
];

/// The footer hint.
pub const FOOTER: &str = "? help · / filter · o open image · Tab focus · 1 2 3 views · q quit";
