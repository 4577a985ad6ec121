#!/usr/bin/env python3
"""Flickr30k at full size, measured: parse every caption format, index from an empty store (or
reuse the store), evaluate with every vector cached, and report wall time, peak RSS and disk.

Each embtui command runs as a child process; its peak RSS is read from that child's own rusage
(os.wait4), so figures do not depend on /usr/bin/time. Results land in OUT/scale.json and are
printed as the Markdown table of docs/performance.md ("Full scale").

Usage: bench/scale.py [--n 31783] [--models a,b] [--out .bench/f30k] [--store .bench/scale-store]
                      [--fresh] [--bin target/release/embtui]
--fresh empties the store first, so `index` embeds everything (1.5 h for the four offline
models on 2 cores); without it a store that already holds the vectors is reused and the index
step measures the cache check alone.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = "efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus"
FORMATS = ["token", "kaggle", "karpathy", "hf"]


def run(cmd, stdout=subprocess.DEVNULL, log=None):
    """Runs cmd; returns (wall seconds, peak RSS MB, exit code). stderr goes to log."""
    t = time.monotonic()
    err = open(log, "w") if log else subprocess.DEVNULL
    p = subprocess.Popen(cmd, stdout=stdout, stderr=err)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t
    if log:
        err.close()
    return wall, usage.ru_maxrss / 1024, p.returncode


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} logical CPUs, {mem:.0f} GiB RAM, {platform.system()}"


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=31783)
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--out", default=os.path.join(ROOT, ".bench", "f30k"))
    ap.add_argument("--store", default=os.path.join(ROOT, ".bench", "scale-store"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "embtui"))
    ap.add_argument("--fresh", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} is missing: run `just build` first")
    if not os.path.isdir(os.path.join(a.out, "token")):
        print(f"== generating a Flickr30k-shaped dataset of {a.n} images in {a.out}", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_flickr30k.py"), a.out,
                        "--n", str(a.n), "--matched"], check=True)
    if a.fresh and os.path.exists(a.store):
        shutil.rmtree(a.store)
    res = {"machine": machine(), "images": a.n, "models": a.models.split(","), "parse": {}}
    print(f"machine: {res['machine']}", flush=True)

    for fmt in FORMATS:
        ds = os.path.join(a.out, fmt)
        wall, rss, rc = run([a.bin, "dataset", "--dataset", ds, "--json"])
        if rc != 0:
            sys.exit(f"`embtui dataset --dataset {ds}` failed with exit code {rc}")
        res["parse"][fmt] = {"seconds": round(wall, 2), "peak_rss_mb": round(rss)}
        print(f"parse {fmt:9} {wall:6.2f} s  peak RSS {rss:5.0f} MB", flush=True)

    ds = os.path.join(a.out, "token")
    common = ["--dataset", ds, "--store", a.store, "--model", a.models]
    log = os.path.join(a.out, "index.log")
    print(f"== index ({'empty store' if a.fresh else 'store reused'}; log: {log})", flush=True)
    wall, rss, rc = run([a.bin, "index", *common], log=log)
    if rc != 0:
        sys.exit(f"index failed with exit code {rc}; see {log}")
    res["index"] = {"fresh": a.fresh, "seconds": round(wall, 1), "peak_rss_mb": round(rss)}
    print(f"index      {wall:8.1f} s  peak RSS {rss:5.0f} MB", flush=True)

    # Twice: the first run may embed the captions (hybrid relevance, cached in the store
    # after that); the second is the cached figure.
    report = os.path.join(a.out, "scale-eval.json")
    for key in ["eval_first", "eval_cached"]:
        log = os.path.join(a.out, f"{key}.log")
        with open(report, "w") as out:
            wall, rss, rc = run([a.bin, "eval", *common, "--json"], stdout=out, log=log)
        if rc != 0:
            sys.exit(f"eval failed with exit code {rc}; see {log}")
        res[key] = {"seconds": round(wall, 1), "peak_rss_mb": round(rss)}
        print(f"{key:10} {wall:8.1f} s  peak RSS {rss:5.0f} MB", flush=True)
    with open(report) as f:
        rep = json.load(f)
    res["relevance"] = rep["relevance"]["method"]
    res["metrics"] = {m["name"]: round(m["metrics"]["ndcg@10"]["mean"], 4) for m in rep["models"]}
    res["store_bytes"] = du(a.store)
    print(f"store      {res['store_bytes'] / 1e9:8.2f} GB on disk ({a.store})")

    with open(os.path.join(a.out, "scale.json"), "w") as f:
        json.dump(res, f, indent=2)
    print()
    print(f"| step | wall | peak RSS |\n|---|---:|---:|")
    for fmt, r in res["parse"].items():
        print(f"| parse {fmt} | {r['seconds']:.2f} s | {r['peak_rss_mb']} MB |")
    i = res["index"]
    print(f"| index ({'from empty' if i['fresh'] else 'cached'}) | {i['seconds']:.0f} s | {i['peak_rss_mb']} MB |")
    e = res["eval_first"]
    print(f"| eval, first (captions embedded if new) | {e['seconds']:.1f} s | {e['peak_rss_mb']} MB |")
    e = res["eval_cached"]
    print(f"| eval, vectors and captions cached | {e['seconds']:.1f} s | {e['peak_rss_mb']} MB |")
    print(f"\nnDCG@10: " + ", ".join(f"{k} {v}" for k, v in res["metrics"].items()))


if __name__ == "__main__":
    main()
