#!/usr/bin/env python3
"""`just bench`: embtui's benchmarks beside the article's Python pipeline and faiss.

Runs `embtui bench …` (Rust) and the Python/PIL/onnxruntime/faiss baselines on the same data,
writes .bench/results.json and prints the tables that docs/performance.md records.
Usage: bench/run.py [--data ../shared/data/flickr8k-1k] [--quick] [--images N] [--only embed,search,eval,tui,large]
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "onnx"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import reference  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "embtui")
MODELS = ["efficientnet-lite0", "efficientnet-lite2", "open-nsfw", "dinov2-s14-imgfocus"]


def embtui(*args):
    out = subprocess.run([BIN, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def python_embed(model, images, names, batch=16):
    """The article's way: PIL + numpy preprocessing, onnxruntime, a plain batched loop."""
    e = reference.load_entry(model)
    sess = reference.session(e, os.path.join(ROOT, "models"))
    paths = [os.path.join(images, n) for n in names]
    reference.embed(paths[:batch], e, sess, batch)  # warm-up
    t = time.perf_counter()
    reference.embed(paths, e, sess, batch)
    e2e = len(paths) / (time.perf_counter() - t)
    t = time.perf_counter()
    for p in paths:
        reference.preprocess(p, e)
    pre = len(paths) / (time.perf_counter() - t)
    return e2e, pre


def faiss_exact(vectors, nq):
    import faiss
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    t = time.perf_counter()
    index.search(vectors[:nq], 11)
    return nq / (time.perf_counter() - t)


def unit(n, d, seed=7):
    a = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "flickr8k-1k"))
    ap.add_argument("--quick", action="store_true", help="fewer images and sizes (a smoke run)")
    ap.add_argument("--images", type=int, default=0,
                    help="embedding section: the first N photos only (the issue's target: 300)")
    ap.add_argument("--only", default="embed,search,eval,tui,large",
                    help="comma-separated sections to run (default: all)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if not os.path.isdir(args.data):
        sys.exit(f"bench needs a Flickr8k-style dataset at {args.data} (pass --data)")
    limit = ["--limit", "200"] if args.quick else []
    images = os.path.join(args.data, "Images")
    names = sorted(os.listdir(images))[: 200 if args.quick else None]
    res = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%d"), "embed": [], "search": [], "eval": None, "tui": None,
           "large": None}
    print(f"machine: {res['machine']['cpu']}, {os.cpu_count()} cores", flush=True)
    if "embed" in only:
        embed_section(args, res, limit, images, names)
    if "search" in only:
        search_section(args, res, limit)
    if "eval" in only:
        eval_section(args, res, limit)
    if "tui" in only:
        print("\n== 6. TUI key press to frame (thumbnails cached)")
        res["tui"] = embtui("bench", "--json", "tui", "--dataset", args.data, *limit)
        print(f"p50 {res['tui']['p50_ms']:.2f} ms, p99 {res['tui']['p99_ms']:.2f} ms")
    if "large" in only:
        print("\n== 7. large photos (4032×3024): DCT-scaled decode vs exact vs the PIL loop")
        import large
        res["large"] = large.run(args.data, 8 if args.quick else 48, "efficientnet-lite0")
    os.makedirs(os.path.join(ROOT, ".bench"), exist_ok=True)
    path = os.path.join(ROOT, ".bench", "results.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
    print(f"\nwrote {path}")


def embed_section(args, res, limit, images, names):
    cores = os.cpu_count()
    if args.images:
        limit = ["--limit", str(args.images)]
        names = names[: args.images]
    print(f"\n== 1-3. embedding, images/s (batch 16, CPU, {len(names)} photos)")
    print("lanes: one single-threaded session per core (embtui's default on a CPU); "
          f"pipeline: --threads {cores}, one session fed by decoder threads")
    print(f"{'model':<22}{'lanes e2e':>10}{'pipeline':>9}{'infer only':>11}{'ratio':>7}{'1-session':>10}"
          f"{'python e2e':>11}{'speed-up':>9}{'prep/core':>10}{'PIL prep':>9}")
    for m in MODELS:
        common = ["embed", "--device", "cpu", "--model", m, "--dataset", args.data, *limit]
        r = embtui("bench", "--json", *common)
        p = embtui("bench", "--json", "--threads", str(cores), *common)
        py_e2e, py_pre = python_embed(m, images, names)
        r.update(python_end_to_end_images_per_s=py_e2e, python_preprocess_images_per_s_per_core=py_pre,
                 pipeline_run=p)
        res["embed"].append(r)
        print(f"{m:<22}{r['end_to_end_images_per_s']:>10.1f}{p['end_to_end_images_per_s']:>9.1f}"
              f"{r['inference_only_images_per_s']:>11.1f}{r['ratio']:>7.2f}{p['inference_only_images_per_s']:>10.1f}"
              f"{py_e2e:>11.1f}{r['end_to_end_images_per_s'] / py_e2e:>8.2f}x"
              f"{r['decode_preprocess_images_per_s_per_core']:>10.1f}{py_pre:>9.1f}", flush=True)


def search_section(args, res, limit):
    print("\n== 4. search: exact top-10 (queries/s) vs faiss IndexFlatIP; arroy build, latency, recall@10")
    sizes = [(30000, 384)] if args.quick else [(30000, 384), (30000, 768), (30000, 1280),
                                               (100000, 384), (100000, 768), (100000, 1280)]
    store = tempfile.mkdtemp(prefix="embtui-bench-store")
    try:
        real = [embtui("bench", "--json", "search-real", "--device", "cpu", "--model", m, "--store", store,
                       "--dataset", args.data, *limit) for m in MODELS]
    finally:
        shutil.rmtree(store, ignore_errors=True)
    for r in real:
        tmp = tempfile.mkdtemp()
        try:
            out = os.path.join(tmp, "v.npy")
            model = r["vectors"].rsplit("-", 1)[0]
            subprocess.run([BIN, "export", "--device", "cpu", "--model", model, "--dataset", args.data,
                            "--out", out, *limit], check=True, capture_output=True)
            r["faiss_queries_per_s"] = faiss_exact(np.load(out), r["queries"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    synth = []
    for n, d in sizes:
        r = embtui("bench", "--json", "search", "--n", str(n), "--dim", str(d), "--queries", "1000")
        r["faiss_queries_per_s"] = faiss_exact(unit(n, d), r["queries"])
        synth.append(r)
    res["search"] = real + synth
    print(f"{'vectors':<34}{'exact q/s':>10}{'faiss q/s':>10}{'build s':>9}  ann search_k: p50 ms / p99 ms / recall@10")
    for r in res["search"]:
        ann = "  ".join(f"{a['search_k']}: {a['p50_ms']:.2f}/{a['p99_ms']:.2f}/{a['recall@10']:.3f}" for a in r["ann"])
        print(f"{r['vectors']:<34}{r['exact_queries_per_s']:>10.0f}{r['faiss_queries_per_s']:>10.0f}"
              f"{r['arroy_build_seconds']:>9.2f}  {ann}", flush=True)


def eval_section(args, res, limit):
    print("\n== 5. full eval of the four offline models (fresh store), wall time")
    store = tempfile.mkdtemp(prefix="embtui-bench-eval")
    try:
        t = time.perf_counter()
        subprocess.run([BIN, "eval", "--device", "cpu", "--json", "--store", store, "--dataset", args.data,
                        "--model", ",".join(MODELS), *limit], check=True, capture_output=True)
        res["eval"] = {"seconds": time.perf_counter() - t, "models": len(MODELS)}
    finally:
        shutil.rmtree(store, ignore_errors=True)
    print(f"eval: {res['eval']['seconds']:.1f} s")


if __name__ == "__main__":
    main()
