//! End to end: the real binary in a real terminal (tmux), keys and mouse sent, screens read
//! back. Every wait is for something the program shows (the deadlines only turn a hang into a
//! failure with the screen printed).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str, size: (u16, u16)) -> Option<Self> {
        tmux()?;
        // `=name`: exactly this session (a bare `-t name` also matches sessions whose names
        // start with it, and would kill another test's terminal).
        let _ = Command::new("tmux").args(["kill-session", "-t", &format!("={name}")]).output();
        let (w, h) = (size.0.to_string(), size.1.to_string());
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", &w, "-y", &h, cmd])
            .status()
            .unwrap();
        assert!(st.success());
        for opt in [["set-clipboard", "on"], ["remain-on-exit", "on"], ["window-size", "manual"]] {
            let _ = Command::new("tmux").args(["set-option", "-t", name, opt[0], opt[1]]).status();
        }
        Some(Self { name: name.to_owned() })
    }

    fn screen(&self) -> String {
        let out =
            Command::new("tmux").args(["capture-pane", "-p", "-t", &self.name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    /// A mouse press and release at a 0-based cell, as an SGR-reporting terminal sends them.
    fn click(&self, column: u16, row: u16) {
        for end in ['M', 'm'] {
            let seq = format!("\x1b[<0;{};{}{end}", column + 1, row + 1);
            let hex: Vec<String> = seq.bytes().map(|b| format!("{b:02x}")).collect();
            let mut args = vec!["send-keys", "-t", &self.name, "-H"];
            args.extend(hex.iter().map(String::as_str));
            assert!(Command::new("tmux").args(&args).status().unwrap().success());
        }
    }

    fn resize(&self, w: u16, h: u16) {
        let st = Command::new("tmux")
            .args(["resize-window", "-t", &self.name, "-x", &w.to_string(), "-y", &h.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits until the screen contains `text` (or panics with the screen after `secs`).
    fn wait_for(&self, text: &str, secs: u64) -> String {
        self.wait_until(text, secs, |s| s.contains(text))
    }

    /// Waits until `done(screen)` holds (or panics with the screen after `secs`).
    fn wait_until(&self, what: &str, secs: u64, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "waited {secs} s for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pane_dead(&self) -> bool {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, "#{pane_dead}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn quit(&self) {
        self.keys(&["q"]);
        let start = Instant::now();
        while !self.pane_dead() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "q did not quit:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ =
            Command::new("tmux").args(["kill-session", "-t", &format!("={}", self.name)]).output();
    }
}

fn browse_cmd(store: &std::path::Path, dataset: &std::path::Path, extra: &str) -> String {
    let bin = assert_cmd::cargo::cargo_bin("embtui");
    format!(
        "{} browse --device cpu --image-protocol halfblocks {extra} --store {} --dataset {}",
        bin.display(),
        store.display(),
        dataset.display()
    )
}

fn has_half_blocks(s: &str) -> bool {
    s.contains('▀') || s.contains('▄')
}

#[test]
fn browse_steps_through_queries_views_and_quits_cleanly() {
    let data = require!(shared_data());
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let cmd = browse_cmd(
        store.path(),
        &data.join("flickr8k-1k"),
        "--limit 80 --model efficientnet-lite0,open-nsfw",
    );
    let t = require!(Tmux::start("embtui-e2e-browse", &cmd, (150, 48)));
    t.wait_for(" ready ", 180);
    // Neighbours and their thumbnails arrive from the workers just after.
    let s = t.wait_until("neighbours with half-block thumbnails", 30, |s| {
        s.contains("rel 0.") && has_half_blocks(s)
    });
    eprintln!("{s}");
    assert!(s.contains("> 1000268201_693b08cb0e.jpg"), "first query selected");
    assert!(s.contains("A child in a pink dress is climbing up a set of stairs"), "its captions");
    assert!(
        s.contains("efficientnet-lite0 0.") && s.contains("open-nsfw 0."),
        "a column per model with its nDCG"
    );
    assert!(s.contains("nDCG@10: "), "every model's score on the query");
    t.keys(&["j"]);
    t.wait_for("> 1001773457_577c3a7d70.jpg", 10);
    t.keys(&["Tab", "Down"]);
    // Tab focuses #1 at once; wait for what Down leads to, not for what Tab already shows.
    let s = t.wait_for("efficientnet-lite0 #2", 10);
    assert!(s.contains("focused neighbour") && s.contains("cosine 0."), "{s}");
    t.keys(&["2"]);
    let s = t.wait_for("oracle", 10);
    assert!(
        s.contains("random") && s.contains("95% bootstrap CIs") && s.contains("ndcg@10"),
        "{s}"
    );
    t.keys(&["3"]);
    let s = t.wait_for("largest gap first", 10);
    assert!(s.contains("Δ +0.") || s.contains("Δ -0."), "{s}");
    t.keys(&["?"]);
    let s = t.wait_for("nDCG@k: graded gain", 10);
    assert!(s.contains("green: rel ≥ τ"), "the help has a colour legend: {s}");
    // Esc closes one thing at a time; each is sent alone (an Esc followed at once by another
    // key reads as Alt+key, as in every terminal).
    t.keys(&["Escape"]);
    t.wait_until("help closed", 10, |s| !s.contains("nDCG@k: graded gain"));
    t.keys(&["Escape"]);
    t.wait_for("focused neighbour", 10);
    t.keys(&["/", "d", "o", "g", "Enter"]);
    let s = t.wait_for("\"dog\"", 10);
    assert!(s.contains("dog"), "{s}");
    // Query by any image file: its neighbours replace the query's.
    let outside = data.join("coco-val2017-159/val2017/000000000139.jpg");
    t.keys(&["o"]);
    t.wait_for("image file", 10);
    t.keys(&["-l", outside.to_str().unwrap()]);
    t.keys(&["Enter"]);
    let s = t.wait_for("outside the dataset", 60);
    assert!(s.contains("000000000139.jpg") && s.contains("1. 0."), "{s}");
    t.keys(&["Escape"]);
    t.wait_until("the outside query closed", 10, |s| !s.contains("outside the dataset"));
    t.quit();
}

#[test]
fn zoom_history_mouse_and_resize_work_in_a_real_terminal() {
    let data = require!(shared_data());
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let cmd = browse_cmd(
        store.path(),
        &data.join("flickr8k-1k"),
        "--limit 60 --model efficientnet-lite0",
    );
    let t = require!(Tmux::start("embtui-e2e-nav", &cmd, (120, 40)));
    t.wait_until("neighbours", 180, |s| s.contains(" ready ") && s.contains("rel 0."));
    // Zoom the query, then close it with Esc.
    t.keys(&["z"]);
    let s = t.wait_for("zoom · z or Esc closes", 10);
    assert!(s.contains("A child in a pink dress"), "the zoom shows every caption: {s}");
    t.wait_until("the zoomed photo", 30, has_half_blocks);
    t.keys(&["Escape"]);
    t.wait_until("zoom closed", 10, |s| !s.contains("zoom · z or Esc closes"));
    // Enter on the first neighbour makes it the query; Backspace comes back.
    // Wait for the new selection, not for the old one to go: tmux may capture a frame half
    // written, with the old row redrawn and the new one not yet.
    t.keys(&["Tab", "Enter"]);
    t.wait_until("another query selected", 10, |s| {
        !s.contains("> 1000268201_693b08cb0e.jpg") && s.lines().any(|l| l.starts_with("│> "))
    });
    t.keys(&["BSpace"]);
    t.wait_for("> 1000268201_693b08cb0e.jpg", 10);
    // End and Home.
    t.keys(&["G"]);
    t.wait_until("the last query selected", 10, |s| {
        !s.contains("> 1000268201_693b08cb0e.jpg") && s.lines().any(|l| l.starts_with("│> "))
    });
    t.keys(&["g"]);
    t.wait_for("> 1000268201_693b08cb0e.jpg", 10);
    // A click on the third row of the query list selects it (row 0: tabs, 1: border).
    t.click(4, 4);
    let third =
        t.wait_until("a click selects", 10, |s| s.lines().nth(4).is_some_and(|l| l.contains("> ")));
    assert!(!third.contains("> 1000268201_693b08cb0e.jpg"), "{third}");
    // Resize while running: the layout follows and thumbnails are made anew at their size.
    t.resize(200, 60);
    let big = t.wait_until("the wider layout", 20, |s| {
        s.lines().nth(1).is_some_and(|l| l.chars().count() >= 190) && s.contains(" ready ")
    });
    assert!(big.contains(" ready "), "{big}");
    t.resize(80, 24);
    let small = t.wait_until("the 80-column layout", 20, |s| {
        s.lines().nth(1).is_some_and(|l| l.chars().count() == 80)
    });
    assert!(
        small.contains("rel") || small.contains(" r0."),
        "relevance stays visible at 80×24: {small}"
    );
    t.quit();
}

#[test]
fn a_folder_of_photos_without_captions_can_be_browsed() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let names = flickr_photos(&data);
    for p in names.iter().take(12) {
        std::os::unix::fs::symlink(p, photos.join(p.file_name().unwrap())).unwrap();
    }
    let cmd = browse_cmd(&tmp.path().join("store"), &photos, "--model efficientnet-lite0");
    let t = require!(Tmux::start("embtui-e2e-folder", &cmd, (120, 40)));
    let s = t.wait_for("no captions", 120);
    let s = if s.contains("1. 0.") { s } else { t.wait_for("1. 0.", 30) };
    assert!(s.contains("(12 images)"), "symlinked photos are read: {s}");
    assert!(s.contains("rel –") || s.contains("r –"), "no relevance without captions: {s}");
    t.keys(&["2"]);
    t.wait_for("metrics need captions", 10);
    t.quit();
}

#[test]
fn captions_with_escape_sequences_cannot_act_on_the_terminal() {
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let cmd = browse_cmd(
        store.path(),
        &root().join("fixtures/flickr30k-bad"),
        "--model efficientnet-lite0",
    );
    let t = require!(Tmux::start("embtui-e2e-evil", &cmd, (150, 48)));
    t.wait_for(" ready ", 120);
    t.keys(&["j"]);
    // b.png's caption carries an OSC 52 clipboard write; it must show as plain text.
    let s = t.wait_for("A green square  in grass .", 10);
    assert!(!s.contains("52;c"), "{s}");
    let buffers = Command::new("tmux").args(["list-buffers"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&buffers.stdout).trim().is_empty(),
        "OSC 52 reached tmux's clipboard"
    );
    t.quit();
}

/// `search --show` in a real 80×24 terminal: the query and its hits as one labelled grid that
/// fits the screen (the query's label is still on screen when the command has finished).
#[test]
fn search_show_draws_a_labelled_grid_that_fits_one_screen() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let query = ds.join("Images/1000268201_693b08cb0e.jpg");
    let bin = assert_cmd::cargo::cargo_bin("embtui");
    let cmd = format!(
        "{} search {} --show -k 5 --device cpu --model efficientnet-lite0 --store {} --dataset {} --limit 100; echo SEARCH-DONE",
        bin.display(),
        query.display(),
        tmp.path().display(),
        ds.display()
    );
    let t = require!(Tmux::start("embtui-search-grid", &cmd, (80, 24)));
    let s = t.wait_for("SEARCH-DONE", 300);
    // Labels are cut to the tile width (26 columns here: 3 tiles a row, 2 rows).
    assert!(s.contains("query 1000268201_"), "the query is labelled and still on screen: {s}");
    // The photo itself is its own nearest neighbour, at cosine 1.
    assert!(s.contains("1. 1.000 1000268201_"), "{s}");
    assert!(s.contains("5. 0."), "the 5th hit is on the same screen: {s}");
    assert!(has_half_blocks(&s), "thumbnails drawn: {s}");
}

/// `browse --queries N`: the metrics view scores the sample and says so; every image can still
/// be browsed.
#[test]
fn browse_scores_a_sample_of_queries_and_says_so() {
    let data = require!(shared_data());
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let cmd = browse_cmd(
        store.path(),
        &data.join("flickr8k-1k"),
        "--limit 60 --queries 20 --seed 1 --model efficientnet-lite0",
    );
    let t = require!(Tmux::start("embtui-e2e-sample", &cmd, (150, 48)));
    t.wait_for(" ready ", 180);
    t.keys(&["2"]);
    let s = t.wait_for("20 queries (seed 1) of 60", 60);
    assert!(s.contains("oracle") && s.contains("random"), "{s}");
    // The last of the 60 is not among the 20 drawn: browsable, its score marked as missing.
    t.keys(&["1", "G"]);
    t.wait_for("> 1077546505_a4f6c4daa9.jpg", 10);
    t.wait_for("not among the sampled queries", 10);
    t.quit();
}
