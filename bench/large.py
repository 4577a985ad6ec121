#!/usr/bin/env python3
"""`just bench-large`: 12-megapixel phone-size photos, embtui (DCT-scaled decode and exact)
beside the PIL + numpy + onnxruntime loop (full decode, no draft), and their parity.

The photos are generated here (never committed): each 4032×3024 JPEG (quality 90) is an 8×8
mosaic of 64 different real Flickr photos at their own resolution, so it has a phone photo's
detail and every photo is unique. Prints images/s per path, the speed-up, and the cosine
between the DCT-scaled and the exact path per photo (embtui export of each).
Usage: bench/large.py [--data ../shared/data/flickr8k-1k] [--n 48] [--model efficientnet-lite0]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "onnx"))
import reference  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "embtui")
W, H, GRID = 4032, 3024, 8


def make_photos(src, out, n):
    names = sorted(os.listdir(src))
    os.makedirs(out, exist_ok=True)
    tw, th = W // GRID, H // GRID
    for i in range(n):
        canvas = Image.new("RGB", (W, H))
        for j in range(GRID * GRID):
            with Image.open(os.path.join(src, names[(i * GRID * GRID + j) % len(names)])) as im:
                tile = im.convert("RGB").resize((tw, th), Image.BICUBIC)
            canvas.paste(tile, ((j % GRID) * tw, (j // GRID) * th))
        canvas.save(os.path.join(out, f"large_{i:03d}.jpg"), quality=90)


def embtui_json(*args):
    out = subprocess.run([BIN, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def export(folder, model, mode, tmp):
    store = os.path.join(tmp, f"store-{mode}")
    out = os.path.join(tmp, f"{mode}.npy")
    subprocess.run([BIN, "--decode", mode, "--store", store, "export", "--device", "cpu", "--model", model,
                    "--dataset", folder, "--out", out], check=True, capture_output=True)
    return np.load(out)


def pil_loop(folder, model):
    e = reference.load_entry(model)
    sess = reference.session(e, os.path.join(ROOT, "models"))
    paths = sorted(os.path.join(folder, p) for p in os.listdir(folder))
    reference.embed(paths[:4], e, sess, 16)  # warm-up
    t = time.perf_counter()
    reference.embed(paths, e, sess, 16)
    return len(paths) / (time.perf_counter() - t)


def run(data, n, model):
    tmp = tempfile.mkdtemp(prefix="embtui-large")
    try:
        folder = os.path.join(tmp, "photos")
        t = time.perf_counter()
        make_photos(os.path.join(data, "Images"), folder, n)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) / n / 1e6
        print(f"{n} photos {W}×{H}, {size:.1f} MB each on average, made in {time.perf_counter() - t:.0f} s", flush=True)
        res = {"photos": n, "width": W, "height": H, "mean_mb": size, "model": model}
        for mode in ["fast", "exact"]:
            r = embtui_json("--decode", mode, "bench", "--json", "embed", "--device", "cpu", "--model", model,
                            "--dataset", folder)
            res[mode] = r
            print(f"embtui --decode {mode:<5}: end to end {r['end_to_end_images_per_s']:.2f} img/s, "
                  f"decode+preprocess {r['decode_preprocess_images_per_s_per_core']:.2f} img/s per core", flush=True)
        res["pil_images_per_s"] = pil_loop(folder, model)
        print(f"PIL + onnxruntime loop (full decode, no draft): {res['pil_images_per_s']:.2f} img/s")
        res["speedup_fast_vs_pil"] = res["fast"]["end_to_end_images_per_s"] / res["pil_images_per_s"]
        res["speedup_exact_vs_pil"] = res["exact"]["end_to_end_images_per_s"] / res["pil_images_per_s"]
        print(f"speed-up vs PIL: fast {res['speedup_fast_vs_pil']:.2f}x, exact {res['speedup_exact_vs_pil']:.2f}x")
        a, b = export(folder, model, "fast", tmp), export(folder, model, "exact", tmp)
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        res["parity_cosine"] = {"min": float(cos.min()), "mean": float(cos.mean())}
        print(f"parity, cosine fast vs exact per photo: min {cos.min():.5f}, mean {cos.mean():.5f}")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "flickr8k-1k"))
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.data, "Images")):
        sys.exit(f"bench-large needs Flickr8k-style photos in {args.data}/Images (pass --data)")
    res = run(args.data, args.n, args.model)
    os.makedirs(os.path.join(ROOT, ".bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".bench", "large.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(f"wrote {os.path.join(ROOT, '.bench', 'large.json')}")


if __name__ == "__main__":
    main()
