#!/usr/bin/env python3
"""Sampled queries against the full run at Flickr30k size: `eval` with every query and with
`--queries 5000 --seed S` on the same cached store, then, per model and metric, whether the
sample's mean falls inside the full run's 95% interval, and whether the models keep their order.

Each eval is a child process; wall time and peak RSS come from its rusage (os.wait4).
Usage: bench/queries.py [--dataset .bench/f30k/token] [--store .bench/scale-store]
                        [--queries 5000] [--seed 0] [--models a,b] [--compare FULL.json SAMPLE.json]
--compare only compares two reports already written (no eval is run).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = "efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus"


def run_eval(binary, args, out):
    t = time.monotonic()
    with open(out, "w") as f:
        p = subprocess.Popen([binary, "eval", "--device", "cpu", "--json", *args], stdout=f,
                             stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"eval {' '.join(args)} failed")
    return time.monotonic() - t, usage.ru_maxrss / 1024


def compare(full, sample):
    rows, inside, total = [], 0, 0
    for mf, ms in zip(full["models"], sample["models"]):
        assert mf["name"] == ms["name"]
        for metric, stat in mf["metrics"].items():
            lo, hi = stat["ci95"]
            m = ms["metrics"][metric]["mean"]
            ok = lo <= m <= hi
            sci = ms["metrics"][metric]["ci95"]
            covered = sci[0] <= stat["mean"] <= sci[1]
            inside += ok
            total += 1
            rows.append((mf["name"], metric, stat["mean"], lo, hi, m, sci, ok, covered))
    main = "ndcg@%d" % max(full["k"])
    order = lambda r: [m["name"] for m in sorted(r["models"], key=lambda m: -m["metrics"][main]["mean"])]
    return rows, inside, total, order(full), order(sample), main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(ROOT, ".bench", "f30k", "token"))
    ap.add_argument("--store", default=os.path.join(ROOT, ".bench", "scale-store"))
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "embtui"))
    ap.add_argument("--compare", nargs=2, metavar=("FULL", "SAMPLE"))
    a = ap.parse_args()
    timing = {}
    if a.compare:
        full_path, sample_path = a.compare
    else:
        out = os.path.dirname(a.dataset.rstrip("/"))
        full_path, sample_path = os.path.join(out, "full.json"), os.path.join(out, "sample.json")
        common = ["--dataset", a.dataset, "--store", a.store, "--model", a.models]
        timing["full"] = run_eval(a.bin, common, full_path)
        timing["sample"] = run_eval(a.bin, [*common, "--queries", str(a.queries), "--seed", str(a.seed)], sample_path)
    full, sample = (json.load(open(p)) for p in (full_path, sample_path))
    rows, inside, total, order_full, order_sample, main = compare(full, sample)
    q = sample["dataset"].get("query_sample") or {}
    print(f"full: {full['dataset']['queries']} queries; sample: {q.get('size')} of {q.get('of')} (seed {q.get('seed')})")
    for k, (wall, rss) in timing.items():
        print(f"{k}: {wall:.1f} s, peak RSS {rss:.0f} MB")
    print("| model | metric | full mean [95% CI] | sample mean [95% CI] | sample mean in full CI | full mean in sample CI |")
    print("|---|---|---|---|---|---|")
    for name, metric, fm, lo, hi, sm, sci, ok, covered in rows:
        print(f"| {name} | {metric} | {fm:.4f} [{lo:.4f}, {hi:.4f}] | {sm:.4f} [{sci[0]:.4f}, {sci[1]:.4f}] | {'yes' if ok else 'NO'} | {'yes' if covered else 'NO'} |")
    covered = sum(r[8] for r in rows)
    print(f"\n{inside} of {total} sample means inside the full run's intervals; "
          f"the full mean inside the sample's interval for {covered} of {total}")
    print(f"order by {main}: full {order_full}; sample {order_sample}; "
          f"{'same' if order_full == order_sample else 'DIFFERENT'}")
    return 0 if inside == total and order_full == order_sample else 1


if __name__ == "__main__":
    sys.exit(main())
