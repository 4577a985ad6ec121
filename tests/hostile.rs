//! Hostile input, as a user's messy data and scripts bring it: every input is made by the test
//! itself, and each test states what embtui must do with it (exit code, message, memory).
//! Each prints a `HOSTILE |` line (input, exit, message, peak RSS, time) for the record.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;

/// Runs embtui under the project's Python to read the child's peak RSS (getrusage of the only
/// child). Returns (exit code, stderr, peak RSS in MB, seconds).
fn measured(args: &[&std::ffi::OsStr]) -> (i32, String, f64, f64) {
    let py = root().join(".venv/bin/python");
    let script = "import resource,subprocess,sys\nr=subprocess.run(sys.argv[1:],capture_output=True)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nprint(r.returncode)\nsys.stderr.buffer.write(r.stderr)";
    let t = Instant::now();
    let out = Command::new(py)
        .args(["-c", script])
        .arg(assert_cmd::cargo::cargo_bin("embtui"))
        .args(args)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("EMBTUI_STORE")
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let kb: f64 = lines.next().unwrap().parse().unwrap();
    let code: i32 = lines.next().unwrap().parse().unwrap();
    (code, String::from_utf8_lossy(&out.stderr).into_owned(), kb / 1024.0, secs)
}

fn record(input: &str, code: Option<i32>, message: &str, rss_mb: Option<f64>, secs: f64) {
    let rss = rss_mb.map_or("-".into(), |m| format!("{m:.0} MB"));
    let code = code.map_or("-".into(), |c| c.to_string());
    let msg: String = message.lines().last().unwrap_or("").chars().take(140).collect();
    eprintln!("HOSTILE | {input} | exit {code} | {msg} | {rss} | {secs:.2} s");
}

/// A `side × side` grey PNG of zeros, written row by row (~300 KB for 16384²).
fn grey_png(path: &Path, side: u32) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut e = png::Encoder::new(f, side, side);
    e.set_color(png::ColorType::Grayscale);
    e.set_depth(png::BitDepth::Eight);
    e.set_compression(png::Compression::High);
    let mut w = e.write_header().unwrap();
    let mut s = w.stream_writer().unwrap();
    let row = vec![0u8; side as usize];
    for _ in 0..side {
        s.write_all(&row).unwrap();
    }
    s.finish().unwrap();
}

/// A real photo's bytes with its frame header claiming `w × h`.
fn jpeg_claiming(src: &Path, w: u16, h: u16) -> Vec<u8> {
    let mut b = std::fs::read(src).unwrap();
    let at = (0..b.len() - 9).find(|&i| b[i] == 0xFF && matches!(b[i + 1], 0xC0 | 0xC2)).unwrap();
    b[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
    b[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    b
}

fn photo(data: &Path, i: usize) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("flickr8k-1k/Images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v[i].clone()
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn decompression_bombs_are_refused_and_memory_stays_bounded_with_16_threads() {
    let data = require!(shared_data());
    require!(models_ready());
    require!(python());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bombs");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..4 {
        grey_png(&dir.join(format!("png-bomb-{i}.png")), 16384); // 268 MP: refused
        std::fs::write(
            dir.join(format!("jpeg-bomb-{i}.jpg")),
            jpeg_claiming(&photo(&data, i), 16000, 16000),
        )
        .unwrap();
        grey_png(&dir.join(format!("big-{i}.png")), 12000); // 144 MP: decoded, within budget
    }
    for i in 0..4 {
        std::fs::copy(photo(&data, i), dir.join(format!("photo-{i}.jpg"))).unwrap();
    }
    let store = tmp.path().join("store");
    let (code, err, rss, secs) = measured(&[
        os("index"),
        os("--device"),
        os("cpu"),
        os("--threads"),
        os("16"),
        os("--model"),
        os("efficientnet-lite0"),
        os("--store"),
        store.as_os_str(),
        os("--dataset"),
        dir.as_os_str(),
    ]);
    record("4 × 16384² grey PNG (300 KB), 4 × JPEG claiming 16000², 4 × 12000² PNG, 4 photos, --threads 16", Some(code), &err, Some(rss), secs);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("16384×16384 is 268 megapixels, above the limit of 179"), "{err}");
    assert!(err.contains("16000×16000 is 256 megapixels"), "{err}");
    assert!(err.contains("decoding a 12000×12000 image (144 megapixels"), "{err}");
    assert!(err.contains("8 embedded") && err.contains("8 skipped"), "{err}");
    assert!(err.contains("--threads 16 capped at"), "{err}");
    assert!(rss < 1536.0, "peak RSS {rss:.0} MB");
}

#[test]
fn cut_jpegs_and_headers_that_claim_too_much_are_skipped_unless_accepted() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cut");
    std::fs::create_dir(&dir).unwrap();
    let whole = std::fs::read(photo(&data, 0)).unwrap();
    std::fs::write(dir.join("cut-3000.jpg"), &whole[..3000]).unwrap();
    std::fs::write(dir.join("cut-30000.jpg"), &whole[..30000]).unwrap();
    std::fs::write(dir.join("tall.jpg"), jpeg_claiming(&photo(&data, 1), 500, 1500)).unwrap();
    std::fs::copy(photo(&data, 2), dir.join("whole.jpg")).unwrap();
    let run = |extra: &[&str]| {
        let t = Instant::now();
        let out = embtui()
            .args(["index", "--device", "cpu", "--model", "efficientnet-lite0", "--store"])
            .arg(tmp.path().join(format!("s{}", extra.len())))
            .arg("--dataset")
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), stderr(&out), t.elapsed().as_secs_f64())
    };
    let (code, err, secs) = run(&[]);
    record(
        "JPEG cut at 3,000 / 30,000 bytes, JPEG header claiming 3× its rows",
        code,
        &err,
        None,
        secs,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("skipped cut-3000.jpg: image file is truncated"), "{err}");
    assert!(err.contains("skipped cut-30000.jpg: image file is truncated"), "{err}");
    assert!(
        err.contains("skipped tall.jpg: image file is truncated (its data ends near row"),
        "{err}"
    );
    assert!(err.contains("1 embedded") && err.contains("3 skipped"), "{err}");
    let (code, err, _) = run(&["--accept-truncated"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("4 embedded") && err.contains("truncated, embedded anyway"), "{err}");
}

#[test]
fn devices_fifos_and_huge_files_are_never_read_whole_and_nothing_hangs() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    let fifo = tmp.path().join("q.jpg");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (label, query) in
        [("/dev/zero as the query", PathBuf::from("/dev/zero")), ("a FIFO as the query", fifo)]
    {
        let t = Instant::now();
        let out = embtui()
            .args([
                "search",
                "--device",
                "cpu",
                "--limit",
                "10",
                "--model",
                "efficientnet-lite0",
                "--store",
            ])
            .arg(tmp.path().join("s"))
            .arg("--dataset")
            .arg(&ds)
            .arg(&query)
            .output()
            .unwrap();
        let err = fails_with(&out, 2, "not a regular file");
        record(label, out.status.code(), &err, None, t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let out = embtui()
        .args([
            "eval",
            "--device",
            "cpu",
            "--limit",
            "10",
            "--model",
            "efficientnet-lite0",
            "--check",
            "/dev/zero",
            "--store",
        ])
        .arg(tmp.path().join("s"))
        .arg("--dataset")
        .arg(&ds)
        .output()
        .unwrap();
    let err = fails_with(&out, 2, "/dev/zero");
    assert!(err.contains("is a character device, not a regular file"), "{err}");
    record("--check /dev/zero", out.status.code(), &err, None, t.elapsed().as_secs_f64());
    // A 3 GB file named like a photo (sparse: no disk used) beside real ones.
    let dir = tmp.path().join("huge");
    std::fs::create_dir(&dir).unwrap();
    std::fs::File::create(dir.join("x.jpg")).unwrap().set_len(3 << 30).unwrap();
    for i in 0..3 {
        std::fs::copy(photo(&data, i), dir.join(format!("{i}.jpg"))).unwrap();
    }
    let (code, err, rss, secs) = measured(&[
        os("index"),
        os("--device"),
        os("cpu"),
        os("--model"),
        os("efficientnet-lite0"),
        os("--store"),
        tmp.path().join("s2").as_os_str(),
        os("--dataset"),
        dir.as_os_str(),
    ]);
    record("3 GB sparse file named x.jpg among 3 photos", Some(code), &err, Some(rss), secs);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "skipped x.jpg: is 3221225472 bytes, above the 268435456-byte limit for an image"
        ),
        "{err}"
    );
    assert!(rss < 600.0, "the 3 GB file was never read: {rss:.0} MB");
}

#[test]
fn a_folder_of_nothing_but_broken_images_is_an_error_not_success() {
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("junk");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..3 {
        std::fs::write(dir.join(format!("{i}.jpg")), b"this is not a jpeg").unwrap();
    }
    let out = embtui()
        .args(["index", "--device", "cpu", "--model", "efficientnet-lite0", "--store"])
        .arg(tmp.path().join("s"))
        .arg("--dataset")
        .arg(&dir)
        .output()
        .unwrap();
    let err = fails_with(&out, 2, "no image of");
    assert!(err.contains("could be embedded by efficientnet-lite0 (3 skipped"), "{err}");
    record("a folder of 3 files named .jpg that are text", out.status.code(), &err, None, 0.0);
}

#[test]
fn file_names_that_could_shift_rows_are_refused_and_reported() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("names");
    std::fs::create_dir(&dir).unwrap();
    let names: [&[u8]; 4] = [b"a.jpg", b"new\nline.jpg", b"esc\x1b[31m.jpg", b"\xff\xfe.jpg"];
    for (i, n) in names.iter().enumerate() {
        std::fs::copy(photo(&data, i), dir.join(std::ffi::OsStr::from_bytes(n))).unwrap();
    }
    let npy = tmp.path().join("e.npy");
    let out = embtui()
        .args(["export", "--device", "cpu", "--model", "efficientnet-lite0", "--out"])
        .arg(&npy)
        .arg("--store")
        .arg(tmp.path().join("store"))
        .arg("--dataset")
        .arg(&dir)
        .output()
        .unwrap();
    let err = stderr(&out);
    record(
        "export of a folder with names holding a newline, an escape, invalid UTF-8",
        out.status.code(),
        &err,
        None,
        0.0,
    );
    assert!(out.status.success(), "{err}");
    assert!(err.contains(r#"file name "new\nline.jpg" contains control characters"#), "{err}");
    assert!(err.contains(r#"file name "esc\u{1b}[31m.jpg" contains control characters"#), "{err}");
    assert!(err.contains("is not UTF-8"), "{err}");
    assert!(!err.contains('\u{1b}'), "no escape reaches the terminal");
    let ids = std::fs::read_to_string(npy.with_extension("ids.txt")).unwrap();
    assert_eq!(ids, "a.jpg\n", "every row names its image");
    assert!(err.contains("1 images →") && err.contains("(1×1280"), "{err}");
}

/// A report of `models` on `dataset` with `extra` flags, written to `path`.
fn baseline(ds: &Path, store: &Path, path: &Path, extra: &[&str]) {
    embtui()
        .args([
            "eval",
            "--device",
            "cpu",
            "--bootstrap",
            "100",
            "--model",
            "efficientnet-lite0",
            "--json",
            "--out",
        ])
        .arg(path)
        .arg("--store")
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .args(extra)
        .assert()
        .success();
}

#[test]
fn checks_against_incomparable_baselines_are_refused() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let (ds, store) = (data.join("flickr8k-1k"), tmp.path().join("s"));
    let other = tmp.path().join("other.json");
    baseline(&ds, &store, &other, &["--limit", "40"]);
    let jaccard = tmp.path().join("jaccard.json");
    baseline(&ds, &store, &jaccard, &["--limit", "50", "--relevance", "jaccard"]);
    let empty = tmp.path().join("empty.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&other).unwrap()).unwrap();
    v["models"] = serde_json::json!([]);
    std::fs::write(&empty, v.to_string()).unwrap();
    // A baseline of the same selection and settings, and the same without `relevance.semantic`
    // (as reports before centring were): the first compares, the second is refused.
    let same = tmp.path().join("same.json");
    baseline(&ds, &store, &same, &["--limit", "50"]);
    let uncentred = tmp.path().join("uncentred.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&same).unwrap()).unwrap();
    assert!(v["relevance"]["semantic"].as_str().unwrap().contains("centred"), "{}", v["relevance"]);
    v["relevance"].as_object_mut().unwrap().remove("semantic");
    std::fs::write(&uncentred, v.to_string()).unwrap();
    let check = |b: &Path, extra: &[&str]| {
        embtui()
            .args([
                "eval",
                "--device",
                "cpu",
                "--limit",
                "50",
                "--model",
                "efficientnet-lite0",
                "--check",
            ])
            .arg(b)
            .arg("--store")
            .arg(&store)
            .arg("--dataset")
            .arg(&ds)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = check(&other, &[]);
    let err = fails_with(&out, 2, "it was made on another selection of images (40 images");
    record("--check against a baseline of another selection", out.status.code(), &err, None, 0.0);
    let out = check(&jaccard, &[]);
    fails_with(&out, 2, "it used relevance jaccard τ=0.3 (now hybrid τ=0.46)");
    let out = check(&same, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = check(&uncentred, &[]);
    fails_with(
        &out,
        2,
        "its hybrid relevance was computed differently (uncentred MiniLM caption means; now",
    );
    let out = check(&jaccard, &["--relevance", "jaccard", "--k", "5"]);
    fails_with(&out, 2, "it used --k [1, 5, 10] (now [5])");
    let out = check(&empty, &[]);
    fails_with(&out, 2, "the baseline holds no models");
    for bad in [
        ["--tolerance", "-1"],
        ["--threshold", "2"],
        ["--threshold", "NaN"],
        ["--bootstrap", "0"],
        ["--batch", "0"],
    ] {
        let out = check(&other, &bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

#[test]
fn unusable_paths_are_named_with_what_they_are_before_any_work() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let ds = data.join("flickr8k-1k");
    // --dataset pointing at a file.
    let out =
        embtui().args(["dataset", "--dataset"]).arg(ds.join("captions.txt")).output().unwrap();
    fails_with(&out, 2, "captions.txt is not a folder");
    // --out unwritable: refused at once, before any embedding.
    let t = Instant::now();
    let out = embtui()
        .args([
            "eval",
            "--device",
            "cpu",
            "--model",
            "efficientnet-lite0",
            "--out",
            "/nonexistent/dir/r.json",
            "--store",
        ])
        .arg(tmp.path().join("s"))
        .arg("--dataset")
        .arg(&ds)
        .output()
        .unwrap();
    let err = fails_with(&out, 2, "--out /nonexistent/dir/r.json cannot be written");
    assert!(!err.contains("embedded"), "{err}");
    record(
        "eval --out in a folder that does not exist",
        out.status.code(),
        &err,
        None,
        t.elapsed().as_secs_f64(),
    );
    // A caption file that is binary, one that is not UTF-8, names of folders and FIFOs.
    let d = tmp.path().join("f8k");
    copy_files(&ds.join("Images"), &d.join("Images"));
    std::fs::write(d.join("captions.txt"), b"\x89PNG\r\n\x1a\n\0\0\0IHDR").unwrap();
    let out = embtui().args(["dataset", "--dataset"]).arg(&d).output().unwrap();
    fails_with(&out, 2, "is not a text file (binary data at byte 9)");
    std::fs::create_dir(d.join("Images/dir.jpg")).unwrap();
    assert!(Command::new("mkfifo").arg(d.join("Images/pipe.jpg")).status().unwrap().success());
    std::fs::write(
        d.join("captions.txt"),
        b"image,caption\n1000268201_693b08cb0e.jpg,A child \xff climbs .\ndir.jpg,a folder\npipe.jpg,a pipe\n",
    )
    .unwrap();
    let out = embtui().args(["dataset", "--dataset"]).arg(&d).output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("captions.txt:2: invalid UTF-8 at byte 9 of the line"), "{text}");
    assert!(text.contains("captions name dir.jpg, which is a directory"), "{text}");
    assert!(text.contains("captions name pipe.jpg, which is a FIFO (named pipe)"), "{text}");
}

#[test]
fn symlinked_datasets_and_kaggles_nested_layout_are_found() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    // Kaggle's download: <dir>/flickr30k_images/results.csv + …/flickr30k_images/*.jpg, with
    // every image a symlink into a real folder elsewhere.
    let top = tmp.path().join("download");
    let inner = top.join("flickr30k_images");
    let images = inner.join("flickr30k_images");
    std::fs::create_dir_all(&images).unwrap();
    let src = data.join("flickr30k-68");
    let mut csv = String::from("image_name| comment_number| comment\n");
    for line in std::fs::read_to_string(src.join("results_20130124.token")).unwrap().lines() {
        let (key, cap) = line.split_once('\t').unwrap();
        let (img, n) = key.split_once('#').unwrap();
        csv.push_str(&format!("{img}| {n}| {cap}\n"));
    }
    std::fs::write(inner.join("results.csv"), csv).unwrap();
    for e in std::fs::read_dir(src.join("flickr30k_images")).unwrap() {
        let p = e.unwrap().path();
        std::os::unix::fs::symlink(&p, images.join(p.file_name().unwrap())).unwrap();
    }
    let out = embtui().args(["dataset", "--json", "--dataset"]).arg(&top).output().unwrap();
    assert!(
        stderr(&out).contains("holds no caption file; found the flickr30k-csv layout in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out)["images"], 68);
}
