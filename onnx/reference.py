#!/usr/bin/env python3
"""Reference embedder: the article's way (PIL + numpy + onnxruntime), driven by onnx/models.toml.

embtui's Rust pipeline must agree with this one (cosine >= 0.999 per image); tests and
`just bench` compare the two. Usage:
  reference.py --model NAME --models-dir DIR --images DIR [--list FILE] --out OUT.npy [--batch 16]
Writes OUT.npy (float32 [N, dim], L2-normalised rows) and OUT.ids.txt (file names in row order).
"""
import argparse
import os
import sys
import time
import tomllib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "lanczos3": Image.Resampling.LANCZOS,
}


def load_entry(name, manifest=os.path.join(HERE, "models.toml")):
    with open(manifest, "rb") as f:
        for entry in tomllib.load(f)["model"]:
            if entry["name"] == name:
                return entry
    raise SystemExit(f"model {name!r} is not in {manifest}")


def resized_size(w, h, rule, to, rounding="nearest"):
    if rule == "exact":
        return to, to
    side = min(w, h) if rule == "shorter" else max(w, h)
    other = h if w == side else w
    v = int(to * other / side) if rounding == "floor" else round(other * (to / side))
    v = max(1, v)
    return (to, v) if w == side else (v, to)


def preprocess(path, e):
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    r = e["resize"]
    img = img.resize(resized_size(img.width, img.height, r["rule"], r["to"], r.get("round", "nearest")),
                     resample=RESAMPLE[r["interpolation"]])
    arr = np.asarray(img, dtype=np.float32)
    if "crop" in e:
        c = e["crop"]
        top, left = (arr.shape[0] - c) // 2, (arr.shape[1] - c) // 2
        arr = arr[top:top + c, left:left + c]
    if "pad" in e:
        p = e["pad"]
        out = np.zeros((p, p, 3), np.float32)
        top, left = (p - arr.shape[0]) // 2, (p - arr.shape[1]) // 2
        out[top:top + arr.shape[0], left:left + arr.shape[1]] = arr
        arr = out
    if e["channels"] == "bgr":
        arr = arr[:, :, ::-1]
    arr = (arr * e["rescale"] - np.array(e["mean"], np.float32)) / np.array(e["std"], np.float32)
    if e["layout"] == "nchw":
        arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr, dtype=np.float32)


def pool(out, how):
    if how == "none":
        return out
    if how == "cls":
        return out[:, 0, :]
    if how == "mean_tokens":
        return out.mean(axis=1)
    if how == "mean_spatial":
        return out.mean(axis=(2, 3))
    raise SystemExit(f"unknown pooling {how!r}")


def session(e, models_dir, threads=0):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(os.path.join(models_dir, e["file"]), opts,
                                providers=["CPUExecutionProvider"])


def embed(paths, e, sess, batch=16, logits=False):
    feats, logit_rows = [], []
    outputs = [e["output"]] + ([e["logits"]] if logits else [])
    for i in range(0, len(paths), batch):
        x = np.stack([preprocess(p, e) for p in paths[i:i + batch]])
        res = sess.run(outputs, {e["input"]: x})
        feats.append(pool(res[0], e["pooling"]))
        if logits:
            logit_rows.append(res[1])
    f = np.concatenate(feats).astype(np.float32)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return (f, np.concatenate(logit_rows)) if logits else f


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--list", help="file with one image name a line (default: every file, sorted)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    e = load_entry(args.model)
    names = open(args.list).read().split() if args.list else sorted(os.listdir(args.images))
    names = names[:args.limit] if args.limit else names
    sess = session(e, args.models_dir, args.threads)
    t0 = time.perf_counter()
    feats = embed([os.path.join(args.images, n) for n in names], e, sess, args.batch)
    secs = time.perf_counter() - t0
    np.save(args.out, feats)
    with open(os.path.splitext(args.out)[0] + ".ids.txt", "w") as f:
        f.write("".join(n + "\n" for n in names))
    print(f"{args.model}: {len(names)} images in {secs:.2f} s = {len(names) / secs:.1f} images/s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
