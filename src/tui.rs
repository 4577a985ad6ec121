//! TUI state: `App`, the `Action`s that change it and `App::update`. No I/O, no drawing:
//! `update` returns the `Effect`s to carry out (engine requests, thumbnails to encode, path
//! completions to look up); `tui/ui.rs` draws `&App`; `tui/term.rs` owns the terminal.

pub mod bench;
pub mod event;
pub mod keys;
pub mod layout;
pub mod prompt;
pub mod term;
pub mod thumbs;
pub mod ui;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use ratatui::layout::Size;
use ratatui_image::protocol::Protocol;

pub use prompt::{Prompt, PromptKind};
pub use term::browse;

use crate::engine::search::Query;
use crate::engine::worker::{EngineEvent, Evaluated, Hit, ModelInfo, OutsideHits, Request};
use crate::report::EvalReport;
use crate::text::sanitize;

/// Neighbours shown per model when the screen allows (`+`/`-` change it).
pub const DEFAULT_K: usize = 5;
/// The most neighbours a column can show.
pub const MAX_K: usize = crate::engine::worker::MAX_NEIGHBOURS;

/// A thumbnail: a dataset image or the outside query image, at a size in cells.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThumbKey {
    Image(u32),
    Outside(PathBuf),
}

/// What `update` asks the loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Engine(Request),
    Thumb(ThumbKey, Size),
    /// Look up the file names that complete a path prefix (the prompt's Tab).
    Complete(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Compare,
    Metrics,
    Disagree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Queries,
    Neighbours,
}

/// How the query list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    /// By the per-query nDCG of one model, worst first (where it fails).
    Ndcg(usize),
    /// By the disagreement of the chosen pair, largest first.
    Disagreement,
}

/// Which photo the zoom view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zoom {
    Query,
    Neighbour { model: usize, rank: usize },
}

/// A mouse event in terminal cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mouse {
    Click { column: u16, row: u16 },
    ScrollUp { column: u16, row: u16 },
    ScrollDown { column: u16, row: u16 },
}

/// Things that happen to the UI: keys mapped to intents, engine events, thumbnails.
pub enum Action {
    Quit,
    /// Esc: close what is open (prompt, help, zoom, outside query, filter), one at a time.
    Back,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    ToggleFocus,
    Select,
    Zoom,
    HistoryBack,
    HistoryForward,
    MoreNeighbours,
    FewerNeighbours,
    CycleSort,
    /// Choose the disagreement pair's first (false) or second (true) model: the next one.
    CyclePair(bool),
    ShowView(View),
    OpenPrompt(PromptKind),
    Prompt(prompt::Edit),
    ToggleHelp,
    Resize(Size),
    Mouse(Mouse),
    Engine(EngineEvent),
    Thumb(ThumbKey, Size, Box<Protocol>),
    Completions(Vec<String>),
}

/// One dataset image as the UI shows it (text already sanitised).
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub captions: Vec<String>,
    lower: String,
}

/// The evaluation's state once vectors are loaded.
pub enum Eval {
    /// Plain image folders have no captions, so nothing to evaluate.
    NoCaptions,
    Running {
        stage: String,
        done: f64,
    },
    Done {
        report: Box<EvalReport>,
        ndcg: Vec<Vec<f64>>,
    },
    Failed(String),
}

/// What the engine has loaded.
pub struct Loaded {
    pub models: Vec<ModelInfo>,
    /// Dataset ids every model embedded (the others have no neighbours).
    pub evaluated: Vec<bool>,
    pub eval: Eval,
}

/// Where the engine is: still indexing, ready (evaluation maybe still running), or stopped.
pub enum Phase {
    Loading { status: String, progress: Option<(String, usize, usize)> },
    Ready(Box<Loaded>),
    Failed(String),
}

/// The query list: every item, the filter and what it keeps, its order, the selection.
pub struct Queries {
    pub items: Vec<Item>,
    pub filter: String,
    pub visible: Vec<usize>,
    pub cursor: usize,
    pub sort: Sort,
}

/// The compare view: focus, the focused neighbour, how many are shown, zoom, history.
pub struct Compare {
    pub focus: Focus,
    pub model_cursor: usize,
    pub rank_cursor: usize,
    pub k: usize,
    pub zoom: Option<Zoom>,
    pub outside: Option<(Query, OutsideHits)>,
    back: Vec<usize>,
    forward: Vec<usize>,
}

/// Neighbours received per query, and those asked for.
#[derive(Default)]
pub struct Neighbours {
    pub by_query: HashMap<usize, Vec<Vec<Hit>>>,
    asked: HashSet<usize>,
    /// True once the engine's answers carry caption relevance.
    pub with_relevance: bool,
}

/// Thumbnails encoded so far and those asked for, by key and size.
#[derive(Default)]
pub struct Thumbs {
    pub ready: HashMap<(ThumbKey, Size), Protocol>,
    asked: HashSet<(ThumbKey, Size)>,
}

/// The whole UI state.
#[allow(clippy::struct_excessive_bools)] // independent on/off switches, not a state machine
pub struct App {
    pub dataset: String,
    pub model_names: Vec<String>,
    pub phase: Phase,
    /// A transient message for the status bar; cleared by the next move.
    pub message: Option<String>,
    pub view: View,
    pub queries: Queries,
    pub compare: Compare,
    pub neighbours: Neighbours,
    /// The disagreement view: its pair of models and cursor.
    pub pair: (usize, usize),
    pub disagree_cursor: usize,
    pub prompt: Option<Prompt>,
    pub thumbs: Thumbs,
    pub size: Size,
    pub help: bool,
    pub quit: bool,
    pub text_tower: bool,
    /// False under NO_COLOR: decorative colour is dropped (thumbnails keep theirs).
    pub color: bool,
    /// False when the terminal does not announce 24-bit colour: colours go to the 256 palette.
    pub truecolor: bool,
}

impl App {
    /// A new app over `items` (name, captions), before the engine has reported anything.
    pub fn new(
        dataset: &str,
        items: Vec<(String, Vec<String>)>,
        model_names: &[String],
        color: bool,
    ) -> Self {
        let items: Vec<Item> = items
            .into_iter()
            .map(|(n, c)| {
                let captions: Vec<String> = c.iter().map(|x| sanitize(x)).collect();
                let lower = captions.join(" ").to_lowercase();
                Item { name: sanitize(&n), captions, lower }
            })
            .collect();
        let visible = (0..items.len()).collect();
        let pair = (0, usize::from(model_names.len() > 1));
        Self {
            dataset: sanitize(dataset),
            model_names: model_names.iter().map(|n| sanitize(n)).collect(),
            phase: Phase::Loading { status: "starting".into(), progress: None },
            message: None,
            view: View::Compare,
            queries: Queries { items, filter: String::new(), visible, cursor: 0, sort: Sort::Name },
            compare: Compare {
                focus: Focus::Queries,
                model_cursor: 0,
                rank_cursor: 0,
                k: DEFAULT_K,
                zoom: None,
                outside: None,
                back: Vec::new(),
                forward: Vec::new(),
            },
            neighbours: Neighbours::default(),
            pair,
            disagree_cursor: 0,
            prompt: None,
            thumbs: Thumbs::default(),
            size: Size { width: 80, height: 24 },
            help: false,
            quit: false,
            text_tower: false,
            color,
            truecolor: true,
        }
    }

    /// The engine's loaded state, once ready.
    pub fn loaded(&self) -> Option<&Loaded> {
        match &self.phase {
            Phase::Ready(l) => Some(l),
            _ => None,
        }
    }

    /// The models, once loaded.
    pub fn models(&self) -> &[ModelInfo] {
        self.loaded().map_or(&[], |l| l.models.as_slice())
    }

    /// The evaluation report, once done.
    pub fn report(&self) -> Option<&EvalReport> {
        match self.loaded().map(|l| &l.eval) {
            Some(Eval::Done { report, .. }) => Some(report),
            _ => None,
        }
    }

    /// Model `m`'s nDCG (at the largest k) of query `q`, once evaluated.
    pub fn ndcg(&self, m: usize, q: usize) -> Option<f64> {
        match self.loaded().map(|l| &l.eval) {
            Some(Eval::Done { ndcg, .. }) => ndcg.get(m)?.get(q).copied().filter(|x| !x.is_nan()),
            _ => None,
        }
    }

    /// The status bar's text.
    pub fn status(&self) -> String {
        if let Some(m) = &self.message {
            return m.clone();
        }
        match &self.phase {
            Phase::Loading { status, .. } => status.clone(),
            Phase::Ready(l) => match &l.eval {
                Eval::Running { stage, done } => {
                    format!("evaluating: {} {:.0}%", sanitize(stage), done * 100.0)
                }
                Eval::Failed(e) => format!("evaluation failed: {e}"),
                Eval::NoCaptions => "ready (no captions: neighbours and scores only)".into(),
                Eval::Done { .. } => "ready".into(),
            },
            Phase::Failed(e) => format!("error: {e}"),
        }
    }

    /// The relevance threshold τ the report used (colours follow it).
    pub fn threshold(&self) -> Option<f32> {
        self.report().map(|r| r.relevance.threshold)
    }

    /// The dataset id of the selected query, if any.
    pub fn query(&self) -> Option<usize> {
        self.queries.visible.get(self.queries.cursor).copied()
    }

    /// The hits shown for model `m`: the outside query's if one is open, else the selected
    /// query's (once the engine sent them).
    pub fn hits(&self, m: usize) -> &[Hit] {
        if let Some((_, ext)) = &self.compare.outside {
            return ext.get(m).map_or(&[], |(_, h)| h.as_slice());
        }
        self.query()
            .and_then(|q| self.neighbours.by_query.get(&q))
            .and_then(|per_model| per_model.get(m))
            .map_or(&[], Vec::as_slice)
    }

    /// The focused neighbour, when the neighbour pane has focus.
    pub fn focused_hit(&self) -> Option<&Hit> {
        (self.compare.focus == Focus::Neighbours)
            .then(|| self.hits(self.compare.model_cursor).get(self.compare.rank_cursor))
            .flatten()
    }

    /// Per-query differences of the chosen pair (first − second), once evaluated.
    pub fn pair_deltas(&self) -> Vec<(usize, f64)> {
        let (a, b) = self.pair;
        let Some(Eval::Done { ndcg, .. }) = self.loaded().map(|l| &l.eval) else {
            return Vec::new();
        };
        let (Some(va), Some(vb)) = (ndcg.get(a), ndcg.get(b)) else { return Vec::new() };
        let mut d: Vec<(usize, f64)> = (0..va.len())
            .filter(|&q| !va[q].is_nan() && !vb[q].is_nan())
            .map(|q| (q, va[q] - vb[q]))
            .collect();
        d.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()).then(x.0.cmp(&y.0)));
        d
    }

    fn apply_filter(&mut self) {
        let words: Vec<String> =
            self.queries.filter.to_lowercase().split_whitespace().map(str::to_owned).collect();
        let q = &self.queries;
        let mut visible: Vec<usize> = (0..q.items.len())
            .filter(|&i| {
                words.iter().all(|w| {
                    q.items[i].lower.contains(w.as_str()) || q.items[i].name.contains(w.as_str())
                })
            })
            .collect();
        self.sort_visible(&mut visible);
        self.queries.visible = visible;
        self.queries.cursor = 0;
    }

    fn sort_visible(&self, visible: &mut [usize]) {
        match self.queries.sort {
            Sort::Name => visible.sort_unstable(),
            Sort::Ndcg(m) => visible.sort_by(|&a, &b| {
                let (x, y) = (self.ndcg(m, a).unwrap_or(2.0), self.ndcg(m, b).unwrap_or(2.0));
                x.total_cmp(&y).then(a.cmp(&b))
            }),
            Sort::Disagreement => {
                let order: HashMap<usize, usize> =
                    self.pair_deltas().iter().enumerate().map(|(i, &(q, _))| (q, i)).collect();
                visible.sort_by_key(|q| (order.get(q).copied().unwrap_or(usize::MAX), *q));
            }
        }
    }

    /// What the current screen needs: the query's neighbours, thumbnails at their sizes.
    pub fn wanted(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if let (Some(q), None, Some(l)) = (self.query(), &self.compare.outside, self.loaded()) {
            if l.evaluated.get(q).copied().unwrap_or(false) && self.neighbours.asked.insert(q) {
                out.push(Effect::Engine(Request::Neighbours(q)));
            }
        }
        let sizes = layout::Sizes::of(self);
        let mut keys: Vec<(ThumbKey, Size)> = Vec::new();
        match (&self.compare.outside, self.query()) {
            (Some((Query::Image(p), _)), _) => {
                keys.push((ThumbKey::Outside(p.clone()), sizes.query));
            }
            (None, Some(q)) => keys.push((ThumbKey::Image(q as u32), sizes.query)),
            _ => {}
        }
        for m in 0..self.models().len() {
            let shown = self.hits(m).iter().take(sizes.rows);
            keys.extend(shown.map(|h| (ThumbKey::Image(h.id), sizes.neighbour)));
        }
        if let Some(z) = self.zoomed_key() {
            keys.push((z, sizes.zoom));
        }
        out.extend(
            keys.into_iter()
                .filter(|k| k.1.width > 0 && k.1.height > 0 && self.thumbs.asked.insert(k.clone()))
                .map(|(k, s)| Effect::Thumb(k, s)),
        );
        out
    }

    /// The thumbnail the zoom view shows.
    pub fn zoomed_key(&self) -> Option<ThumbKey> {
        match self.compare.zoom? {
            Zoom::Query => match &self.compare.outside {
                Some((Query::Image(p), _)) => Some(ThumbKey::Outside(p.clone())),
                Some(_) => None,
                None => self.query().map(|q| ThumbKey::Image(q as u32)),
            },
            Zoom::Neighbour { model, rank } => {
                self.hits(model).get(rank).map(|h| ThumbKey::Image(h.id))
            }
        }
    }

    /// Selects query `q` (showing it in the list, clearing the filter if it hides it).
    fn select_query(&mut self, q: usize) {
        if !self.queries.visible.contains(&q) {
            self.queries.filter.clear();
            self.apply_filter();
        }
        self.queries.cursor = self.queries.visible.iter().position(|&i| i == q).unwrap_or(0);
        self.compare.outside = None;
        self.compare.rank_cursor = 0;
        self.compare.zoom = None;
    }

    /// Goes to query `q`, remembering where we were (Backspace/`[` return).
    fn go_to(&mut self, q: usize) {
        if let Some(cur) = self.query() {
            if cur != q {
                self.compare.back.push(cur);
                self.compare.forward.clear();
            }
        }
        self.select_query(q);
    }

    fn history(&mut self, back: bool) {
        let cur = self.query();
        let (from, to) = if back {
            (&mut self.compare.back, &mut self.compare.forward)
        } else {
            (&mut self.compare.forward, &mut self.compare.back)
        };
        let Some(q) = from.pop() else {
            self.message = Some(if back { "no earlier query" } else { "no later query" }.into());
            return;
        };
        to.extend(cur);
        self.select_query(q);
    }

    fn move_cursor(&mut self, delta: isize) {
        self.message = None;
        match (self.view, self.compare.focus) {
            (View::Disagree, _) => {
                self.disagree_cursor = step(self.disagree_cursor, delta, self.pair_deltas().len());
            }
            (View::Metrics, _) => {}
            (_, Focus::Queries) => {
                self.queries.cursor = step(self.queries.cursor, delta, self.queries.visible.len());
                self.compare.outside = None;
                self.compare.rank_cursor = 0;
                if self.compare.zoom.is_some() {
                    self.compare.zoom = Some(Zoom::Query);
                }
            }
            (_, Focus::Neighbours) => {
                let n = self.hits(self.compare.model_cursor).len().min(self.shown_k());
                self.compare.rank_cursor = step(self.compare.rank_cursor, delta, n);
                self.follow_zoom();
            }
        }
    }

    /// Neighbours shown per column: k, at most what fits.
    pub fn shown_k(&self) -> usize {
        self.compare.k.min(layout::Sizes::of(self).rows).max(1)
    }

    fn follow_zoom(&mut self) {
        if let Some(Zoom::Neighbour { .. }) = self.compare.zoom {
            let (model, rank) = (self.compare.model_cursor, self.compare.rank_cursor);
            self.compare.zoom = Some(Zoom::Neighbour { model, rank });
        }
    }

    /// Folds one action into the state; returns what the loop should do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let effects = match action {
            Action::Engine(e) => self.on_engine(e),
            Action::Thumb(key, size, p) => {
                self.thumbs.ready.insert((key, size), *p);
                Vec::new()
            }
            Action::Resize(s) => {
                self.size = s;
                Vec::new()
            }
            Action::Completions(list) => {
                if let Some(p) = &mut self.prompt {
                    p.complete(&list);
                }
                Vec::new()
            }
            other if self.prompt.is_some() => self.update_prompt(other),
            other => self.update_keys(other),
        };
        let mut out = effects;
        out.extend(self.wanted());
        out
    }

    #[allow(clippy::needless_pass_by_value)] // actions are consumed by `update`'s other arms
    fn update_keys(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => self.quit = true,
            Action::Back => self.back_out(),
            Action::ToggleHelp => self.help = !self.help,
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::PageUp => self.move_cursor(-10),
            Action::PageDown => self.move_cursor(10),
            Action::Home => self.move_cursor(isize::MIN / 2),
            Action::End => self.move_cursor(isize::MAX / 2),
            Action::Left | Action::Right if self.compare.focus == Focus::Neighbours => {
                let n = self.models().len().max(1);
                let c = &mut self.compare;
                c.model_cursor = if matches!(action, Action::Left) {
                    (c.model_cursor + n - 1) % n
                } else {
                    (c.model_cursor + 1) % n
                };
                let shown = self.hits(self.compare.model_cursor).len().min(self.shown_k());
                self.compare.rank_cursor = self.compare.rank_cursor.min(shown.saturating_sub(1));
                self.follow_zoom();
            }
            Action::Left | Action::Right => {}
            Action::ToggleFocus => {
                self.compare.focus = match self.compare.focus {
                    Focus::Queries => Focus::Neighbours,
                    Focus::Neighbours => Focus::Queries,
                };
            }
            Action::Select => self.select(),
            Action::Zoom => self.toggle_zoom(),
            Action::HistoryBack => self.history(true),
            Action::HistoryForward => self.history(false),
            Action::MoreNeighbours => self.compare.k = (self.compare.k + 1).min(MAX_K),
            Action::FewerNeighbours => self.compare.k = self.compare.k.saturating_sub(1).max(1),
            Action::CycleSort => self.cycle_sort(),
            Action::CyclePair(second) => self.cycle_pair(second),
            Action::ShowView(v) => {
                self.view = v;
                self.compare.zoom = None;
            }
            Action::OpenPrompt(PromptKind::Text) if !self.text_tower => {
                self.message = Some("no chosen model has a text tower; export one with `just export-hf clip-vit-b32`".into());
            }
            Action::OpenPrompt(k) => {
                let start = if k == PromptKind::Filter {
                    self.queries.filter.clone()
                } else {
                    String::new()
                };
                self.prompt = Some(Prompt::new(k, &start));
            }
            Action::Mouse(m) => return self.mouse(m),
            Action::Prompt(_)
            | Action::Engine(_)
            | Action::Thumb(..)
            | Action::Resize(_)
            | Action::Completions(_) => {}
        }
        Vec::new()
    }

    /// Esc: closes the innermost thing that is open.
    fn back_out(&mut self) {
        if self.help {
            self.help = false;
        } else if self.compare.zoom.is_some() {
            self.compare.zoom = None;
        } else if self.compare.outside.is_some() {
            self.compare.outside = None;
            self.message = None;
        } else if self.view != View::Compare {
            self.view = View::Compare;
        } else if self.compare.focus == Focus::Neighbours {
            self.compare.focus = Focus::Queries;
        } else if !self.queries.filter.is_empty() {
            let keep = self.query();
            self.queries.filter.clear();
            self.apply_filter();
            if let Some(q) = keep {
                self.select_query(q);
            }
        } else {
            self.message = None;
        }
    }

    fn toggle_zoom(&mut self) {
        self.compare.zoom = match (self.compare.zoom, self.compare.focus) {
            (Some(_), _) => None,
            (None, Focus::Neighbours) if self.focused_hit().is_some() => Some(Zoom::Neighbour {
                model: self.compare.model_cursor,
                rank: self.compare.rank_cursor,
            }),
            (None, _) => Some(Zoom::Query),
        };
        self.view = View::Compare;
    }

    fn cycle_sort(&mut self) {
        let n = self.models().len();
        self.queries.sort = match self.queries.sort {
            Sort::Name if n > 0 && self.report().is_some() => Sort::Ndcg(0),
            Sort::Ndcg(m) if m + 1 < n => Sort::Ndcg(m + 1),
            Sort::Ndcg(_) if n > 1 => Sort::Disagreement,
            _ => Sort::Name,
        };
        if self.report().is_none() {
            self.message = Some("sorting by nDCG needs the evaluation; it is still running".into());
        }
        let keep = self.query();
        let mut visible = std::mem::take(&mut self.queries.visible);
        self.sort_visible(&mut visible);
        self.queries.visible = visible;
        self.queries.cursor =
            keep.and_then(|q| self.queries.visible.iter().position(|&i| i == q)).unwrap_or(0);
    }

    fn cycle_pair(&mut self, second: bool) {
        let n = self.models().len();
        if n < 2 {
            self.message = Some("disagreement needs two models".into());
            return;
        }
        let (a, b) = &mut self.pair;
        let (slot, other) = if second { (b, *a) } else { (a, *b) };
        *slot = (*slot + 1) % n;
        if *slot == other {
            *slot = (*slot + 1) % n;
        }
        self.disagree_cursor = 0;
    }

    fn mouse(&mut self, m: Mouse) -> Vec<Effect> {
        let hit = layout::hit_test(self, m);
        match (m, hit) {
            (
                Mouse::ScrollUp { .. } | Mouse::ScrollDown { .. },
                Some(layout::Target::Queries(_)),
            ) => {
                self.compare.focus = Focus::Queries;
                self.move_cursor(if matches!(m, Mouse::ScrollUp { .. }) { -3 } else { 3 });
            }
            (Mouse::ScrollUp { .. }, _) => self.move_cursor(-1),
            (Mouse::ScrollDown { .. }, _) => self.move_cursor(1),
            (Mouse::Click { .. }, Some(layout::Target::Queries(row))) => {
                self.compare.focus = Focus::Queries;
                if row < self.queries.visible.len() {
                    let q = self.queries.visible[row];
                    self.select_query(q);
                }
            }
            (Mouse::Click { .. }, Some(layout::Target::Neighbour { model, rank })) => {
                self.compare.focus = Focus::Neighbours;
                self.compare.model_cursor = model;
                self.compare.rank_cursor = rank.min(self.hits(model).len().saturating_sub(1));
                self.follow_zoom();
            }
            (Mouse::Click { .. }, Some(layout::Target::Tab(v))) => self.view = v,
            (Mouse::Click { .. }, Some(layout::Target::Disagreement(row))) => {
                self.disagree_cursor = row.min(self.pair_deltas().len().saturating_sub(1));
                self.select();
            }
            (Mouse::Click { .. }, None) => {}
        }
        Vec::new()
    }

    /// While a prompt is open, keys edit it.
    #[allow(clippy::needless_pass_by_value)] // as for update_keys
    fn update_prompt(&mut self, action: Action) -> Vec<Effect> {
        let Some(p) = &mut self.prompt else { return Vec::new() };
        let kind = p.kind;
        match action {
            Action::Prompt(edit) => {
                if let Some(prefix) = p.edit(edit) {
                    return vec![Effect::Complete(prefix)];
                }
            }
            Action::Back => self.prompt = None,
            Action::Select => {
                let text = p.text().trim().to_owned();
                self.prompt = None;
                match kind {
                    PromptKind::ImagePath if !text.is_empty() => {
                        self.message = Some(format!("embedding {}", sanitize(&text)));
                        return vec![Effect::Engine(Request::Outside(Query::Image(text.into())))];
                    }
                    PromptKind::Text if !text.is_empty() => {
                        return vec![Effect::Engine(Request::Outside(Query::Text(text)))];
                    }
                    _ => {}
                }
            }
            Action::Quit => self.quit = true,
            _ => {}
        }
        if kind == PromptKind::Filter {
            if let Some(p) = &self.prompt {
                self.queries.filter = p.text();
            }
            self.apply_filter();
        }
        Vec::new()
    }

    fn select(&mut self) {
        match self.view {
            View::Disagree => {
                if let Some(&(q, _)) = self.pair_deltas().get(self.disagree_cursor) {
                    self.go_to(q);
                    self.view = View::Compare;
                }
            }
            View::Compare if self.compare.focus == Focus::Neighbours => {
                if let Some(h) = self.focused_hit() {
                    let id = h.id as usize;
                    self.go_to(id);
                    self.compare.focus = Focus::Queries;
                }
            }
            View::Compare => self.compare.focus = Focus::Neighbours,
            View::Metrics => {}
        }
    }

    fn on_engine(&mut self, e: EngineEvent) -> Vec<Effect> {
        match e {
            EngineEvent::Status(s) => {
                if let Phase::Loading { status, .. } = &mut self.phase {
                    *status = sanitize(&s);
                }
            }
            EngineEvent::Progress { model, done, total } => {
                self.phase = Phase::Loading {
                    status: format!("indexing {}: {done}/{total}", sanitize(&model)),
                    progress: Some((model, done, total)),
                };
            }
            EngineEvent::Ready { models, evaluated } => {
                let eval = if self.queries.items.iter().all(|i| i.captions.is_empty()) {
                    Eval::NoCaptions
                } else {
                    Eval::Running { stage: "starting".into(), done: 0.0 }
                };
                self.phase = Phase::Ready(Box::new(Loaded { models, evaluated, eval }));
            }
            EngineEvent::Neighbours { query, hits } => {
                self.neighbours.by_query.insert(query, hits);
            }
            EngineEvent::RelevanceReady => {
                // Ask again for what was answered without relevance.
                self.neighbours.with_relevance = true;
                self.neighbours.by_query.clear();
                self.neighbours.asked.clear();
            }
            EngineEvent::Evaluating { stage, done } => {
                if let Phase::Ready(l) = &mut self.phase {
                    l.eval = Eval::Running { stage, done };
                }
            }
            EngineEvent::Evaluated(Evaluated { report, ndcg }) => {
                if let Phase::Ready(l) = &mut self.phase {
                    l.eval = Eval::Done { report, ndcg };
                }
            }
            EngineEvent::Outside { query, hits } => {
                if let Query::Image(p) = &query {
                    let key = ThumbKey::Outside(p.clone());
                    self.thumbs.ready.retain(|(k, _), _| *k != key);
                    self.thumbs.asked.retain(|(k, _)| *k != key);
                }
                self.compare.outside = Some((query, hits));
                self.message = Some("neighbours of an outside query; Esc or a move leaves".into());
            }
            EngineEvent::EvalFailed(e) => {
                if let Phase::Ready(l) = &mut self.phase {
                    l.eval = Eval::Failed(sanitize(&e));
                }
            }
            EngineEvent::Error(e) => {
                let e = sanitize(&e);
                match &mut self.phase {
                    Phase::Loading { .. } => self.phase = Phase::Failed(e),
                    _ => self.message = Some(format!("error: {e}")),
                }
            }
        }
        Vec::new()
    }
}

fn step(cur: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    cur.saturating_add_signed(delta).min(len - 1)
}

#[cfg(test)]
mod tests;
