//! `index --shard auto` under a real scheduler: a single-node Slurm cluster (Debian's
//! slurm-wlm and munge; slurmctld + slurmd on 127.0.0.1, started by this test) runs
//! `sbatch --array=0-3 --wait` of embtui over 200 real photos; the merged shard stores
//! evaluate exactly like one process, and a task cancelled mid-way and resubmitted finishes its
//! shard reusing what it had embedded, without duplicates. The sbatch script and the
//! Kubernetes Indexed Job manifest of docs/scaling.md are run as written there (paths and the
//! model swapped for this machine's): the script under that cluster with `--gres=gpu:1`, the
//! manifest checked against Kubernetes' own schema and its container command run once per
//! completion index, as the Job controller runs its pods.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The cluster: daemons killed when the test ends.
struct Cluster {
    conf: PathBuf,
    daemons: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Some(()) when Slurm and munge are installed (outside CI a skip otherwise, see `missing`).
fn slurm_installed() -> Option<()> {
    if ["slurmctld", "slurmd", "sbatch", "munged"].iter().all(|t| have(t)) {
        Some(())
    } else {
        missing("Slurm (slurmctld, slurmd, sbatch) and munge are not installed: apt-get install slurm-wlm munge")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (bounded) until `done` holds, polling what the cluster says.
fn until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_cluster(dir: &Path) -> Cluster {
    // munged: one per machine; start it when its socket does not answer.
    if !Command::new("sh")
        .args(["-c", "munge -n | unmunge"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        std::fs::create_dir_all("/run/munge").unwrap();
        let _ = Command::new("chown").args(["munge:munge", "/run/munge"]).status();
        let ok = Command::new("munged").arg("--force").status().is_ok_and(|s| s.success());
        assert!(ok, "munged did not start");
        until("munge", Duration::from_secs(30), || {
            Command::new("sh")
                .args(["-c", "munge -n | unmunge"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    }
    let host =
        String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap();
    let host = host.trim();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let d = dir.display();
    let conf = dir.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=embtui\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={}\nSlurmdPort={}\n\
             SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nStateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
             MpiDefault=none\nReturnToService=2\nKillWait=2\nGresTypes=gpu\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cores} Gres=gpu:2 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    // Two GPUs as Slurm counts them, so that `--gres=gpu:1` schedules as on a GPU node: Slurm
    // needs a device file per GPU and hands each task one (CUDA_VISIBLE_DEVICES=0 or 1); these
    // two stand in for /dev/nvidia0-1 (embtui finds no CUDA here and embeds on the CPU).
    std::fs::write(
        dir.join("gres.conf"),
        format!(
            "NodeName={host} Name=gpu File=/dev/null\nNodeName={host} Name=gpu File=/dev/zero\n"
        ),
    )
    .unwrap();
    let daemon = |bin: &str| {
        Command::new(bin)
            .args(["-D", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let cluster = Cluster { daemons: vec![daemon("slurmctld"), daemon("slurmd")], conf };
    until("the node to be idle", Duration::from_mins(1), || {
        slurm(&cluster, "sinfo", &["-h", "-o", "%t"]).trim() == "idle"
    });
    cluster
}

fn slurm(c: &Cluster, tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).env("SLURM_CONF", &c.conf).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The number of vectors a store holds per model name.
fn vectors(store: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = embtui().args(["store", "--json", "--store"]).arg(store).output().unwrap();
    json(&out)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"].as_str().unwrap().to_owned(), m["vectors"].as_u64().unwrap()))
        .collect()
}

fn eval_metrics(store: &Path, ds: &Path) -> serde_json::Value {
    let out = embtui()
        .args(["eval", "--json", "--device", "cpu", "--relevance", "tfidf", "--bootstrap", "200"])
        .args(["--model", "efficientnet-lite0", "--store"])
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .output()
        .unwrap();
    let r = json(&out);
    assert_eq!(r["models"][0]["embedded"], 0, "the merged store must hold every vector");
    r["models"][0]["metrics"].clone()
}

#[test]
#[allow(clippy::too_many_lines)] // one cluster, one scenario from submission to evaluation
fn slurm_array_shards_merge_into_the_single_process_result() {
    let data = require!(shared_data());
    require!(models_ready());
    require!(slurm_installed());
    let tmp = tempfile::tempdir().unwrap();
    let ds = flickr8k_subset(&data, tmp.path(), 200);
    let cluster = start_cluster(&tmp.path().join("slurm"));
    let bin = assert_cmd::cargo::cargo_bin("embtui");
    let stores = tmp.path().join("stores");
    let job = tmp.path().join("index.sh");
    std::fs::write(
        &job,
        format!(
            "#!/bin/bash\nset -euo pipefail\nexec {} index --shard \"$SHARD\" --device cpu --batch 4 --model \"$MODEL\" \
             --dataset {} --store {}/shard-$SLURM_ARRAY_TASK_ID\n",
            bin.display(),
            ds.display(),
            stores.display()
        ),
    )
    .unwrap();
    let log = tmp.path().join("task-%a.log");
    let submit = |array: &str, model: &str, shard: &str, wait: bool| {
        let mut args = vec!["--array", array, "--parsable", "-o", log.to_str().unwrap()];
        if wait {
            args.push("--wait");
        }
        args.push(job.to_str().unwrap());
        let out = Command::new("sbatch")
            .args(&args)
            .env("SLURM_CONF", &cluster.conf)
            .env("MODEL", model)
            .env("SHARD", shard)
            .output()
            .unwrap();
        assert!(out.status.success() || !wait, "sbatch: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    submit("0-3", "efficientnet-lite0", "auto", true);
    let logs: Vec<String> = (0..4)
        .map(|i| {
            std::fs::read_to_string(tmp.path().join(format!("task-{i}.log"))).unwrap_or_default()
        })
        .collect();
    for (i, l) in logs.iter().enumerate() {
        assert!(
            l.contains(&format!("shard {i}/4 from the scheduler's environment")),
            "task {i}: {l}"
        );
    }
    let per_shard = shards_merge_as_one_process(tmp.path(), &stores, &ds, 4, 200);
    assert!(per_shard.iter().all(|&n| n > 20), "content-hash shards are balanced: {per_shard:?}");
    // A task cancelled mid-way (after its first tenth), then resubmitted alone: with the
    // count pinned (auto/4) it is still shard 1, reuses what it had stored and ends with its
    // shard whole, each image once.
    let first = tmp.path().join("task-1.log");
    std::fs::remove_file(&first).unwrap(); // the lite0 run's log of the same task
    let id = submit("1", "dinov2-s14-imgfocus", "auto/4", false);
    let progress = format!("/{} images, ", per_shard[1]); // "dinov2-s14-imgfocus: 8/46 images, …"
    until("the task to report progress", Duration::from_mins(5), || {
        std::fs::read_to_string(&first)
            .is_ok_and(|l| l.contains("dinov2-s14-imgfocus: ") && l.contains(&progress))
    });
    slurm(&cluster, "scancel", &[&id]);
    until("the task to end", Duration::from_mins(2), || {
        slurm(&cluster, "squeue", &["-h", "-j", &id]).trim().is_empty()
    });
    let shard1 = stores.join("shard-1");
    let partial = vectors(&shard1).get("dinov2-s14-imgfocus").copied().unwrap_or(0);
    let want = per_shard[1];
    let listing = embtui().args(["store", "--json", "--store"]).arg(&shard1).output().unwrap();
    let cancelled_log = std::fs::read_to_string(&first).unwrap_or_default();
    submit("1", "dinov2-s14-imgfocus", "auto/4", true);
    let after = std::fs::read_to_string(&first).unwrap();
    assert_eq!(
        vectors(&shard1)["dinov2-s14-imgfocus"],
        want,
        "shard 1 whole, no duplicates: {after}"
    );
    assert!(
        partial > 0 && partial < want,
        "cancelled mid-way with vectors kept ({partial} of {want}): {} {cancelled_log}",
        stdout(&listing)
    );
    assert!(
        after.contains(&format!("{} embedded", want - partial))
            && after.contains(&format!("{partial} cached")),
        "the resubmitted task embeds only the rest ({} of {want}): {after}",
        want - partial
    );
}

/// `index --shard I/N` over `ds` with `model` into `store`.
fn index_shard(ds: &Path, store: &Path, model: &str, shard: &str) {
    let out = embtui()
        .args(["index", "--device", "cpu", "--model", model, "--shard", shard, "--store"])
        .arg(store)
        .arg("--dataset")
        .arg(ds)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn merge(into: &Path, from: &[&Path]) -> std::process::Output {
    let mut c = embtui();
    c.args(["store", "--store"]).arg(into).arg("merge");
    for f in from {
        c.arg(f);
    }
    c.output().unwrap()
}

/// Stores of other datasets, other models, or still being written are refused, and a refusal
/// changes nothing; the right shards merge.
#[test]
fn merge_refuses_other_datasets_other_models_and_stores_being_written() {
    let data = require!(shared_data());
    require!(models_ready());
    let tmp = tempfile::tempdir().unwrap();
    let a = flickr8k_subset(&data, &tmp.path().join("a"), 30);
    let b = flickr8k_subset(&data, &tmp.path().join("b"), 20);
    let s = |n: &str| tmp.path().join(n);
    index_shard(&a, &s("a0"), "efficientnet-lite0", "0/2");
    index_shard(&a, &s("a1"), "efficientnet-lite0", "1/2");
    index_shard(&b, &s("b1"), "efficientnet-lite0", "1/2");
    index_shard(&a, &s("a1-nsfw"), "open-nsfw", "1/2");
    index_shard(&a, &s("a1-of-3"), "efficientnet-lite0", "1/3");
    let into = s("merged");
    let out = merge(&into, &[&s("a0"), &s("b1")]);
    fails_with(&out, 2, "merge the shards of one dataset selection");
    let out = merge(&into, &[&s("a0"), &s("a1-nsfw")]);
    fails_with(&out, 2, "every shard store must hold the same models");
    let out = merge(&into, &[&s("a0"), &s("a1-of-3")]);
    fails_with(&out, 2, "was split into 2 shards and");
    assert!(vectors(&into).is_empty(), "a refused merge copies nothing: {:?}", vectors(&into));

    // A store an index run is writing into cannot be merged into, nor merged from.
    let mut writer = embtui_process()
        .args(["index", "--device", "cpu", "--limit", "600", "--model", "dinov2-s14-imgfocus"])
        .arg("--store")
        .arg(&into)
        .arg("--dataset")
        .arg(data.join("flickr8k-1k"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_line(&mut writer, |l| l.contains(" images, "));
    let busy_into = merge(&into, &[&s("a0"), &s("a1")]);
    let busy_from = merge(&s("other"), &[&into]);
    let still_writing = writer.try_wait().unwrap().is_none();
    let finished = writer.wait().unwrap();
    assert!(finished.success());
    if still_writing {
        fails_with(&busy_into, 2, "is being written by another embtui run");
        fails_with(&busy_from, 2, "is still being written");
    } else {
        eprintln!("the index run ended before both merges were tried: their refusal is not checked this time");
    }
    // The right shards merge once nothing writes: 30 photos of lite0.
    let out = merge(&into, &[&s("a0"), &s("a1")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(vectors(&into)["efficientnet-lite0"], 30);
}

/// The fenced block of docs/scaling.md tagged `lang` that contains `marker`, de-indented.
fn doc_block(lang: &str, marker: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/scaling.md")).unwrap();
    let mut block: Option<(usize, Vec<&str>)> = None;
    for line in doc.lines() {
        let t = line.trim_start();
        match &mut block {
            None if t == format!("```{lang}") => block = Some((line.len() - t.len(), Vec::new())),
            Some((_, lines)) if t == "```" => {
                if lines.iter().any(|l| l.contains(marker)) {
                    return lines.join("\n") + "\n";
                }
                block = None;
            }
            Some((indent, lines)) => lines.push(line.get(*indent..).unwrap_or("")),
            None => {}
        }
    }
    panic!("docs/scaling.md has no ```{lang} block containing {marker:?}")
}

/// The documented paths and model swapped for this machine's: the dataset folder, the
/// scratch folder, and an offline model for the Hub one (no Hub here).
fn localise(text: &str, data: &Path, scratch: &Path) -> String {
    text.replace("/data/flickr30k", data.to_str().unwrap())
        .replace("/scratch/", &format!("{}/", scratch.display()))
        .replace("Xenova/clip-vit-base-patch32", "efficientnet-lite0")
}

/// A folder holding `flickr30k`: the 68 real Flickr30k photos in their original layout.
fn flickr30k_data(data: &Path, at: &Path) -> PathBuf {
    std::fs::create_dir_all(at).unwrap();
    let ds = at.join("flickr30k");
    std::os::unix::fs::symlink(data.join("flickr30k-68"), &ds).unwrap();
    ds
}

/// PATH with the tested embtui first, as `embtui` is on a node's or an image's PATH.
fn path_with_embtui() -> String {
    let bin = assert_cmd::cargo::cargo_bin("embtui");
    format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default())
}

/// The shard stores `shard-0..n` under `stores` hold every photo of `ds` once, merge, and
/// the merged store evaluates exactly as one process that embedded everything. Returns the
/// number of vectors in each shard.
fn shards_merge_as_one_process(
    tmp: &Path,
    stores: &Path,
    ds: &Path,
    n: usize,
    photos: u64,
) -> Vec<u64> {
    let per_shard: Vec<u64> =
        (0..n).map(|i| vectors(&stores.join(format!("shard-{i}")))["efficientnet-lite0"]).collect();
    assert_eq!(per_shard.iter().sum::<u64>(), photos, "shards {per_shard:?} cover the photos once");
    let merged = stores.join("all");
    let mut merge = embtui();
    merge.args(["store", "--store"]).arg(&merged).arg("merge");
    for i in 0..n {
        merge.arg(stores.join(format!("shard-{i}")));
    }
    let out = merge.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(vectors(&merged)["efficientnet-lite0"], photos);
    let single = tmp.join("single");
    let out = embtui()
        .args(["index", "--device", "cpu", "--model", "efficientnet-lite0", "--store"])
        .arg(&single)
        .arg("--dataset")
        .arg(ds)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(eval_metrics(&merged, ds), eval_metrics(&single, ds), "merged shards = one process");
    per_shard
}

/// docs/scaling.md's sbatch script, `--gres=gpu:1` included, submitted as written (paths and
/// model swapped) to a cluster whose node has two GPUs as Slurm counts them.
#[test]
fn the_documented_sbatch_script_runs_on_a_gpu_partition() {
    let data = require!(shared_data());
    require!(models_ready());
    require!(slurm_installed());
    let script = doc_block("sh", "#SBATCH --array=0-3");
    assert!(script.contains("#SBATCH --gres=gpu:1"), "the documented script asks a GPU per task");
    let tmp = tempfile::tempdir().unwrap();
    let ds = flickr30k_data(&data, &tmp.path().join("data"));
    let scratch = tmp.path().join("scratch");
    let job = tmp.path().join("index.sbatch");
    std::fs::write(&job, localise(&script, &ds, &scratch)).unwrap();
    let cluster = start_cluster(&tmp.path().join("slurm"));
    let log = tmp.path().join("task-%a.log");
    let out = Command::new("sbatch")
        .args(["--wait", "-o", log.to_str().unwrap()])
        .arg(&job)
        .env("SLURM_CONF", &cluster.conf)
        .env("PATH", path_with_embtui())
        .output()
        .unwrap();
    let logs: Vec<String> = (0..4)
        .map(|i| {
            std::fs::read_to_string(tmp.path().join(format!("task-{i}.log"))).unwrap_or_default()
        })
        .collect();
    assert!(out.status.success(), "sbatch: {} {logs:?}", String::from_utf8_lossy(&out.stderr));
    for (i, l) in logs.iter().enumerate() {
        assert!(
            l.contains(&format!("shard {i}/4 from the scheduler's environment")),
            "task {i}: {l}"
        );
    }
    let _ = shards_merge_as_one_process(tmp.path(), &scratch.join("embtui"), &ds, 4, 68);
}

/// docs/scaling.md's Kubernetes Indexed Job: valid against Kubernetes 1.33's schema (strict:
/// no unknown field), an Indexed Job whose `completions` is the N of `--shard auto/N`, and its
/// container command, run once per completion index with `JOB_COMPLETION_INDEX` set and the
/// volumes' mount paths mapped to folders here, shards the photos as the Job's pods would.
#[test]
fn the_documented_kubernetes_indexed_job_validates_and_its_pods_shard_the_photos() {
    let data = require!(shared_data());
    require!(models_ready());
    let validate = root().join(".venv/bin/kubernetes-validate");
    if !validate.exists() {
        return missing::<()>("kubernetes-validate is not in .venv: run `just venv`").unwrap_or(());
    }
    let manifest = doc_block("yaml", "kind: Job");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("job.yaml");
    std::fs::write(&file, &manifest).unwrap();
    let out =
        Command::new(&validate).args(["--strict", "-k", "1.33.0"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(root().join(".venv/bin/python"))
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let n = usize::try_from(job["spec"]["completions"].as_u64().unwrap()).unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
    };
    let (command, args) = (strings(&container["command"]), strings(&container["args"]));
    assert!(
        args.iter().any(|a| a.contains(&format!("--shard auto/{n}"))),
        "--shard auto/N names the Job's completions ({n}): {args:?}"
    );
    // Each volume mounted where the manifest mounts it: /data (the photos), /scratch (stores).
    let mounts: Vec<String> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(mounts, ["/data", "/scratch"]);
    let ds = flickr30k_data(&data, &tmp.path().join("data"));
    let scratch = tmp.path().join("scratch");
    let args: Vec<String> = args.iter().map(|a| localise(a, &ds, &scratch)).collect();
    for index in 0..n {
        let out = Command::new(&command[0])
            .args(&command[1..])
            .args(&args)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("PATH", path_with_embtui())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "pod {index}: {err}");
        assert!(
            err.contains(&format!("shard {index}/{n} from the scheduler's environment")),
            "pod {index}: {err}"
        );
    }
    let _ = shards_merge_as_one_process(tmp.path(), &scratch.join("embtui"), &ds, n, 68);
}
