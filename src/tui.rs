//! TUI state: `App`, the `Action`s that change it and `App::update`. No I/O, no drawing:
//! `update` returns the `Request`s the engine should serve; `tui/ui.rs` draws `&App`.

pub mod event;
pub mod keys;
pub mod ui;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use ratatui_image::protocol::Protocol;

use crate::report::EvalReport;
use crate::text::sanitize;

/// Neighbours shown per model.
pub const TOP_K: usize = 5;

/// One neighbour of a query: dataset id, cosine score, caption relevance to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: u32,
    pub score: f32,
    pub rel: Option<f32>,
}

/// Everything the engine computed for one model.
#[derive(Debug, Clone)]
pub struct ModelResult {
    pub name: String,
    pub device: String,
    /// Top neighbours of every query (dataset id order).
    pub hits: Vec<Vec<Hit>>,
    /// nDCG@10 of every query.
    pub ndcg10: Vec<f64>,
}

/// What the engine reports back to the UI.
pub enum EngineEvent {
    Status(String),
    Progress { model: String, done: usize, total: usize },
    Ready { models: Vec<ModelResult>, report: Box<EvalReport> },
    Thumb { id: ThumbKey, protocol: Box<Protocol> },
    External { label: String, hits: Vec<(String, Vec<Hit>)> },
    Error(String),
}

/// Per model (name), its hits for an outside query.
pub type ExternalHits = Vec<(String, Vec<Hit>)>;

/// What the UI asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Thumb(ThumbKey),
    QueryImage(PathBuf),
    QueryText(String),
}

/// A thumbnail: a dataset image or the external query image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThumbKey {
    Image(u32),
    External,
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

/// Things that happen to the UI: keys mapped to intents, engine events, resizes.
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
}

/// One dataset image as the UI shows it (text already sanitised).
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub captions: Vec<String>,
    lower: String,
}

/// The whole UI state.
pub struct App {
    pub dataset: String,
    pub items: Vec<Item>,
    pub model_names: Vec<String>,
    pub models: Vec<ModelResult>,
    pub report: Option<EvalReport>,
    pub status: String,
    pub progress: Option<(String, usize, usize)>,
    pub view: View,
    pub focus: Focus,
    pub filter: String,
    pub visible: Vec<usize>,
    pub cursor: usize,
    pub model_cursor: usize,
    pub rank_cursor: usize,
    pub disagree: Vec<(usize, f64)>,
    pub disagree_cursor: usize,
    pub prompt: Option<(PromptKind, String)>,
    pub external: Option<(String, ExternalHits)>,
    pub thumbs: HashMap<ThumbKey, Protocol>,
    pub requested: HashSet<ThumbKey>,
    pub help: bool,
    pub quit: bool,
    pub text_tower: bool,
    /// False under NO_COLOR: relevance is then shown by numbers alone.
    pub color: bool,
}

impl App {
    /// A new app over `items` (name, captions), before the engine has reported anything.
    pub fn new(dataset: &str, items: Vec<(String, Vec<String>)>, model_names: Vec<String>) -> Self {
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
            items,
            model_names,
            models: Vec::new(),
            report: None,
            status: "starting".into(),
            progress: None,
            view: View::Compare,
            focus: Focus::Queries,
            filter: String::new(),
            visible,
            cursor: 0,
            model_cursor: 0,
            rank_cursor: 0,
            disagree: Vec::new(),
            disagree_cursor: 0,
            prompt: None,
            external: None,
            thumbs: HashMap::new(),
            requested: HashSet::new(),
            help: false,
            quit: false,
            text_tower: false,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// The dataset id of the selected query, if any.
    pub fn query(&self) -> Option<usize> {
        self.visible.get(self.cursor).copied()
    }

    /// The hits shown for model `m`: the external query's if one is open, else the selected
    /// query's.
    pub fn hits(&self, m: usize) -> &[Hit] {
        if let Some((_, ext)) = &self.external {
            return ext.get(m).map_or(&[], |(_, h)| h.as_slice());
        }
        match (self.models.get(m), self.query()) {
            (Some(r), Some(q)) => r.hits.get(q).map_or(&[], Vec::as_slice),
            _ => &[],
        }
    }

    /// The focused neighbour, when the neighbour pane has focus.
    pub fn focused_hit(&self) -> Option<&Hit> {
        (self.focus == Focus::Neighbours)
            .then(|| self.hits(self.model_cursor).get(self.rank_cursor))
            .flatten()
    }

    fn apply_filter(&mut self) {
        let words: Vec<String> =
            self.filter.to_lowercase().split_whitespace().map(str::to_owned).collect();
        self.visible = (0..self.items.len())
            .filter(|&i| {
                words.iter().all(|w| {
                    self.items[i].lower.contains(w.as_str())
                        || self.items[i].name.contains(w.as_str())
                })
            })
            .collect();
        self.cursor = 0;
    }

    /// Thumbnails the current screen needs that were not asked for yet.
    pub fn wanted_thumbs(&mut self) -> Vec<Request> {
        let mut keys = Vec::new();
        if self.external.is_some() {
            keys.push(ThumbKey::External);
        } else if let Some(q) = self.query() {
            keys.push(ThumbKey::Image(q as u32));
        }
        for m in 0..self.models.len() {
            keys.extend(self.hits(m).iter().take(TOP_K).map(|h| ThumbKey::Image(h.id)));
        }
        keys.into_iter().filter(|k| self.requested.insert(*k)).map(Request::Thumb).collect()
    }

    fn move_cursor(&mut self, delta: isize) {
        match (self.view, self.focus) {
            (View::Disagree, _) => {
                self.disagree_cursor = step(self.disagree_cursor, delta, self.disagree.len());
            }
            (_, Focus::Queries) => {
                self.cursor = step(self.cursor, delta, self.visible.len());
                self.external = None;
                self.rank_cursor = 0;
            }
            (_, Focus::Neighbours) => {
                let n = self.hits(self.model_cursor).len().min(TOP_K);
                self.rank_cursor = step(self.rank_cursor, delta, n);
            }
        }
    }

    /// Folds one action into the state; returns what the engine should do.
    pub fn update(&mut self, action: Action) -> Vec<Request> {
        if let Some((kind, input)) = &mut self.prompt {
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
                        PromptKind::Filter => {}
                        PromptKind::ImagePath if !text.is_empty() => {
                            self.status = format!("embedding {}", sanitize(&text));
                            return vec![Request::QueryImage(PathBuf::from(text))];
                        }
                        PromptKind::Text if !text.is_empty() => {
                            return vec![Request::QueryText(text)]
                        }
                        _ => {}
                    }
                }
                Action::Engine(e) => return self.on_engine(e),
                _ => {}
            }
            if kind == PromptKind::Filter {
                if let Some((_, input)) = &self.prompt {
                    self.filter = input.clone();
                }
                self.apply_filter();
            }
            return self.wanted_thumbs();
        }
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::PageUp => self.move_cursor(-10),
            Action::PageDown => self.move_cursor(10),
            Action::Left | Action::Right if self.focus == Focus::Neighbours => {
                let n = self.models.len().max(1);
                self.model_cursor = if matches!(action, Action::Left) {
                    (self.model_cursor + n - 1) % n
                } else {
                    (self.model_cursor + 1) % n
                };
                self.rank_cursor = self
                    .rank_cursor
                    .min(self.hits(self.model_cursor).len().min(TOP_K).saturating_sub(1));
            }
            Action::Left | Action::Right => {}
            Action::ToggleFocus => {
                self.focus =
                    if self.focus == Focus::Queries { Focus::Neighbours } else { Focus::Queries };
            }
            Action::Select => self.select(),
            Action::ShowView(v) => self.view = v,
            Action::OpenPrompt(PromptKind::Text) if !self.text_tower => {
                self.status = "no chosen model has a text tower; export one with `just export-hf clip-vit-b32`".into();
            }
            Action::OpenPrompt(k) => {
                let start =
                    if k == PromptKind::Filter { self.filter.clone() } else { String::new() };
                self.prompt = Some((k, start));
            }
            Action::Engine(e) => return self.on_engine(e),
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

    fn select(&mut self) {
        match self.view {
            View::Disagree => {
                if let Some(&(q, _)) = self.disagree.get(self.disagree_cursor) {
                    self.jump_to(q);
                    self.view = View::Compare;
                }
            }
            View::Compare if self.focus == Focus::Neighbours => {
                if let Some(h) = self.focused_hit() {
                    let id = h.id as usize;
                    self.jump_to(id);
                    self.focus = Focus::Queries;
                }
            }
            _ => {}
        }
    }

    fn jump_to(&mut self, q: usize) {
        if !self.visible.contains(&q) {
            self.filter.clear();
            self.apply_filter();
        }
        self.cursor = self.visible.iter().position(|&i| i == q).unwrap_or(0);
        self.external = None;
        self.rank_cursor = 0;
    }

    fn on_engine(&mut self, e: EngineEvent) -> Vec<Request> {
        match e {
            EngineEvent::Status(s) => self.status = sanitize(&s),
            EngineEvent::Progress { model, done, total } => {
                self.status = format!("indexing {model}: {done}/{total}");
                self.progress = Some((model, done, total));
            }
            EngineEvent::Ready { models, report } => {
                self.disagree = disagreement(&models);
                self.models = models;
                self.report = Some(*report);
                self.progress = None;
                self.status = "ready".into();
                return self.wanted_thumbs();
            }
            EngineEvent::Thumb { id, protocol } => {
                self.thumbs.insert(id, *protocol);
            }
            EngineEvent::External { label, hits } => {
                self.thumbs.remove(&ThumbKey::External);
                self.requested.remove(&ThumbKey::External);
                self.external = Some((sanitize(&label), hits));
                self.status =
                    "showing neighbours of an outside query; move the cursor to leave".into();
                return self.wanted_thumbs();
            }
            EngineEvent::Error(e) => self.status = format!("error: {}", sanitize(&e)),
        }
        Vec::new()
    }
}

fn step(cur: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (cur as isize + delta).clamp(0, len as isize - 1) as usize
}

/// Queries ordered by how much the models disagree: the largest gap in nDCG@10 between any two.
pub fn disagreement(models: &[ModelResult]) -> Vec<(usize, f64)> {
    let n = models.first().map_or(0, |m| m.ndcg10.len());
    let mut v: Vec<(usize, f64)> = (0..n)
        .map(|q| {
            let vals = models.iter().map(|m| m.ndcg10[q]);
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
        let mut app = App::new("fixture", items, vec!["m1".into(), "m2".into()]);
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
                ndcg10: vec![0.9, 0.5, 0.2],
            },
            ModelResult {
                name: "m2".into(),
                device: "cpu".into(),
                hits: vec![hits(2, 1), hits(2, 0), hits(1, 0)],
                ndcg10: vec![0.1, 0.5, 0.3],
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
        assert_eq!(app.items[2].captions[0], "A cat sleeps .");
    }

    #[test]
    fn filter_keeps_matching_queries_and_resets_the_cursor() {
        let mut app = sample_app();
        app.update(Action::Down);
        app.update(Action::OpenPrompt(PromptKind::Filter));
        for c in "snow".chars() {
            app.update(Action::PromptInput(c));
        }
        assert_eq!(app.visible, vec![1]);
        assert_eq!(app.cursor, 0);
        app.update(Action::PromptSubmit);
        assert_eq!(app.filter, "snow");
        assert!(app.prompt.is_none());
    }

    #[test]
    fn disagreement_puts_the_biggest_ndcg_gap_first() {
        let app = sample_app();
        assert_eq!(app.disagree[0].0, 0);
        assert!((app.disagree[0].1 - 0.8).abs() < 1e-12);
        assert_eq!(app.disagree.iter().map(|d| d.0).collect::<Vec<_>>(), [0, 2, 1]);
    }

    #[test]
    fn enter_on_a_neighbour_makes_it_the_query() {
        let mut app = sample_app();
        app.update(Action::ToggleFocus);
        app.update(Action::Right); // model m2
        app.update(Action::Select); // its first hit is image 2
        assert_eq!(app.query(), Some(2));
        assert_eq!(app.focus, Focus::Queries);
    }

    #[test]
    fn text_queries_go_to_the_engine_only_with_a_text_tower() {
        let mut app = sample_app();
        assert!(app.update(Action::OpenPrompt(PromptKind::Text)).is_empty());
        assert!(app.prompt.is_none() && app.status.contains("no chosen model has a text tower"));
        app.text_tower = true;
        app.update(Action::OpenPrompt(PromptKind::Text));
        for c in "a dog".chars() {
            app.update(Action::PromptInput(c));
        }
        assert_eq!(app.update(Action::PromptSubmit), vec![Request::QueryText("a dog".into())]);
    }

    #[test]
    fn thumbnails_are_requested_once() {
        let mut app = sample_app();
        // Ready asked for query 0 and its neighbours 1 and 2 (both models): every image once.
        assert_eq!(app.requested.len(), 3);
        assert!(app.wanted_thumbs().is_empty());
        // Query 1's thumbnail and its neighbours' were asked for already: nothing new.
        assert!(app.update(Action::Down).is_empty());
        // An outside query needs its own thumbnail, once.
        let ext = EngineEvent::External { label: "q.jpg".into(), hits: vec![] };
        assert_eq!(app.update(Action::Engine(ext)), vec![Request::Thumb(ThumbKey::External)]);
        assert!(app.wanted_thumbs().is_empty());
    }
}
