#!/usr/bin/env python3
"""COCO at full size, measured, and the curve against N: parse the two caption files, check the
store (vectors cached), then at each size N (a --sample of the COCO-size set, the whole set last)
`eval --queries 5000` of the four models and an all-queries eval of one model; then the TUI on
the whole set (first frame, first neighbours, metrics ready). Wall time and peak RSS per step.

Every embtui command is a child process; its peak RSS is read from its own rusage (os.wait4).
The TUI is timed in a real terminal (tmux), polling the screen every 50 ms.
Results land in OUT/coco-bench.json and print as the Markdown tables of docs/scaling.md.

Usage: bench/coco.py [--coco .bench/coco-matched] [--store .bench/scale-store] [--sizes 10000,31783,123287]
                     [--full-model dinov2-s14-imgfocus] [--full-at 10000,31783,123287]
                     [--skip-tui] [--bin target/release/embtui]
Make the set first: bench/make_flickr30k.py .bench/f30k --matched, index it, then
bench/make_coco.py .bench/coco-matched --matched and index that (`just bench-coco` does both; see
docs/scaling.md). With a --links set (photo files repeating the 31,783) nothing new is embedded.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from scale import MODELS, machine, run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def step(res, key, cmd, out=None, log=None):
    """Runs one embtui command, records wall and peak RSS under res[key], prints a line."""
    stdout = open(out, "w") if out else subprocess.DEVNULL
    wall, rss, rc = run(cmd, stdout=stdout, log=log)
    if out:
        stdout.close()
    if rc != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {rc}" + (f"; see {log}" if log else ""))
    res[key] = {"seconds": round(wall, 1), "peak_rss_mb": round(rss)}
    print(f"{key:34} {wall:8.1f} s  peak RSS {rss:6.0f} MB", flush=True)
    return res[key]


def tui(binary, dataset, store, models, session="embtui-bench-coco"):
    """Seconds from launch to the first frame, to the first query's neighbours, and to the
    metrics being ready, in a 200 x 60 tmux terminal."""
    cmd = " ".join(shlex.quote(x) for x in [binary, "browse", "--dataset", dataset, "--store", store,
                                             "--device", "cpu", "--model", models])
    subprocess.run(["tmux", "kill-session", "-t", f"={session}"], capture_output=True)
    t0 = time.monotonic()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60", cmd], check=True)
    marks, screen = {}, ""
    milestones = [("first_frame", lambda s: "│" in s),
                  ("neighbours", lambda s: "rel 0." in s),
                  ("ready", lambda s: " ready " in s)]
    try:
        while len(marks) < len(milestones) and time.monotonic() - t0 < 1800:
            # `=name:` is this session's current pane (a bare `=name` names no pane).
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", f"={session}:"],
                                    capture_output=True, text=True).stdout
            for name, seen in milestones:
                if name not in marks and seen(screen):
                    marks[name] = round(time.monotonic() - t0, 2)
            time.sleep(0.05)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", f"={session}:", "q"], capture_output=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", f"={session}"], capture_output=True)
    if len(marks) < len(milestones):
        sys.exit(f"the TUI did not reach {[n for n, _ in milestones if n not in marks]}; last screen:\n{screen}")
    return marks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", default=os.path.join(ROOT, ".bench", "coco-matched"))
    ap.add_argument("--store", default=os.path.join(ROOT, ".bench", "scale-store"))
    ap.add_argument("--sizes", default="10000,31783,123287")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--full-model", default="dinov2-s14-imgfocus")
    ap.add_argument("--full-at", default="10000,31783,123287",
                    help="sizes at which the all-queries eval of --full-model runs")
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--skip-tui", action="store_true")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "embtui"))
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} is missing: run `just build` first")
    if not os.path.isdir(os.path.join(a.coco, "annotations")):
        sys.exit(f"{a.coco} has no annotations/: run bench/make_coco.py first")
    logs = os.path.join(a.coco, "logs")
    os.makedirs(logs, exist_ok=True)
    res = {"machine": machine(), "models": a.models.split(","), "full_model": a.full_model,
           "queries": a.queries, "sizes": {}}
    print(f"machine: {res['machine']}", flush=True)
    parsed = os.path.join(logs, "dataset.json")
    step(res, "parse", [a.bin, "dataset", "--dataset", a.coco, "--json"], out=parsed)
    total = json.load(open(parsed))["images"]
    res["images"] = total
    # Embeds the caption vectors hybrid relevance needs once (cached in the store), so that
    # the first size's figures do not carry it.
    step(res, "warm-up: captions embedded once", [a.bin, "eval", "--dataset", a.coco, "--store", a.store,
         "--device", "cpu", "--model", a.models.split(",")[0], "--queries", "100", "--json"],
         log=os.path.join(logs, "warm-up.log"))
    full_at = {int(x) for x in a.full_at.split(",") if x}
    sizes = [int(x) for x in a.sizes.split(",") if x]  # --sizes "" measures the TUI alone
    for n in sizes:
        r = res["sizes"][str(n)] = {}
        sel = ["--dataset", a.coco, "--store", a.store, "--device", "cpu"]
        if n < total:
            sel += ["--sample", str(n), "--seed", "0"]
        step(r, f"index (cache check), N={n}", [a.bin, "index", *sel, "--model", a.models],
             log=os.path.join(logs, f"index-{n}.log"))
        report = os.path.join(logs, f"sample-{n}.json")
        step(r, f"eval --queries {a.queries}, 4 models, N={n}",
             [a.bin, "eval", *sel, "--model", a.models, "--queries", str(a.queries), "--json"],
             out=report, log=os.path.join(logs, f"sample-{n}.log"))
        r["sample_ndcg10"] = {m["name"]: round(m["metrics"]["ndcg@10"]["mean"], 4)
                              for m in json.load(open(report))["models"]}
        if n in full_at:
            report = os.path.join(logs, f"full-{n}.json")
            step(r, f"eval --queries all, {a.full_model}, N={n}",
                 [a.bin, "eval", *sel, "--model", a.full_model, "--queries", "all", "--json"],
                 out=report, log=os.path.join(logs, f"full-{n}.log"))
    if not a.skip_tui:
        res["tui"] = tui(a.bin, a.coco, a.store, a.models)
        print(f"TUI on {total} images: {res['tui']}", flush=True)
    with open(os.path.join(a.coco, "coco-bench.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(f"\nparse (both caption files): {res['parse']['seconds']} s, {res['parse']['peak_rss_mb']} MB")
    print(f"| N | index (cache check) | eval --queries {a.queries}, 4 models | all queries, {a.full_model} |")
    print("|---:|---:|---:|---:|")
    for n, r in res["sizes"].items():
        cells = []
        for key in r:
            if isinstance(r[key], dict) and "seconds" in r[key]:
                cells.append(f"{r[key]['seconds']:.1f} s, {r[key]['peak_rss_mb'] / 1024:.2f} GB")
        while len(cells) < 3:
            cells.append("–")
        print(f"| {int(n):,} | " + " | ".join(cells) + " |")
    if "tui" in res:
        t = res["tui"]
        print(f"\nTUI: first frame {t['first_frame']} s, neighbours {t['neighbours']} s, metrics ready {t['ready']} s")


if __name__ == "__main__":
    main()
