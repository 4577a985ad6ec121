//! The keymap and the help text: every key the TUI understands, in one place. Navigation
//! follows lazygit, k9s and htop: Esc backs out (q quits), Home/End/g/G, Backspace/[ go back.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::prompt::Edit;
use super::{Action, PromptKind, View};

/// Maps a key press to an action; `prompt` is true while a text prompt is open.
pub fn action(key: KeyEvent, prompt: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if prompt {
        return prompt_action(key.code, ctrl);
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Char('u') if ctrl => Action::PageUp,
        KeyCode::Char('d') if ctrl => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Tab | KeyCode::BackTab => Action::ToggleFocus,
        KeyCode::Enter => Action::Select,
        KeyCode::Char('z' | ' ') => Action::Zoom,
        KeyCode::Backspace | KeyCode::Char('[') => Action::HistoryBack,
        KeyCode::Char(']') => Action::HistoryForward,
        KeyCode::Char('+' | '=') => Action::MoreNeighbours,
        KeyCode::Char('-') => Action::FewerNeighbours,
        KeyCode::Char('s') => Action::CycleSort,
        KeyCode::Char('m') => Action::CyclePair(false),
        KeyCode::Char('M') => Action::CyclePair(true),
        KeyCode::Char('1') => Action::ShowView(View::Compare),
        KeyCode::Char('2') => Action::ShowView(View::Metrics),
        KeyCode::Char('3') => Action::ShowView(View::Disagree),
        KeyCode::Char('/') => Action::OpenPrompt(PromptKind::Filter),
        KeyCode::Char('o') => Action::OpenPrompt(PromptKind::ImagePath),
        KeyCode::Char('t') => Action::OpenPrompt(PromptKind::Text),
        _ => return None,
    })
}

/// Keys while a prompt is open: readline editing; Enter submits, Esc cancels.
fn prompt_action(code: KeyCode, ctrl: bool) -> Option<Action> {
    let edit = match (code, ctrl) {
        (KeyCode::Enter, _) => return Some(Action::Select),
        (KeyCode::Esc, _) => return Some(Action::Back),
        (KeyCode::Char('a'), true) | (KeyCode::Home, _) => Edit::Home,
        (KeyCode::Char('e'), true) | (KeyCode::End, _) => Edit::End,
        (KeyCode::Char('u'), true) => Edit::KillToStart,
        (KeyCode::Char('k'), true) => Edit::KillToEnd,
        (KeyCode::Char('w'), true) => Edit::KillWord,
        (KeyCode::Char('b'), true) | (KeyCode::Left, _) => Edit::Left,
        (KeyCode::Char('f'), true) | (KeyCode::Right, _) => Edit::Right,
        (KeyCode::Char('h'), true) | (KeyCode::Backspace, _) => Edit::Backspace,
        (KeyCode::Char('d'), true) | (KeyCode::Delete, _) => Edit::Delete,
        (KeyCode::Tab, _) => Edit::Complete,
        (KeyCode::Char(_), true) => return None,
        (KeyCode::Char(c), false) => Edit::Insert(c),
        _ => return None,
    };
    Some(Action::Prompt(edit))
}

/// The help overlay, one line per key.
pub const HELP: &[(&str, &str)] = &[
    ("j k ↑ ↓", "move through queries (or neighbours); the wheel scrolls"),
    ("PgUp PgDn", "move by 10 (also Ctrl-U Ctrl-D)"),
    ("g G Home End", "first / last"),
    ("Tab", "switch between the query list and the neighbours"),
    ("h l ← →", "choose the model column (neighbours focused)"),
    ("Enter", "neighbour becomes the query · opens a disagreement"),
    ("Bksp [  ]", "back / forward through the queries you opened"),
    ("z Space", "zoom the query or the focused neighbour"),
    ("+ -", "more / fewer neighbours per model"),
    ("s", "sort queries: name · worst nDCG per model · disagreement"),
    ("m M", "disagreement view: change the first / second model"),
    ("1 2 3", "compare · metrics · disagreement views"),
    ("/", "filter queries by caption words"),
    ("o", "query by an image file (Tab completes, ~ is home)"),
    ("t", "query by text (models with a text tower)"),
    ("Esc", "close help, zoom, outside query, view, filter"),
    ("q Ctrl-C", "quit"),
];

/// What the colours mean.
pub const LEGEND: &[&str] = &[
    "rel = caption relevance of a neighbour to the query (0 … 1)",
    "green: rel ≥ τ (relevant) · yellow: rel ≥ τ/3 · red: below",
    "cosine = the model's similarity; the column title is its nDCG on this query",
];

/// One line per metric.
pub const METRICS_HELP: &[&str] = &[
    "nDCG@k: graded gain of the top k, 1 = ranked as well as the captions allow",
    "overlap@k: mean relevance of the top k · p@k: share of the top k with rel ≥ τ",
    "map@r: precision over the R relevant images' ranks · mrr: 1 / rank of the first",
    "random / oracle: what chance and a perfect ranking by relevance would score",
];

/// The footer hint.
pub const FOOTER: &str =
    "? help · / filter · o image · t text · z zoom · Tab focus · 1 2 3 views · q quit";
