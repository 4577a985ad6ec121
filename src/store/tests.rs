//! The store on real LMDB files in temporary folders.

use super::*;

fn meta(dim: usize) -> IndexMeta {
    IndexMeta {
        model: "m".into(),
        onnx_sha256: "ab".repeat(32),
        dim,
        entry: serde_json::Value::Null,
        embtui_version: "0".into(),
        dataset_fingerprint: "fp".into(),
        n_trees: 4,
        seed: SEED,
        dataset_root: "/data/d".into(),
        selection: "all".into(),
        ..IndexMeta::default()
    }
}

#[test]
fn vectors_round_trip_and_cache_hits_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let sha = "ab".repeat(32);
    s.put_vectors(&sha, &[([1; 32], vec![0.6, 0.8])]).unwrap();
    let got = s.cached(&sha, 2, "m", &[Some([1; 32]), Some([2; 32])]).unwrap();
    assert_eq!(got, vec![Some(vec![0.6, 0.8]), None]);
    // Another model file (sha) never sees these vectors.
    assert_eq!(s.cached(&"cd".repeat(32), 2, "m", &[Some([1; 32])]).unwrap(), vec![None]);
}

#[test]
fn rows_are_read_back_in_the_order_asked_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let sha = "ab".repeat(32);
    s.put_vectors(&sha, &[(h(1), vec![0.6, 0.8]), (h(2), vec![1.0, 0.0]), (h(3), vec![0.0, -1.0])])
        .unwrap();
    // Repeats and any order: row i is the vector of keys[i].
    let got = s.read_rows(&sha, 2, "m", &[h(3), h(1), h(3), h(2)]).unwrap();
    assert_eq!(got, vec![0.0, -1.0, 0.6, 0.8, 0.0, -1.0, 1.0, 0.0]);
    let err = s.read_rows(&sha, 2, "m", &[h(1), h(9)]).unwrap_err();
    assert!(err.to_string().contains("a vector of `m` went missing"), "{err}");
    let err = s.read_rows(&sha, 3, "m", &[h(1)]).unwrap_err();
    assert!(err.to_string().contains("stored 2-d vectors but produces 3-d"), "{err}");
}

#[test]
fn rows_read_in_blocks_come_back_whole_and_leave_the_store_unmapped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let sha = "ab".repeat(32);
    // 2,000 vectors of 1,024 floats: 8 MB of store; vector i is i, i+1, … (mod 1,000).
    let dim = 1024;
    let value = |i: usize, j: usize| ((i + j) % 1000) as f32;
    let batch: Vec<([u8; 32], Vec<f32>)> =
        (0..2000).map(|i| (h(i as u32), (0..dim).map(|j| value(i, j)).collect())).collect();
    s.put_vectors(&sha, &batch).unwrap();
    let keys: Vec<[u8; 32]> = (0..2000u32).rev().map(h).collect();
    // Blocks of 3 rows: 667 blocks, the last one of 2 rows.
    let got = s.read_rows_releasing_every(&sha, dim, "m", &keys, 3 * dim * 4).unwrap();
    assert_eq!(got.len(), 2000 * dim);
    assert_eq!(&got[..3], &[999.0, 0.0, 1.0]); // row 0 is vector 1,999: 1,999 mod 1,000 = 999
    assert_eq!(got[1999 * dim + 5], 5.0); // the last row is vector 0
    assert_eq!(got[1000 * dim + 1000], 999.0); // vector 999, float 1,000: 1,999 mod 1,000
    #[cfg(target_os = "linux")]
    {
        let mapped = mapped_kib(&dir.path().join("data.mdb"));
        assert!(mapped < 1024, "{mapped} KiB of the 8 MB store still resident after reading");
    }
}

#[test]
fn has_tells_which_vectors_are_cached_and_checks_their_width() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let sha = "cd".repeat(32);
    // Vectors 0, 2, 4 of 4 floats are stored; 1 and 3 are not.
    let batch: Vec<([u8; 32], Vec<f32>)> =
        [0u32, 2, 4].iter().map(|&i| (h(i), vec![i as f32; 4])).collect();
    s.put_vectors(&sha, &batch).unwrap();
    let asked = [Some(h(0)), Some(h(1)), None, Some(h(4)), Some(h(3)), Some(h(2))];
    assert_eq!(s.has(&sha, 4, "m", &asked).unwrap(), [true, false, false, true, false, true]);
    // Another model file's sha holds none of them.
    assert_eq!(s.has(&"ef".repeat(32), 4, "m", &asked[..1]).unwrap(), [false]);
    // A stored vector of another width is an error naming both widths, as `cached` gives.
    let e = s.has(&sha, 8, "m", &asked[..1]).unwrap_err().to_string();
    assert!(e.contains("stored 4-d vectors but produces 8-d"), "{e}");
    #[cfg(target_os = "linux")]
    assert!(mapped_kib(&dir.path().join("data.mdb")) < 1024);
}

/// KiB of `file`'s mappings resident in this process (/proc/self/smaps).
#[cfg(target_os = "linux")]
fn mapped_kib(file: &std::path::Path) -> u64 {
    let file = file.canonicalize().unwrap().to_string_lossy().into_owned();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let (mut inside, mut kib) = (false, 0);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
            // A mapping's header: "start-end perms offset dev inode path".
            inside = line.ends_with(&file);
        } else if let Some(v) = line.strip_prefix("Rss:").filter(|_| inside) {
            kib += v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap();
        }
    }
    kib
}

#[test]
fn open_db_with_wrong_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let sha = "ab".repeat(32);
    s.put_vectors(&sha, &[([1; 32], vec![0.6, 0.8])]).unwrap();
    let err = s.cached(&sha, 3, "m", &[Some([1; 32])]).unwrap_err();
    assert!(err.to_string().contains("stored 2-d vectors but produces 3-d"), "{err}");
}

#[test]
fn ann_finds_the_exact_neighbour_with_cosine_scores() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let vs: Vec<(u32, Vec<f32>)> =
        vec![(0, vec![1.0, 0.0]), (1, vec![0.0, 1.0]), (2, vec![0.6, 0.8])];
    let m = s.build_index(&meta(2), &vs).unwrap();
    let hits = s.ann(&m, &[1.0, 0.0], 2, None).unwrap();
    assert_eq!(hits[0].0, 0);
    assert!((hits[0].1 - 1.0).abs() < 1e-5);
    assert_eq!(hits[1].0, 2);
    assert!((hits[1].1 - 0.6).abs() < 1e-4, "{hits:?}");
}

#[test]
fn same_seed_builds_the_same_trees() {
    let vs: Vec<(u32, Vec<f32>)> = (0..300u32)
        .map(|i| {
            let a = f32::from(i as u16) * 0.37;
            (i, vec![a.sin(), a.cos(), (a * 0.5).sin(), (a * 1.7).cos()])
        })
        .collect();
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let m = s.build_index(&meta(4), &vs).unwrap();
        // A small search_k makes the answer depend on the trees themselves.
        (0..20).map(|q| s.ann(&m, &vs[q].1, 5, Some(8)).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn store_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        let mut w = s.env.write_txn().unwrap();
        s.meta.put(&mut w, "store_version", "99").unwrap();
        w.commit().unwrap();
    }
    let err = Store::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("written by a newer embtui (layout 99"), "{err}");
}

#[test]
fn map_full_grows_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let before = s.env.info().map_size;
    // 1.5 GiB of vectors in 8 MiB batches outgrows the initial 1 GiB map.
    let sha = "ab".repeat(32);
    for b in 0..3u8 {
        let items: Vec<([u8; 32], Vec<f32>)> = (0..128u8)
            .map(|i| {
                (
                    [
                        b, i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                        20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                    ],
                    vec![0.5; 1 << 20],
                )
            })
            .collect();
        s.put_vectors(&sha, &items).unwrap();
    }
    assert!(s.env.info().map_size > before);
    assert_eq!(s.n_cached().unwrap(), 384);
}

fn h(i: u32) -> [u8; 32] {
    crate::hash::bytes_sha256(&i.to_le_bytes())
}

#[test]
fn the_stat_cache_remembers_a_hash_until_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s")).unwrap();
    let f = dir.path().join("a.jpg");
    std::fs::write(&f, b"one").unwrap();
    let stamp = FileStamp::of(&std::fs::metadata(&f).unwrap());
    let key = f.display().to_string();
    assert_eq!(s.file_hashes(&[(key.clone(), stamp)]).unwrap(), vec![None]);
    s.put_file_hashes(&[(key.clone(), stamp, h(1))]).unwrap();
    assert_eq!(s.file_hashes(&[(key.clone(), stamp)]).unwrap(), vec![Some(h(1))]);
    std::fs::write(&f, b"two!").unwrap();
    let changed = FileStamp::of(&std::fs::metadata(&f).unwrap());
    assert_eq!(s.file_hashes(&[(key, changed)]).unwrap(), vec![None], "size changed: rehash");
}

#[test]
fn runs_add_up_in_the_provenance_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let sha = "ab".repeat(32);
    s.record_run(&sha, "m", "cpu", 100, 2.0).unwrap();
    s.record_run(&sha, "m", "cuda:0", 300, 1.0).unwrap();
    let p = s.provenance(&sha).unwrap().unwrap();
    assert_eq!((p.devices.clone(), p.images), (vec!["cpu".to_owned(), "cuda:0".to_owned()], 400));
    assert!((p.images_per_second().unwrap() - 400.0 / 3.0).abs() < 1e-9);
}

#[test]
fn only_the_most_recent_selections_keep_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let vs: Vec<(u32, Vec<f32>)> =
        (0..20).map(|i| (i, vec![(i as f32).sin(), (i as f32).cos()])).collect();
    for sel in 0..(MAX_SELECTIONS + 3) {
        let mut m = meta(2);
        m.dataset_fingerprint = format!("sel{sel}");
        m.selection = format!("--limit {}", 10 + sel);
        s.build_index(&m, &vs[..10 + sel]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1)); // distinct last_used order
    }
    let left = s.indexes().unwrap();
    assert_eq!(left.len(), MAX_SELECTIONS);
    let mut fps: Vec<String> = left.iter().map(|m| m.dataset_fingerprint.clone()).collect();
    fps.sort();
    assert_eq!(fps, ["sel3", "sel4", "sel5", "sel6"]);
    // Another dataset folder has its own quota.
    let mut other = meta(2);
    other.dataset_root = "/data/other".into();
    s.build_index(&other, &vs).unwrap();
    assert_eq!(s.indexes().unwrap().len(), MAX_SELECTIONS + 1);
}

#[test]
fn merged_shards_hold_every_vector_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, all) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("all"));
    let sha = "cd".repeat(32);
    let items: Vec<([u8; 32], Vec<f32>)> = (0..30).map(|i| (h(i), vec![i as f32, 1.0])).collect();
    Store::open(&a).unwrap().put_vectors(&sha, &items[..20]).unwrap();
    Store::open(&b).unwrap().put_vectors(&sha, &items[10..]).unwrap();
    Store::open(&a).unwrap().record_run(&sha, "m", "cuda:0", 20, 1.0).unwrap();
    Store::open(&b).unwrap().record_run(&sha, "m", "cuda:1", 20, 2.0).unwrap();
    let m = Store::open(&all).unwrap();
    assert_eq!(m.merge_from(&Store::open(&a).unwrap()).unwrap(), (20, 0));
    assert_eq!(m.merge_from(&Store::open(&b).unwrap()).unwrap(), (10, 10));
    let hashes: Vec<Option<[u8; 32]>> = items.iter().map(|(k, _)| Some(*k)).collect();
    let got = m.cached(&sha, 2, "m", &hashes).unwrap();
    assert_eq!(got, items.iter().map(|(_, v)| Some(v.clone())).collect::<Vec<_>>());
    let p = m.provenance(&sha).unwrap().unwrap();
    assert_eq!((p.images, p.devices.len()), (40, 2));
}

#[test]
fn gc_removes_indexes_of_gone_folders_and_vectors_of_changed_models() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s")).unwrap();
    let (old, new) = ("aa".repeat(32), "bb".repeat(32));
    s.put_vectors(&old, &[(h(1), vec![1.0, 0.0])]).unwrap();
    s.put_vectors(&new, &[(h(1), vec![0.0, 1.0])]).unwrap();
    s.record_run(&old, "m", "cpu", 1, 1.0).unwrap();
    s.record_run(&new, "m", "cpu", 1, 1.0).unwrap();
    let mut kept = meta(2);
    kept.onnx_sha256.clone_from(&new);
    kept.dataset_root = dir.path().display().to_string();
    s.build_index(&kept, &[(0, vec![1.0, 0.0])]).unwrap();
    let mut gone = meta(2);
    gone.dataset_fingerprint = "other".into();
    gone.dataset_root = dir.path().join("missing").display().to_string();
    s.build_index(&gone, &[(0, vec![1.0, 0.0])]).unwrap();
    let current: maintenance::Current = [("m".to_owned(), Some(new.clone()))].into();
    let dry = s.gc(&current, true, false).unwrap();
    assert_eq!((dry.indexes.len(), dry.vectors.len()), (1, 1));
    assert_eq!(s.n_cached().unwrap(), 2, "a dry run removes nothing");
    s.gc(&current, false, false).unwrap();
    assert_eq!(s.n_cached().unwrap(), 1);
    assert_eq!(s.indexes().unwrap().len(), 1);
    assert_eq!(s.cached(&new, 2, "m", &[Some(h(1))]).unwrap(), vec![Some(vec![0.0, 1.0])]);
}

/// Set in the child process of `a_map_grown_by_another_process_is_adopted`.
const GROW_IN: &str = "EMBTUI_TEST_GROW_STORE";

#[test]
fn a_map_grown_by_another_process_is_adopted() {
    let sha = "ef".repeat(32);
    let big = |b: u8| -> Vec<([u8; 32], Vec<f32>)> {
        (0..64u8)
            .map(|i| {
                let mut k = [b; 32];
                k[1] = i;
                (k, vec![0.25; 1 << 20])
            })
            .collect()
    };
    if let Ok(dir) = std::env::var(GROW_IN) {
        // The child: 5 × 256 MiB of vectors take the map from 1 GiB to 2 GiB or more.
        let s = Store::open(std::path::Path::new(&dir)).unwrap();
        for b in 0..5 {
            s.put_vectors(&sha, &big(b)).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.put_vectors(&sha, &[([9; 32], vec![1.0])]).unwrap();
    let before = s.env.info().map_size;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::tests::a_map_grown_by_another_process_is_adopted", "--nocapture"])
        .env(GROW_IN, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the growing child failed");
    // This process still has the 1 GiB map: reads and writes go on.
    let mut k = [0u8; 32];
    k[1] = 63;
    let got = s
        .cached(
            &sha,
            1 << 20,
            "m",
            &[Some([4; 32]).map(|mut x| {
                x[1] = 63;
                x
            })],
        )
        .unwrap();
    assert_eq!(got[0].as_ref().map(Vec::len), Some(1 << 20));
    s.put_vectors(&sha, &[([8; 32], vec![2.0])]).unwrap();
    assert_eq!(s.n_cached().unwrap(), 5 * 64 + 2);
    assert!(s.env.info().map_size > before, "the larger map was adopted");
    let _ = k;
}

#[test]
fn a_writer_waiting_for_the_lock_says_so() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path()).unwrap());
    let before = LOCK_NOTICES.load(Ordering::Relaxed);
    let held = s.env.write_txn().unwrap();
    let writer = {
        let s = s.clone();
        std::thread::spawn(move || s.put_vectors(&"ab".repeat(32), &[([1; 32], vec![1.0])]))
    };
    // Hold the lock until the waiting writer has said so, not for a fixed time.
    while LOCK_NOTICES.load(Ordering::Relaxed) == before {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(held);
    writer.join().unwrap().unwrap();
    assert_eq!(s.n_cached().unwrap(), 1);
}

#[cfg(target_os = "linux")]
#[test]
fn mapped_ranges_are_read_from_the_kernel_listing() {
    let maps = "\
7f0000000000-7f0000400000 r--s 00000000 fd:01 123   /tmp/my store/data.mdb
7f0000400000-7f0000401000 r--p 00000000 fd:01 124   /tmp/my store/data.mdb.bak
7f1000000000-7f1000002000 r--s 00000000 fd:01 125   /tmp/other/data.mdb
";
    assert_eq!(
        super::mapped_ranges(maps, "/tmp/my store/data.mdb"),
        [(0x7f00_0000_0000, 0x7f00_0040_0000)]
    );
}

fn shard(index: u64, count: u64, model: &str, fingerprint: &str, finished: bool) -> ShardRecord {
    ShardRecord {
        model: model.into(),
        model_sha256: format!("{model}-sha-0123456789"),
        dataset_root: format!("/data/{fingerprint}"),
        dataset_fingerprint: fingerprint.into(),
        index,
        count,
        images: 10,
        finished,
    }
}

#[test]
fn merge_conflicts_name_the_stores_and_the_fix() {
    let ok = |i: u64| ("s".to_owned() + &i.to_string(), vec![shard(i, 2, "m", "fp", true)]);
    assert_eq!(super::maintenance::merge_conflict(&[ok(0), ok(1)]), None);
    // A plain cache (no shard records) is not judged.
    assert_eq!(super::maintenance::merge_conflict(&[ok(0), ("cache".into(), vec![])]), None);
    let cases = [
        (shard(1, 2, "m", "fp", false), "did not finish"),
        (shard(1, 2, "m", "other", true), "merge the shards of one dataset selection"),
        (shard(1, 3, "m", "fp", true), "split into 2 shards and b into 3"),
        (shard(1, 2, "n", "fp", true), "every shard store must hold the same models"),
    ];
    for (b, want) in cases {
        let why = super::maintenance::merge_conflict(&[ok(0), ("b".into(), vec![b])]).unwrap();
        assert!(why.contains(want), "{why}");
    }
}
