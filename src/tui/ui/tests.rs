//! Snapshots of every view at 80×24, 120×40 and 200×60 (insta), on the fixture of
//! `tui/tests.rs`.

use ratatui::backend::TestBackend;
use ratatui::layout::Size;
use ratatui::Terminal;

use super::*;
use crate::tui::tests::sample_app;
use crate::tui::Action;

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

fn draw(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(app.size.width, app.size.height)).unwrap();
    t.draw(|f| render(app, f)).unwrap();
    format!("{}", t.backend())
}

fn each_size(name: &str, prepare: impl Fn(&mut App)) {
    for (w, h) in SIZES {
        let mut app = sample_app(Size::new(w, h));
        prepare(&mut app);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(&app));
    }
}

#[test]
fn compare_view() {
    each_size("compare", |_| {});
}

#[test]
fn focused_neighbour_shows_its_captions_without_escape_sequences() {
    each_size("focused", |a| {
        a.update(Action::ToggleFocus);
        a.update(Action::Right);
    });
}

#[test]
fn zoom_view() {
    each_size("zoom", |a| {
        a.update(Action::ToggleFocus);
        a.update(Action::Zoom);
    });
}

#[test]
fn metrics_view() {
    each_size("metrics", |a| {
        a.update(Action::ShowView(View::Metrics));
    });
}

#[test]
fn disagreement_view() {
    each_size("disagree", |a| {
        a.update(Action::ShowView(View::Disagree));
    });
}

#[test]
fn help_overlay() {
    each_size("help", |a| {
        a.update(Action::ToggleHelp);
    });
}

#[test]
fn loading_screen() {
    for (w, h) in SIZES {
        let mut app = App::new(
            "d",
            vec![("a.jpg".into(), vec!["a dog".into()])],
            &["m1".into(), "m2".into()],
            false,
        );
        app.update(Action::Resize(Size::new(w, h)));
        app.update(Action::Engine(crate::engine::worker::EngineEvent::Progress {
            model: "m1".into(),
            done: 3,
            total: 10,
        }));
        insta::assert_snapshot!(format!("loading_{w}x{h}"), draw(&app));
    }
}

#[test]
fn relevance_and_per_query_scores_stay_visible_at_80x24() {
    let app = sample_app(Size::new(80, 24));
    let s = draw(&app);
    assert!(s.contains("r0.50") || s.contains("rel 0.50"), "{s}");
    assert!(
        s.contains("lite0 0.90") && s.contains("dinov2 0.10"),
        "each model's score on the query: {s}"
    );
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (w, h) in [(1, 1), (10, 3), (20, 8), (40, 12)] {
        let mut app = sample_app(Size::new(w, h));
        draw(&app);
        app.update(Action::Zoom);
        draw(&app);
        app.update(Action::ShowView(View::Disagree));
        draw(&app);
    }
}

#[test]
fn rgb_maps_to_the_nearest_xterm_colour() {
    assert_eq!(nearest_256(0, 0, 0), 16);
    assert_eq!(nearest_256(255, 0, 0), 196);
    assert_eq!(nearest_256(128, 128, 128), 244);
    assert_eq!(nearest_256(255, 255, 255), 231);
}
