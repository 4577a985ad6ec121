#!/usr/bin/env python3
"""What pulling the article's Hub models costs, measured here without Hugging Face: the same
architectures at full size (CLIP ViT-B/32, DINOv2 ViT-B/14), randomly initialised, laid out as
the transformers.js repos (Xenova/clip-vit-base-patch32, Xenova/dinov2-base) and pulled by
`embtui models pull` from the Hub stand-in (tests/hub/server.py). Reports each graph's size
(what a download of the fp32 files costs) and embtui's end-to-end images/s on N real photos.

    .venv-export/bin/python bench/hub_arch.py [--images 300]   (`just bench-hub`)
Writes .bench/hub_arch.json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "hub"))
sys.path.insert(0, os.path.join(ROOT, "onnx"))
import export_hf  # noqa: E402
from test_hub import BINARY, PHOTOS, Server  # noqa: E402


def build(root):
    import torch
    import transformers as T

    torch.manual_seed(0)
    repos = {}
    clip = T.CLIPModel(T.CLIPConfig()).eval()  # ViT-B/32 image tower, 512-d projection
    repo = os.path.join(root, "bench", "clip-vit-base-patch32")
    os.makedirs(os.path.join(repo, "onnx"))
    T.CLIPImageProcessor().save_pretrained(repo)
    json.dump(clip.config.to_dict(), open(os.path.join(repo, "config.json"), "w"))

    class Vision(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = clip

        def forward(self, pixel_values):
            return export_hf.features(self.m.get_image_features(pixel_values=pixel_values))

    with torch.no_grad():
        export_hf.onnx_export(Vision().eval(), (torch.zeros(1, 3, 224, 224),), os.path.join(repo, "onnx", "vision_model.onnx"),
                              input_names=["pixel_values"], output_names=["image_embeds"],
                              dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17, do_constant_folding=True)
    repos["bench/clip-vit-base-patch32"] = "CLIP ViT-B/32 (as Xenova/clip-vit-base-patch32)"
    dino = T.Dinov2Model(T.Dinov2Config(image_size=518, patch_size=14)).eval()  # ViT-B/14
    repo = os.path.join(root, "bench", "dinov2-base")
    os.makedirs(os.path.join(repo, "onnx"))
    T.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True,
                        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(repo)
    json.dump(dino.config.to_dict(), open(os.path.join(repo, "config.json"), "w"))

    class Dino(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = dino

        def forward(self, pixel_values):
            out = self.m(pixel_values)
            return out.last_hidden_state, out.pooler_output

    with torch.no_grad():
        export_hf.onnx_export(Dino().eval(), (torch.zeros(1, 3, 224, 224),), os.path.join(repo, "onnx", "model.onnx"),
                              input_names=["pixel_values"], output_names=["last_hidden_state", "pooler_output"],
                              dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17, do_constant_folding=True)
    repos["bench/dinov2-base"] = "DINOv2 ViT-B/14 (as Xenova/dinov2-base)"
    return repos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=300)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="embtui-bench-hub-")
    try:
        repos = build(os.path.join(work, "repos"))
        photos = os.path.join(work, "photos")
        os.makedirs(photos)
        for n in sorted(os.listdir(PHOTOS))[: args.images]:
            os.symlink(os.path.join(PHOTOS, n), os.path.join(photos, n))
        server = Server(os.path.join(work, "repos"), os.path.join(work, "log.jsonl"))
        env = dict(os.environ, HF_ENDPOINT=server.url, HF_HOME=os.path.join(work, "hf"), NO_COLOR="1")
        results = []
        try:
            for repo, what in repos.items():
                t = time.time()
                pull = subprocess.run([BINARY, "--models-dir", os.path.join(work, "models"), "models", "pull", repo, "--json"],
                                      env=env, capture_output=True, text=True, check=True)
                pull_s = time.time() - t
                files = [f for f, _ in json.loads(pull.stdout)["files"]]
                size = sum(os.path.getsize(os.path.join(work, "repos", repo, f)) for f in files)
                res = subprocess.run([BINARY, "--models-dir", os.path.join(work, "models"), "--store", os.path.join(work, "store"),
                                      "--device", "cpu", "export", "--model", repo, "--dataset", photos,
                                      "--out", os.path.join(work, "x.npy")], env=env, capture_output=True, text=True, check=True)
                rate = float(re.findall(r"([0-9.]+) images/s", res.stderr)[-1])
                results.append({"model": what, "repo": repo, "bytes": size, "pull_seconds": round(pull_s, 2),
                                "images": args.images, "images_per_second": rate})
                print(f"{what}: files {size / 1e6:.0f} MB, pull from loopback {pull_s:.1f} s, "
                      f"embtui export {rate:.1f} images/s on {args.images} photos", flush=True)
        finally:
            server.stop()
        os.makedirs(os.path.join(ROOT, ".bench"), exist_ok=True)
        json.dump(results, open(os.path.join(ROOT, ".bench", "hub_arch.json"), "w"), indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
