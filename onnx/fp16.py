#!/usr/bin/env python3
"""An fp16 copy of installed models: `just fp16 MODEL[,MODEL…]`.

For each model of the zoo (onnx/models.toml) or of MODELS_DIR/manifest.toml, writes
MODELS_DIR/MODEL-fp16.onnx (weights and arithmetic in float16, inputs and outputs float32,
through export_hf.half_precision), its manifest entry (the same preprocessing, `-fp16` in the
name) and its sha256 with the parity against the fp32 graph in models.lock.json. Then
`embtui eval --model MODEL,MODEL-fp16` compares the two on real photos. fp16 pays off on CUDA;
on the CPU ONNX Runtime runs the ops that have no float16 kernel in float32.
"""
import argparse
import os
import sys
import tomllib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_hf  # noqa: E402


def entries(models_dir):
    """The zoo's entries by name, the user manifest's overriding them."""
    with open(os.path.join(HERE, "models.toml"), "rb") as f:
        found = {m["name"]: m for m in tomllib.load(f)["model"]}
    user = os.path.join(models_dir, "manifest.toml")
    if os.path.exists(user):
        with open(user, "rb") as f:
            found.update({m["name"]: m for m in tomllib.load(f).get("model", [])})
    return found


def convert(name, models_dir):
    """Writes NAME-fp16; returns its min cosine with the fp32 graph on seeded inputs."""
    zoo = entries(models_dir)
    if name not in zoo:
        export_hf.fail(f"`{name}` is not a model of the zoo or of {models_dir}/manifest.toml",
                       f"choose one of: {', '.join(sorted(zoo))}")
    e = zoo[name]
    if name.endswith("-fp16"):
        export_hf.fail(f"`{name}` is already an fp16 copy", f"convert `{name[:-5]}` instead")
    src = os.path.join(models_dir, e["file"])
    if not os.path.exists(src):
        export_hf.fail(f"{src} is missing", "run `just setup` (or `just export-hf MODEL`) first")
    stem = f"{name}-fp16"
    shape = (export_hf.PARITY_INPUTS, 3, e["size"], e["size"]) if e["layout"] == "nchw" \
        else (export_hf.PARITY_INPUTS, e["size"], e["size"], 3)
    parity_input = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with export_hf.private_folder(models_dir, stem) as tmp:
        out = os.path.join(tmp, f"{stem}.onnx")
        parity = export_hf.half_precision(src, out, parity_input)
        files = [f"{stem}.onnx"] + ([f"{stem}.onnx.data"] if os.path.exists(out + ".data") else [])
        export_hf.land(tmp, models_dir, files)
    entry = dict(e, name=stem, file=f"{stem}.onnx",
                 description=f"{e.get('description', name)}; fp16 copy (vs fp32: min cosine {parity:.5f} "
                             f"on {export_hf.PARITY_INPUTS} seeded inputs)")
    export_hf.write_manifest(models_dir, entry)
    export_hf.record_lock(models_dir, stem, files, parity)
    size = sum(os.path.getsize(os.path.join(models_dir, f)) for f in files)
    print(f"{stem}: {os.path.join(models_dir, files[0])} ({size / 1e6:.1f} MB, fp32 {os.path.getsize(src) / 1e6:.1f} MB); "
          f"parity with {name}: min cosine {parity:.6f} on {export_hf.PARITY_INPUTS} seeded N(0, 1) inputs")
    return parity


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", help="comma-separated model names")
    ap.add_argument("--models-dir", default="models")
    args = ap.parse_args()
    for name in [n for n in args.models.split(",") if n]:
        convert(name, args.models_dir)


if __name__ == "__main__":
    main()
