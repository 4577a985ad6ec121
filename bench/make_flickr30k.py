#!/usr/bin/env python3
"""A Flickr30k-shaped dataset for scale runs: N images (31,783 by default) with 5 real captions
each, in every distribution format embtui reads.

Captions: the 40,460 real Flickr8k captions (../shared/data/captions-only/Flickr8k.token.txt),
recycled in order (caption set i % 8,092 for image i), so each set serves ~4 images.
Photos: unique variants (crop, flip, size, JPEG quality) of the 1,000 real Flickr8k photos; a
caption set whose own photo is among them gets variants of that photo, the others a photo
chosen by a fixed seed. Every file's bytes differ, so nothing is deduplicated by content.
With --matched only the caption sets whose own photo is here are used (1,000 of them, ~32
images each), so every image shows what its captions say: there the models differ, as on real
photos; without it ~88 % of the images carry captions of another photo and every model scores
near chance (a set for timing, not for comparing models).

Layout (one image folder, linked from each format's folder):
  OUT/images/<id>.jpg
  OUT/token/       results_20130124.token + flickr30k_images -> ../images
  OUT/kaggle/      results.csv (with the known broken row) + flickr30k_images/flickr30k_images -> ../../images
  OUT/karpathy/    dataset_flickr30k.json (+ splits) + flickr30k_images -> ../images
  OUT/hf/          flickr_annotations_30k.csv + flickr30k-images -> ../images
Usage: bench/make_flickr30k.py OUT [--n 31783] [--matched] [--captions FILE] [--photos DIR]
"""
import argparse
import csv
import json
import os
import random
import sys

from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")


def caption_sets(path):
    sets = {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        key, _, cap = line.partition("\t") if "\t" in line else line.partition(" ")
        sets.setdefault(key.split("#")[0], []).append(cap.strip())
    return [(k, v[:5]) for k, v in sorted(sets.items()) if len(v) >= 5]


def variant(src, i, rng):
    """A unique small JPEG of photo `src`: random crop 70-100%, maybe mirrored, 160-400 px."""
    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = im.size
        f = rng.uniform(0.7, 1.0)
        cw, ch = int(w * f), int(h * f)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        im = im.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        side = rng.randint(160, 400)
        im.thumbnail((side, side))
        return im, rng.randint(70, 92)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=31783)
    ap.add_argument("--captions", default=os.path.join(SHARED, "captions-only", "Flickr8k.token.txt"))
    ap.add_argument("--photos", default=os.path.join(SHARED, "flickr8k-1k", "Images"))
    ap.add_argument("--matched", action="store_true",
                    help="only caption sets whose own photo is in --photos (every image matches its captions)")
    args = ap.parse_args()
    for p in (args.captions, args.photos):
        if not os.path.exists(p):
            sys.exit(f"needs {p} (../shared/data)")
    sets = caption_sets(args.captions)
    photos = sorted(os.listdir(args.photos))
    have = set(photos)
    if args.matched:
        sets = [s for s in sets if s[0] in have]
        if not sets:
            sys.exit(f"--matched: no caption set of {args.captions} names a photo in {args.photos}")
    rng = random.Random(30)
    images = os.path.join(args.out, "images")
    os.makedirs(images, exist_ok=True)
    rows = []  # (image name, captions)
    for i in range(args.n):
        key, caps = sets[i % len(sets)]
        src = key if key in have else photos[rng.randrange(len(photos))]
        name = f"{10_000_000 + i}.jpg"
        path = os.path.join(images, name)
        if not os.path.exists(path):
            im, q = variant(os.path.join(args.photos, src), i, rng)
            im.save(path, quality=q)
        else:
            rng.random()
        rows.append((name, caps))
        if i % 5000 == 0:
            print(f"{i}/{args.n}", file=sys.stderr)
    write_formats(args.out, rows)


def link(target, at):
    os.makedirs(os.path.dirname(at), exist_ok=True)
    if not os.path.lexists(at):
        os.symlink(target, at)


def write_formats(out, rows):
    splits = ["train"] * (len(rows) - 2000) + ["val"] * 1000 + ["test"] * 1000
    d = os.path.join(out, "token")
    link("../images", os.path.join(d, "flickr30k_images"))
    with open(os.path.join(d, "results_20130124.token"), "w", encoding="utf-8") as f:
        for name, caps in rows:
            for j, c in enumerate(caps):
                f.write(f"{name}#{j}\t{c}\n")
    d = os.path.join(out, "kaggle")
    link("../../images", os.path.join(d, "flickr30k_images", "flickr30k_images"))
    with open(os.path.join(d, "flickr30k_images", "results.csv"), "w", encoding="utf-8") as f:
        f.write("image_name| comment_number| comment\n")
        for i, (name, caps) in enumerate(rows):
            for j, c in enumerate(caps):
                # The real file's one broken row: a pipe missing after the comment number.
                sep = "   " if (i, j) == (len(rows) // 2, 4) else "| "
                f.write(f"{name}| {j}{sep}{c}\n")
    d = os.path.join(out, "karpathy")
    link("../images", os.path.join(d, "flickr30k_images"))
    images = [{"filename": n, "imgid": i, "split": s, "sentids": list(range(5 * i, 5 * i + 5)),
               "sentences": [{"raw": c, "tokens": c.lower().split(), "imgid": i, "sentid": 5 * i + j} for j, c in enumerate(caps)]}
              for i, ((n, caps), s) in enumerate(zip(rows, splits))]
    with open(os.path.join(d, "dataset_flickr30k.json"), "w", encoding="utf-8") as f:
        json.dump({"images": images, "dataset": "flickr30k"}, f)
    d = os.path.join(out, "hf")
    link("../images", os.path.join(d, "flickr30k-images"))
    with open(os.path.join(d, "flickr_annotations_30k.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["raw", "sentids", "split", "filename", "img_id"])
        for i, ((n, caps), s) in enumerate(zip(rows, splits)):
            w.writerow([json.dumps(caps), json.dumps(list(range(5 * i, 5 * i + 5))), s, n, i])


if __name__ == "__main__":
    main()
