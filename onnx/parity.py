#!/usr/bin/env python3
"""Compare embtui's embeddings with the Python reference: parity.py MODEL EMBTUI.npy IMAGES_DIR MODELS_DIR.

Reads EMBTUI.npy and EMBTUI.ids.txt (written by `embtui export`), embeds the same images with
reference.py, prints one JSON line: {"model", "n", "min_cos", "mean_cos", "worst"}.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


def main():
    model, npy, images, models_dir = sys.argv[1:5]
    ours = np.load(npy)
    ids = open(os.path.splitext(npy)[0] + ".ids.txt").read().split("\n")[:-1]
    e = reference.load_entry(model)
    ref = reference.embed([os.path.join(images, i) for i in ids], e, reference.session(e, models_dir))
    cos = (ours * ref).sum(axis=1)
    worst = int(cos.argmin())
    print(json.dumps({"model": model, "n": len(ids), "min_cos": float(cos.min()),
                      "mean_cos": float(cos.mean()), "worst": ids[worst]}))


if __name__ == "__main__":
    main()
