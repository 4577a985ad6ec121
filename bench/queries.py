#!/usr/bin/env python3
"""Sampled queries against the full run at Flickr30k size: `eval` with every query and with
`--queries 5000 --seed S` on the same cached store, then, per model and metric, whether the
sample's mean falls inside the full run's 95% interval (and the full mean inside the sample's),
and whether the models keep their order; exit 1 if a pair of models the full run separates
(95% intervals apart) swaps places in a sample.

Each eval is a child process; wall time and peak RSS come from its rusage (os.wait4).
Usage: bench/queries.py [--dataset .bench/f30k/token] [--store .bench/scale-store]
                        [--queries 5000] [--seeds 0,1,2,3] [--models a,b] [--compare FULL.json SAMPLE.json]
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


def separated(full, main):
    """Pairs of models whose full-run 95% intervals on `main` do not overlap, best first."""
    ms = sorted(full["models"], key=lambda m: -m["metrics"][main]["mean"])
    return [(a["name"], b["name"]) for i, a in enumerate(ms) for b in ms[i + 1:]
            if a["metrics"][main]["ci95"][0] > b["metrics"][main]["ci95"][1]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(ROOT, ".bench", "f30k", "token"))
    ap.add_argument("--store", default=os.path.join(ROOT, ".bench", "scale-store"))
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--seeds", default="0,1,2,3", help="one sampled run per seed")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "embtui"))
    ap.add_argument("--compare", nargs=2, metavar=("FULL", "SAMPLE"))
    a = ap.parse_args()
    timing = {}
    if a.compare:
        full_path, samples = a.compare[0], {"given": a.compare[1]}
    else:
        out = os.path.dirname(a.dataset.rstrip("/"))
        full_path = os.path.join(out, "full.json")
        common = ["--dataset", a.dataset, "--store", a.store, "--model", a.models]
        timing["full"] = run_eval(a.bin, common, full_path)
        samples = {}
        for seed in a.seeds.split(","):
            samples[seed] = os.path.join(out, f"sample-{seed}.json")
            timing[f"seed {seed}"] = run_eval(
                a.bin, [*common, "--queries", str(a.queries), "--seed", seed], samples[seed])
    full = json.load(open(full_path))
    for k, (wall, rss) in timing.items():
        print(f"{k}: {wall:.1f} s, peak RSS {rss:.0f} MB")
    broken = 0
    for seed, path in samples.items():
        sample = json.load(open(path))
        rows, inside, total, order_full, order_sample, main = compare(full, sample)
        q = sample["dataset"].get("query_sample") or {}
        print(f"\n## seed {seed}: {q.get('size')} of {q.get('of')} queries; full: {full['dataset']['queries']}")
        print("| model | metric | full mean [95% CI] | sample mean [95% CI] | sample mean in full CI | full mean in sample CI |")
        print("|---|---|---|---|---|---|")
        for name, metric, fm, lo, hi, sm, sci, ok, covered in rows:
            print(f"| {name} | {metric} | {fm:.4f} [{lo:.4f}, {hi:.4f}] | {sm:.4f} [{sci[0]:.4f}, {sci[1]:.4f}] | {'yes' if ok else 'NO'} | {'yes' if covered else 'NO'} |")
        covered = sum(r[8] for r in rows)
        pairs = separated(full, main)
        rank = {n: i for i, n in enumerate(order_sample)}
        kept = [p for p in pairs if rank[p[0]] < rank[p[1]]]
        broken += len(pairs) - len(kept)
        print(f"\nseed {seed}: the full mean inside the sample's interval for {covered} of {total}; "
              f"the sample mean inside the full run's interval for {inside} of {total}")
        print(f"seed {seed}: order by {main}: full {order_full}; sample {order_sample}: "
              f"{'same' if order_full == order_sample else 'different'}; "
              f"{len(kept)} of {len(pairs)} pairs the full run separates (intervals apart) kept")
    return 0 if broken == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
