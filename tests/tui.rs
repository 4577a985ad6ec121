//! End to end: the real binary in a real terminal (tmux), keys sent, screens read back.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str) -> Option<Self> {
        tmux()?;
        let _ = Command::new("tmux").args(["kill-session", "-t", name]).output();
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", "150", "-y", "48", cmd])
            .status()
            .unwrap();
        assert!(st.success());
        let _ =
            Command::new("tmux").args(["set-option", "-t", name, "set-clipboard", "on"]).status();
        let _ =
            Command::new("tmux").args(["set-option", "-t", name, "remain-on-exit", "on"]).status();
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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).output();
    }
}

#[test]
fn browse_steps_through_queries_views_and_quits_cleanly() {
    let data = require!(shared_data());
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("embtui");
    let cmd = format!(
        "{} browse --device cpu --image-protocol halfblocks --limit 80 --model efficientnet-lite0,open-nsfw --store {} --dataset {}",
        bin.display(),
        store.path().display(),
        data.join("flickr8k-1k").display()
    );
    let t = require!(Tmux::start("embtui-e2e", &cmd));
    t.wait_for(" ready ", 180);
    // Thumbnails arrive from their own thread just after the results.
    let s = t.wait_until("half-block thumbnails", 30, |s| s.contains('▀') || s.contains('▄'));
    eprintln!("{s}");
    assert!(s.contains("> 1000268201_693b08cb0e.jpg"), "first query selected");
    assert!(s.contains("A child in a pink dress is climbing up a set of stairs"), "its captions");
    assert!(
        s.contains("efficientnet-lite0 · nDCG@10") && s.contains("open-nsfw · nDCG@10"),
        "one column per model"
    );
    assert!(s.contains("1. 0.") && s.contains("rel 0."), "scores and relevance");
    assert!(s.contains('▀') || s.contains('▄'), "half-block thumbnails drawn inside the layout");
    t.keys(&["j"]);
    t.wait_for("> 1001773457_577c3a7d70.jpg", 10);
    t.keys(&["Tab", "Down"]);
    // The pane's title is always there; its captions appear once a neighbour has focus.
    let s = t.wait_for(" · captions:", 10);
    assert!(s.contains("focused neighbour"), "{s}");
    t.keys(&["2"]);
    let s = t.wait_for("oracle", 10);
    eprintln!("{s}");
    assert!(s.contains("random") && s.contains("95% bootstrap CIs") && s.contains("ndcg@10"));
    t.keys(&["3"]);
    let s = t.wait_for("disagree most", 10);
    assert!(s.contains("gap 0."), "{s}");
    t.keys(&["?"]);
    t.wait_for("this help", 10);
    t.keys(&["?", "1", "/", "d", "o", "g", "Enter"]);
    let s = t.wait_for("matching \"dog\"", 10);
    assert!(s.contains("dog"), "{s}");
    // Query by any image file: its neighbours replace the query's.
    let outside = data.join("coco-val2017-159/val2017/000000000139.jpg");
    t.keys(&["o"]);
    t.wait_for("image file:", 10);
    t.keys(&["-l", outside.to_str().unwrap()]);
    t.keys(&["Enter"]);
    let s = t.wait_for("outside the dataset", 60);
    assert!(s.contains("000000000139.jpg") && s.contains("1. 0."), "{s}");
    t.keys(&["q"]);
    let start = Instant::now();
    while !t.pane_dead() {
        assert!(start.elapsed() < Duration::from_secs(10), "q did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn captions_with_escape_sequences_cannot_act_on_the_terminal() {
    require!(models_ready());
    let store = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("embtui");
    let cmd = format!(
        "{} browse --device cpu --image-protocol halfblocks --model efficientnet-lite0 --store {} --dataset {}",
        bin.display(),
        store.path().display(),
        root().join("fixtures/flickr30k-bad").display()
    );
    let t = require!(Tmux::start("embtui-e2e-evil", &cmd));
    t.wait_for(" ready ", 120);
    t.keys(&["j"]);
    // b.png's caption carries an OSC 52 clipboard write; it must show as plain text.
    let s = t.wait_for("A green square", 10);
    assert!(s.contains("A green square  in grass ."), "{s}");
    assert!(!s.contains("52;c"), "{s}");
    let buffers = Command::new("tmux").args(["list-buffers"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&buffers.stdout).trim().is_empty(),
        "OSC 52 reached tmux's clipboard"
    );
    t.keys(&["q"]);
}
