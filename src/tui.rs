//! TUI state: `App`, the `Action`s that change it and `App::update`. No I/O, no drawing:
//! `update` returns the `Effect`s to carry out (engine requests, thumbnails to encode);
//! `tui/ui.rs` draws `&App`; `tui/term.rs` owns the terminal and the loop.

pub mod bench;
pub mod event;
pub mod keys;
pub mod term;
pub mod thumbs;
pub mod ui;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use ratatui_image::protocol::Protocol;

pub use term::browse;

use crate::engine::search::Query;
use crate::engine::worker::{EngineEvent, Hit, ModelResult, OutsideHits, Request, NEIGHBOURS};
use crate::report::EvalReport;
use crate::text::sanitize;

/// Neighbours shown per model.
pub const TOP_K: usize = NEIGHBOURS;

/// A thumbnail: a dataset image or the outside query image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThumbKey {
    Image(u32),
    Outside(PathBuf),
}

/// What `update` asks the loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Engine(Request),
    Thumb(ThumbKey),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Filter,
    ImagePath,
    Text,
}

/// Things that happen to the UI: keys mapped to intents, engine events, thumbnails.
pub enum Action {
    Quit,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    ToggleFocus,
    Select,
    ShowView(View),
    OpenPrompt(PromptKind),
    PromptInput(char),
    PromptBackspace,
    PromptSubmit,
    PromptCancel,
    ToggleHelp,
    Engine(EngineEvent),
    Thumb(ThumbKey, Box<Protocol>),
}

/// One dataset image as the UI shows it (text already sanitised).
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub captions: Vec<String>,
    lower: String,
}

/// Where the engine is: still indexing and evaluating, done, or stopped by an error.
pub enum Phase {
    Loading { status: String, progress: Option<(String, usize, usize)> },
    Ready { models: Vec<ModelResult>, report: Box<EvalReport>, disagree: Vec<(usize, f64)> },
    Failed(String),
}

/// The query list: every item, the filter and what it keeps, the selection.
pub struct Queries {
    pub items: Vec<Item>,
    pub filter: String,
    pub visible: Vec<usize>,
    pub cursor: usize,
}

/// The compare view: which pane has focus, which neighbour, and an outside query if open.
pub struct Compare {
    pub focus: Focus,
    pub model_cursor: usize,
    pub rank_cursor: usize,
    pub outside: Option<(Query, OutsideHits)>,
}

/// Thumbnails encoded so far and those asked for.
#[derive(Default)]
pub struct Thumbs {
    pub ready: HashMap<ThumbKey, Protocol>,
    requested: HashSet<ThumbKey>,
}

/// The whole UI state.
#[allow(clippy::struct_excessive_bools)] // independent on/off switches, not a state machine
pub struct App {
    pub dataset: String,
    pub model_names: Vec<String>,
    pub phase: Phase,
    /// A transient message for the status bar (an outside query, an error).
    pub message: Option<String>,
    pub view: View,
    pub queries: Queries,
    pub compare: Compare,
    pub disagree_cursor: usize,
    pub prompt: Option<(PromptKind, String)>,
    pub thumbs: Thumbs,
    pub help: bool,
    pub quit: bool,
    pub text_tower: bool,
    /// False under NO_COLOR: relevance is then shown by numbers alone.
    pub color: bool,
}

impl App {
    /// A new app over `items` (name, captions), before the engine has reported anything.
    pub fn new(
        dataset: &str,
        items: Vec<(String, Vec<String>)>,
        model_names: Vec<String>,
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
        Self {
            dataset: sanitize(dataset),
            model_names,
            phase: Phase::Loading { status: "starting".into(), progress: None },
            message: None,
            view: View::Compare,
            queries: Queries { items, filter: String::new(), visible, cursor: 0 },
            compare: Compare {
                focus: Focus::Queries,
                model_cursor: 0,
                rank_cursor: 0,
                outside: None,
            },
            disagree_cursor: 0,
            prompt: None,
            thumbs: Thumbs::default(),
            help: false,
            quit: false,
            text_tower: false,
            color,
        }
    }

    /// The models' results, once the engine is ready.
    pub fn models(&self) -> &[ModelResult] {
        match &self.phase {
            Phase::Ready { models, .. } => models,
            _ => &[],
        }
    }

    /// The evaluation report, once the engine is ready.
    pub fn report(&self) -> Option<&EvalReport> {
        match &self.phase {
            Phase::Ready { report, .. } => Some(report),
            _ => None,
        }
    }

    /// Queries ordered by disagreement (largest nDCG gap first), once ready.
    pub fn disagree(&self) -> &[(usize, f64)] {
        match &self.phase {
            Phase::Ready { disagree, .. } => disagree,
            _ => &[],
        }
    }

    /// The status bar's text.
    pub fn status(&self) -> String {
        if let Some(m) = &self.message {
            return m.clone();
        }
        match &self.phase {
            Phase::Loading { status, .. } => status.clone(),
            Phase::Ready { .. } => "ready".into(),
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
    /// query's.
    pub fn hits(&self, m: usize) -> &[Hit] {
        if let Some((_, ext)) = &self.compare.outside {
            return ext.get(m).map_or(&[], |(_, h)| h.as_slice());
        }
        match (self.models().get(m), self.query()) {
            (Some(r), Some(q)) => r.hits.get(q).map_or(&[], Vec::as_slice),
            _ => &[],
        }
    }

    /// The focused neighbour, when the neighbour pane has focus.
    pub fn focused_hit(&self) -> Option<&Hit> {
        (self.compare.focus == Focus::Neighbours)
            .then(|| self.hits(self.compare.model_cursor).get(self.compare.rank_cursor))
            .flatten()
    }

    fn apply_filter(&mut self) {
        let q = &mut self.queries;
        let words: Vec<String> =
            q.filter.to_lowercase().split_whitespace().map(str::to_owned).collect();
        q.visible = (0..q.items.len())
            .filter(|&i| {
                words.iter().all(|w| {
                    q.items[i].lower.contains(w.as_str()) || q.items[i].name.contains(w.as_str())
                })
            })
            .collect();
        q.cursor = 0;
    }

    /// Thumbnails the current screen needs that were not asked for yet.
    pub fn wanted_thumbs(&mut self) -> Vec<Effect> {
        let mut keys = Vec::new();
        if let Some((Query::Image(p), _)) = &self.compare.outside {
            keys.push(ThumbKey::Outside(p.clone()));
        } else if let (None, Some(q)) = (&self.compare.outside, self.query()) {
            keys.push(ThumbKey::Image(q as u32));
        }
        for m in 0..self.models().len() {
            keys.extend(self.hits(m).iter().take(TOP_K).map(|h| ThumbKey::Image(h.id)));
        }
        keys.into_iter()
            .filter(|k| self.thumbs.requested.insert(k.clone()))
            .map(Effect::Thumb)
            .collect()
    }

    fn move_cursor(&mut self, delta: isize) {
        match (self.view, self.compare.focus) {
            (View::Disagree, _) => {
                self.disagree_cursor = step(self.disagree_cursor, delta, self.disagree().len());
            }
            (_, Focus::Queries) => {
                self.queries.cursor = step(self.queries.cursor, delta, self.queries.visible.len());
                self.compare.outside = None;
                self.message = None;
                self.compare.rank_cursor = 0;
            }
            (_, Focus::Neighbours) => {
                let n = self.hits(self.compare.model_cursor).len().min(TOP_K);
                self.compare.rank_cursor = step(self.compare.rank_cursor, delta, n);
            }
        }
    }

    /// Folds one action into the state; returns what the loop should do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        if self.prompt.is_some() {
            return self.update_prompt(action);
        }
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::PageUp => self.move_cursor(-10),
            Action::PageDown => self.move_cursor(10),
            Action::Left | Action::Right if self.compare.focus == Focus::Neighbours => {
                let n = self.models().len().max(1);
                let c = &mut self.compare;
                c.model_cursor = if matches!(action, Action::Left) {
                    (c.model_cursor + n - 1) % n
                } else {
                    (c.model_cursor + 1) % n
                };
                let shown = self.hits(self.compare.model_cursor).len().min(TOP_K);
                self.compare.rank_cursor = self.compare.rank_cursor.min(shown.saturating_sub(1));
            }
            Action::Left | Action::Right => {}
            Action::ToggleFocus => {
                self.compare.focus = match self.compare.focus {
                    Focus::Queries => Focus::Neighbours,
                    Focus::Neighbours => Focus::Queries,
                };
            }
            Action::Select => self.select(),
            Action::ShowView(v) => self.view = v,
            Action::OpenPrompt(PromptKind::Text) if !self.text_tower => {
                self.message = Some("no chosen model has a text tower; export one with `just export-hf clip-vit-b32`".into());
            }
            Action::OpenPrompt(k) => {
                let start = if k == PromptKind::Filter {
                    self.queries.filter.clone()
                } else {
                    String::new()
                };
                self.prompt = Some((k, start));
            }
            Action::Engine(e) => return self.on_engine(e),
            Action::Thumb(key, p) => {
                self.thumbs.ready.insert(key, *p);
            }
            Action::PromptInput(_)
            | Action::PromptBackspace
            | Action::PromptSubmit
            | Action::PromptCancel => {}
        }
        if self.view == View::Compare {
            return self.wanted_thumbs();
        }
        Vec::new()
    }

    /// While a prompt is open, keys edit it; engine events and thumbnails still arrive.
    fn update_prompt(&mut self, action: Action) -> Vec<Effect> {
        let Some((kind, input)) = &mut self.prompt else { return Vec::new() };
        let kind = *kind;
        match action {
            Action::PromptInput(c) => input.push(c),
            Action::PromptBackspace => {
                input.pop();
            }
            Action::PromptCancel => self.prompt = None,
            Action::PromptSubmit => {
                let text = input.trim().to_owned();
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
            Action::Engine(e) => return self.on_engine(e),
            Action::Thumb(key, p) => {
                self.thumbs.ready.insert(key, *p);
                return Vec::new();
            }
            _ => {}
        }
        if kind == PromptKind::Filter {
            if let Some((_, input)) = &self.prompt {
                self.queries.filter.clone_from(input);
            }
            self.apply_filter();
        }
        self.wanted_thumbs()
    }

    fn select(&mut self) {
        match self.view {
            View::Disagree => {
                if let Some(&(q, _)) = self.disagree().get(self.disagree_cursor) {
                    self.jump_to(q);
                    self.view = View::Compare;
                }
            }
            View::Compare if self.compare.focus == Focus::Neighbours => {
                if let Some(h) = self.focused_hit() {
                    let id = h.id as usize;
                    self.jump_to(id);
                    self.compare.focus = Focus::Queries;
                }
            }
            _ => {}
        }
    }

    fn jump_to(&mut self, q: usize) {
        if !self.queries.visible.contains(&q) {
            self.queries.filter.clear();
            self.apply_filter();
        }
        self.queries.cursor = self.queries.visible.iter().position(|&i| i == q).unwrap_or(0);
        self.compare.outside = None;
        self.compare.rank_cursor = 0;
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
            EngineEvent::Ready { models, report } => {
                let disagree = disagreement(&models);
                self.phase = Phase::Ready { models, report, disagree };
                return self.wanted_thumbs();
            }
            EngineEvent::Outside { query, hits } => {
                if let Query::Image(p) = &query {
                    let key = ThumbKey::Outside(p.clone());
                    self.thumbs.ready.remove(&key);
                    self.thumbs.requested.remove(&key);
                }
                self.compare.outside = Some((query, hits));
                self.message =
                    Some("showing neighbours of an outside query; move the cursor to leave".into());
                return self.wanted_thumbs();
            }
            EngineEvent::Error(e) => {
                let e = sanitize(&e);
                if matches!(self.phase, Phase::Loading { .. }) {
                    self.phase = Phase::Failed(e);
                } else {
                    self.message = Some(format!("error: {e}"));
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

/// Queries ordered by how much the models disagree: the largest gap in nDCG between any two.
pub fn disagreement(models: &[ModelResult]) -> Vec<(usize, f64)> {
    let n = models.first().map_or(0, |m| m.ndcg.len());
    let mut v: Vec<(usize, f64)> = (0..n)
        .map(|q| {
            let vals = models.iter().map(|m| m.ndcg[q]);
            let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
            (q, if models.len() < 2 { 0.0 } else { hi - lo })
        })
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample_app() -> App {
        let items = vec![
            (
                "dog.jpg".to_owned(),
                vec!["A brown dog runs on grass .".to_owned(), "A dog plays .".to_owned()],
            ),
            ("snow.jpg".to_owned(), vec!["A man skis down a snowy hill .".to_owned()]),
            (
                "evil.jpg".to_owned(),
                vec!["A cat \u{1b}]52;c;cHduZWQ=\u{7}sleeps \u{1b}[2J.".to_owned()],
            ),
        ];
        let mut app = App::new("fixture", items, vec!["m1".into(), "m2".into()], true);
        let hits = |a: u32, b: u32| {
            vec![
                Hit { id: a, score: 0.9, rel: Some(0.5) },
                Hit { id: b, score: 0.5, rel: Some(0.0) },
            ]
        };
        let models = vec![
            ModelResult {
                name: "m1".into(),
                device: "cpu".into(),
                hits: vec![hits(1, 2), hits(0, 2), hits(0, 1)],
                ndcg: vec![0.9, 0.5, 0.2],
            },
            ModelResult {
                name: "m2".into(),
                device: "cpu".into(),
                hits: vec![hits(2, 1), hits(2, 0), hits(1, 0)],
                ndcg: vec![0.1, 0.5, 0.3],
            },
        ];
        app.update(Action::Engine(EngineEvent::Ready {
            models,
            report: Box::new(crate::report::tests::report(0.5)),
        }));
        app
    }

    #[test]
    fn captions_lose_their_escape_sequences() {
        let app = sample_app();
        assert_eq!(app.queries.items[2].captions[0], "A cat sleeps .");
    }

    #[test]
    fn filter_keeps_matching_queries_and_resets_the_cursor() {
        let mut app = sample_app();
        app.update(Action::Down);
        app.update(Action::OpenPrompt(PromptKind::Filter));
        for c in "snow".chars() {
            app.update(Action::PromptInput(c));
        }
        assert_eq!(app.queries.visible, vec![1]);
        assert_eq!(app.queries.cursor, 0);
        app.update(Action::PromptSubmit);
        assert_eq!(app.queries.filter, "snow");
        assert!(app.prompt.is_none());
    }

    #[test]
    fn disagreement_puts_the_biggest_ndcg_gap_first() {
        let app = sample_app();
        assert_eq!(app.disagree()[0].0, 0);
        assert!((app.disagree()[0].1 - 0.8).abs() < 1e-12);
        assert_eq!(app.disagree().iter().map(|d| d.0).collect::<Vec<_>>(), [0, 2, 1]);
    }

    #[test]
    fn enter_on_a_neighbour_makes_it_the_query() {
        let mut app = sample_app();
        app.update(Action::ToggleFocus);
        app.update(Action::Right); // model m2
        app.update(Action::Select); // its first hit is image 2
        assert_eq!(app.query(), Some(2));
        assert_eq!(app.compare.focus, Focus::Queries);
    }

    #[test]
    fn text_queries_go_to_the_engine_only_with_a_text_tower() {
        let mut app = sample_app();
        assert!(app.update(Action::OpenPrompt(PromptKind::Text)).is_empty());
        assert!(app.prompt.is_none() && app.status().contains("no chosen model has a text tower"));
        app.text_tower = true;
        app.update(Action::OpenPrompt(PromptKind::Text));
        for c in "a dog".chars() {
            app.update(Action::PromptInput(c));
        }
        assert_eq!(
            app.update(Action::PromptSubmit),
            vec![Effect::Engine(Request::Outside(Query::Text("a dog".into())))]
        );
    }

    #[test]
    fn thumbnails_are_requested_once() {
        let mut app = sample_app();
        // Ready asked for query 0 and its neighbours 1 and 2 (both models): every image once.
        assert_eq!(app.thumbs.requested.len(), 3);
        assert!(app.wanted_thumbs().is_empty());
        // Query 1's thumbnail and its neighbours' were asked for already: nothing new.
        assert!(app.update(Action::Down).is_empty());
        // An outside query image needs its own thumbnail, once.
        let q = Query::Image("q.jpg".into());
        let ext = EngineEvent::Outside { query: q, hits: vec![] };
        assert_eq!(
            app.update(Action::Engine(ext)),
            vec![Effect::Thumb(ThumbKey::Outside("q.jpg".into()))]
        );
        assert!(app.wanted_thumbs().is_empty());
    }

    #[test]
    fn an_engine_error_while_loading_is_the_phase_and_later_only_a_message() {
        let mut app = App::new("d", vec![], vec!["m".into()], false);
        app.update(Action::Engine(EngineEvent::Error("boom".into())));
        assert!(matches!(app.phase, Phase::Failed(_)) && app.status() == "error: boom");
        let mut app = sample_app();
        app.update(Action::Engine(EngineEvent::Error("late".into())));
        assert!(matches!(app.phase, Phase::Ready { .. }) && app.status() == "error: late");
    }
}
