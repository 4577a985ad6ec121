#!/usr/bin/env python3
"""Which precision to run on a laptop: for each offline model, its fp32 graph, its fp16 copy
(`just fp16`) and an int8 copy made here with onnxruntime's dynamic quantizer (bench only; the
product stays free of Python), each embedded by embtui from an empty store on the 1,000 Flickr8k
photos: images/s end to end on this CPU, and the minimum cosine to the fp32 vectors.

    .venv/bin/python bench/variants.py [--images 1000] [--models a,b]   (`just bench-variants`)
Writes .bench/variants.json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BINARY = os.path.join(ROOT, "target", "release", "embtui")
PHOTOS = os.path.join(ROOT, "..", "shared", "data", "flickr8k-1k")
MODELS = os.path.join(ROOT, "models")


def int8_copies(names, manifest_path):
    """NAME-int8.onnx in models/ (dynamic int8 weights) and their entries in a bench manifest."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    zoo = {m["name"]: m for m in tomllib.load(open(os.path.join(ROOT, "onnx", "models.toml"), "rb"))["model"]}
    lines = ["# bench/variants.py: int8 copies of the offline models (not part of the product)\n"]
    for n in names:
        out = os.path.join(MODELS, f"{n}-int8.onnx")
        if not os.path.exists(out):
            quantize_dynamic(os.path.join(MODELS, f"{n}.onnx"), out, weight_type=QuantType.QUInt8)
        e = dict(zoo[n], name=f"{n}-int8", file=f"{n}-int8.onnx", description=zoo[n]["description"] + "; int8 (bench)")
        e.pop("logits", None)
        lines.append("[[model]]\n" + "".join(f"{k} = {json.dumps(v) if not isinstance(v, dict) else '{ ' + ', '.join(f'{a} = {json.dumps(b)}' for a, b in v.items()) + ' }'}\n" for k, v in e.items()))
    open(manifest_path, "w").write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--models", default="efficientnet-lite0,efficientnet-lite2,open-nsfw,dinov2-s14-imgfocus")
    args = ap.parse_args()
    names = args.models.split(",")
    missing = [n for n in names if not os.path.exists(os.path.join(MODELS, f"{n}-fp16.onnx"))]
    if missing:
        subprocess.run([sys.executable, os.path.join(ROOT, "onnx", "fp16.py"), ",".join(missing), "--models-dir", MODELS], check=True)
    os.makedirs(os.path.join(ROOT, ".bench"), exist_ok=True)
    manifest = os.path.join(ROOT, ".bench", "int8.toml")
    int8_copies(names, manifest)
    work = tempfile.mkdtemp(prefix="embtui-variants-")
    results = []
    try:
        for n in names:
            base = None
            for variant, model in (("fp32", n), ("fp16", f"{n}-fp16"), ("int8", f"{n}-int8")):
                npy = os.path.join(work, f"{model}.npy")
                res = subprocess.run([BINARY, "--manifest", manifest, "--store", os.path.join(work, f"store-{model}"),
                                      "--device", "cpu", "export", "--model", model, "--dataset", PHOTOS,
                                      "--limit", str(args.images), "--out", npy], capture_output=True, text=True, check=True)
                rate = float(re.findall(r"([0-9.]+) images/s", res.stderr)[-1])
                v = np.load(npy)
                base = v if base is None else base
                cos = float((v * base).sum(1).min())
                mb = os.path.getsize(os.path.join(MODELS, f"{model}.onnx")) / 1e6
                results.append({"model": n, "variant": variant, "images": len(v), "images_per_second": rate,
                                "min_cos_to_fp32": round(cos, 6), "file_mb": round(mb, 1)})
                print(f"{n:<22} {variant:<5} {rate:7.1f} images/s   min cos to fp32 {cos:.5f}   {mb:6.1f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    json.dump(results, open(os.path.join(ROOT, ".bench", "variants.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
