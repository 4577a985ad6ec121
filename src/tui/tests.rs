//! `App::update` on a small fixture: no terminal, no engine.

use super::*;
use crate::engine::worker::Hit;

pub(crate) fn hits(ids: &[u32]) -> Vec<Hit> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| Hit {
            id,
            score: 0.9 - 0.1 * i as f32,
            rel: Some(if i == 0 { 0.5 } else { 0.05 }),
        })
        .collect()
}

/// Three photos, two models, evaluated; query 0's neighbours received.
pub(crate) fn sample_app(size: Size) -> App {
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
    let mut app = App::new(
        "fixture",
        items,
        &["efficientnet-lite0".into(), "dinov2-s14-imgfocus".into()],
        false,
    );
    app.update(Action::Resize(size));
    let models = app
        .model_names
        .iter()
        .map(|n| ModelInfo { name: n.clone(), device: "cpu".into() })
        .collect();
    app.update(Action::Engine(EngineEvent::Ready { models, evaluated: vec![true; 3] }));
    app.update(Action::Engine(EngineEvent::RelevanceReady));
    for q in 0..3u32 {
        let others: Vec<u32> = (0..3).filter(|&d| d != q).collect();
        let rev: Vec<u32> = others.iter().rev().copied().collect();
        app.update(Action::Engine(EngineEvent::Neighbours {
            query: q as usize,
            hits: vec![hits(&others), hits(&rev)],
        }));
    }
    let report = Box::new(crate::report::tests::report(0.5));
    let ndcg = vec![vec![0.9, 0.5, 0.2], vec![0.1, 0.5, 0.3]];
    app.update(Action::Engine(EngineEvent::Evaluated(Evaluated { report, ndcg })));
    app
}

fn app() -> App {
    sample_app(Size::new(120, 40))
}

#[test]
fn captions_lose_their_escape_sequences() {
    assert_eq!(app().queries.items[2].captions[0], "A cat sleeps .");
}

#[test]
fn filter_keeps_matching_queries_and_esc_clears_it() {
    let mut a = app();
    a.update(Action::Down);
    a.update(Action::OpenPrompt(PromptKind::Filter));
    for c in "snow".chars() {
        a.update(Action::Prompt(prompt::Edit::Insert(c)));
    }
    assert_eq!(a.queries.visible, vec![1]);
    a.update(Action::Select);
    assert_eq!(a.queries.filter, "snow");
    assert!(a.prompt.is_none());
    a.update(Action::Back);
    assert_eq!((a.queries.filter.as_str(), a.queries.visible.len(), a.query()), ("", 3, Some(1)));
}

#[test]
fn disagreement_of_the_pair_puts_the_largest_difference_first_and_says_who_won() {
    let a = app();
    // ndcg lite0 [0.9, 0.5, 0.2] − dinov2 [0.1, 0.5, 0.3] = [+0.8, 0, −0.1]
    let d = a.pair_deltas();
    assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 2, 1]);
    assert!((d[0].1 - 0.8).abs() < 1e-12 && (d[1].1 + 0.1).abs() < 1e-12);
}

#[test]
fn enter_on_a_neighbour_opens_it_and_backspace_returns() {
    let mut a = app();
    a.update(Action::ToggleFocus);
    a.update(Action::Right); // model 2, whose first hit of query 0 is image 2
    a.update(Action::Select);
    assert_eq!((a.query(), a.compare.focus), (Some(2), Focus::Queries));
    a.update(Action::HistoryBack);
    assert_eq!(a.query(), Some(0));
    a.update(Action::HistoryForward);
    assert_eq!(a.query(), Some(2));
}

#[test]
fn esc_backs_out_one_level_at_a_time_and_q_quits() {
    let mut a = app();
    a.update(Action::ToggleHelp);
    a.update(Action::Zoom);
    a.update(Action::ShowView(View::Metrics));
    a.update(Action::Back); // help
    assert!(!a.help && a.view == View::Metrics);
    a.update(Action::Back); // view
    assert_eq!(a.view, View::Compare);
    assert!(!a.quit);
    a.update(Action::Quit);
    assert!(a.quit);
}

#[test]
fn zoom_follows_the_focused_neighbour() {
    let mut a = app();
    a.update(Action::ToggleFocus);
    a.update(Action::Down);
    a.update(Action::Zoom);
    assert_eq!(a.compare.zoom, Some(Zoom::Neighbour { model: 0, rank: 1 }));
    assert_eq!(a.zoomed_key(), Some(ThumbKey::Image(2)));
    a.update(Action::Up);
    assert_eq!(a.zoomed_key(), Some(ThumbKey::Image(1)));
}

#[test]
fn k_changes_with_plus_and_minus_within_bounds() {
    let mut a = app();
    for _ in 0..100 {
        a.update(Action::MoreNeighbours);
    }
    assert_eq!(a.compare.k, MAX_K);
    for _ in 0..100 {
        a.update(Action::FewerNeighbours);
    }
    assert_eq!(a.compare.k, 1);
}

#[test]
fn sorting_by_a_models_ndcg_puts_its_worst_query_first() {
    let mut a = app();
    a.update(Action::CycleSort); // by lite0's nDCG: 0.2 (q2), 0.5 (q1), 0.9 (q0)
    assert_eq!(a.queries.visible, [2, 1, 0]);
    a.update(Action::CycleSort); // by dinov2's: 0.1 (q0), 0.3 (q2), 0.5 (q1)
    assert_eq!(a.queries.visible, [0, 2, 1]);
}

#[test]
fn text_queries_go_to_the_engine_only_with_a_text_tower() {
    let mut a = app();
    assert!(!a
        .update(Action::OpenPrompt(PromptKind::Text))
        .iter()
        .any(|e| matches!(e, Effect::Engine(_))));
    assert!(a.prompt.is_none() && a.status().contains("no chosen model has a text tower"));
    a.text_tower = true;
    a.update(Action::OpenPrompt(PromptKind::Text));
    for c in "a dog".chars() {
        a.update(Action::Prompt(prompt::Edit::Insert(c)));
    }
    let out = a.update(Action::Select);
    assert!(
        out.contains(&Effect::Engine(Request::Outside(Query::Text("a dog".into())))),
        "{out:?}"
    );
}

#[test]
fn neighbours_and_thumbnails_are_asked_for_once() {
    let mut a = App::new(
        "d",
        vec![("a".into(), vec!["x".into()]), ("b".into(), vec!["y".into()])],
        &["m".into()],
        false,
    );
    a.update(Action::Resize(Size::new(120, 40)));
    let ready = EngineEvent::Ready {
        models: vec![ModelInfo { name: "m".into(), device: "cpu".into() }],
        evaluated: vec![true; 2],
    };
    let first = a.update(Action::Engine(ready));
    assert!(first.contains(&Effect::Engine(Request::Neighbours(0))), "{first:?}");
    assert!(!a.update(Action::Up).iter().any(|e| matches!(e, Effect::Engine(_))), "asked once");
    let n = a.update(Action::Engine(EngineEvent::Neighbours { query: 0, hits: vec![hits(&[1])] }));
    assert!(n.iter().any(|e| matches!(e, Effect::Thumb(ThumbKey::Image(1), _))), "{n:?}");
    assert!(a.wanted().is_empty());
    // Relevance arrives: the answers without it are asked for again.
    let again = a.update(Action::Engine(EngineEvent::RelevanceReady));
    assert!(again.contains(&Effect::Engine(Request::Neighbours(0))));
}

#[test]
fn an_outside_image_gets_its_own_thumbnail_and_esc_leaves_it() {
    let mut a = app();
    let q = Query::Image("q.jpg".into());
    let out = a.update(Action::Engine(EngineEvent::Outside { query: q, hits: vec![] }));
    assert!(out.iter().any(|e| matches!(e, Effect::Thumb(ThumbKey::Outside(_), _))), "{out:?}");
    a.update(Action::Back);
    assert!(a.compare.outside.is_none());
}

#[test]
fn mouse_clicks_select_queries_and_neighbours() {
    let mut a = app();
    // The query list starts at row 2 (tab bar, border); row 3 is the second query.
    a.update(Action::Mouse(Mouse::Click { column: 5, row: 3 }));
    assert_eq!(a.query(), Some(1));
    let areas = layout::areas(a.size, 2);
    let col = layout::inner(areas.columns[1]);
    let r = layout::rows(col, a.compare.k)[0];
    a.update(Action::Mouse(Mouse::Click { column: r.thumb.x, row: r.thumb.y }));
    assert_eq!(
        (a.compare.focus, a.compare.model_cursor, a.compare.rank_cursor),
        (Focus::Neighbours, 1, 0)
    );
    a.update(Action::Mouse(Mouse::Click { column: 1, row: 0 }));
    a.update(Action::Mouse(Mouse::ScrollDown { column: 5, row: 3 }));
    assert_eq!(a.query(), Some(2), "the wheel scrolls the list");
}

#[test]
fn an_engine_error_while_loading_is_the_phase_and_later_only_a_message() {
    let mut a = App::new("d", vec![], &["m".into()], false);
    a.update(Action::Engine(EngineEvent::Error("boom".into())));
    assert!(matches!(a.phase, Phase::Failed(_)) && a.status() == "error: boom");
    let mut a = app();
    a.update(Action::Engine(EngineEvent::Error("late".into())));
    assert!(matches!(a.phase, Phase::Ready(_)) && a.status() == "error: late");
    a.update(Action::Down);
    assert_eq!(a.status(), "ready", "a move clears a stale message");
}

#[test]
fn a_folder_without_captions_is_browsable_without_metrics() {
    let mut a = App::new(
        "d",
        vec![("a.jpg".into(), vec![]), ("b.jpg".into(), vec![])],
        &["m".into()],
        false,
    );
    let models = vec![ModelInfo { name: "m".into(), device: "cpu".into() }];
    a.update(Action::Engine(EngineEvent::Ready { models, evaluated: vec![true; 2] }));
    assert!(a.status().contains("no captions"));
    a.update(Action::Engine(EngineEvent::Neighbours {
        query: 0,
        hits: vec![vec![Hit { id: 1, score: 0.7, rel: None }]],
    }));
    assert_eq!(a.hits(0).len(), 1);
}
