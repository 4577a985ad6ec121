#!/usr/bin/env python3
"""A COCO-shaped dataset at full size for scale runs: 123,287 photos (train2017 118,287 +
val2017 5,000) with 616,767 captions, in COCO's own layout and JSON format.

  OUT/annotations/captions_train2017.json, captions_val2017.json
      ({"info", "licenses", "images": [{"id", "file_name", "height", "width", …}],
        "annotations": [{"id", "image_id", "caption"}]}, as COCO 2017 ships them)
  OUT/train2017/<12-digit id>.jpg, OUT/val2017/<12-digit id>.jpg

Captions: the 40,460 real Flickr8k captions recycled as bench/make_flickr30k.py does (caption
set i % 8,092 for photo i, 5 each); 332 photos get a 6th (the next set's first caption), so
the total is COCO's 616,767. Photos: photo i < --reuse (31,783 by default) is a link to photo
i of a Flickr30k-shaped set made by make_flickr30k.py (same bytes, same captions: vectors
already in a store are reused by content); the others are new unique variants (crop, flip,
size, JPEG quality) of the 1,000 real Flickr8k photos. Every file's bytes differ.
With --links the photos past --reuse are links too (photo i -> Flickr30k photo i mod --reuse):
123,287 files over 31,783 distinct photos, so a store that holds the Flickr30k-size set's
vectors needs no new embedding. For timing eval at COCO size (its cost depends on the number
of images, the vector width and the captions, not on whether photos repeat); metric values on
such a set say nothing about the models.
With --matched the caption sets are those whose own photo is here (1,000), as in
make_flickr30k.py --matched, and every new photo is a variant of its own set's photo: made over a
--matched Flickr30k-size set, photo i and its link target carry the same captions, every photo
shows what its captions say, and metric values compare the models.

Usage: bench/make_coco.py OUT [--n 123287] [--val 5000] [--f30k .bench/f30k] [--reuse 31783]
                          [--links | --matched]
"""
import argparse
import json
import os
import random
import sys

from make_flickr30k import SHARED, caption_sets, variant

EXTRA_CAPTIONS = 332  # 616,767 - 5 x 123,287


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=123287)
    ap.add_argument("--val", type=int, default=5000)
    ap.add_argument("--f30k", default=os.path.join(os.path.dirname(__file__), "..", ".bench", "f30k"))
    ap.add_argument("--reuse", type=int, default=31783)
    ap.add_argument("--links", action="store_true",
                    help="photos past --reuse link to Flickr30k photo i mod --reuse (no new photos)")
    ap.add_argument("--matched", action="store_true",
                    help="only caption sets whose own photo is in --photos, as make_flickr30k.py --matched "
                         "(every photo shows what its captions say, so the models differ)")
    ap.add_argument("--captions", default=os.path.join(SHARED, "captions-only", "Flickr8k.token.txt"))
    ap.add_argument("--photos", default=os.path.join(SHARED, "flickr8k-1k", "Images"))
    a = ap.parse_args()
    for p in (a.captions, a.photos):
        if not os.path.exists(p):
            sys.exit(f"needs {p} (../shared/data)")
    sets = caption_sets(a.captions)
    photos = sorted(os.listdir(a.photos))
    have = set(photos)
    if a.matched:
        sets = [s for s in sets if s[0] in have]
        if not sets:
            sys.exit(f"--matched: no caption set of {a.captions} names a photo in {a.photos}")
    rng = random.Random(2017)
    f30k_images = os.path.abspath(os.path.join(a.f30k, "images"))
    splits = {"train2017": [], "val2017": []}
    anns = {"train2017": [], "val2017": []}
    ann_id = 0
    for i in range(a.n):
        split = "val2017" if i >= a.n - a.val else "train2017"
        image_id = 1_000_000 + i
        name = f"{image_id:012d}.jpg"
        folder = os.path.join(a.out, split)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        key, caps = sets[i % len(sets)]
        j = i % a.reuse if a.links else i
        reused = os.path.join(f30k_images, f"{10_000_000 + j}.jpg")
        if a.links and not os.path.exists(reused):
            sys.exit(f"--links: {reused} is missing; make the Flickr30k-size set first (bench/make_flickr30k.py)")
        if j < a.reuse and os.path.exists(reused):
            if not os.path.lexists(path):
                os.symlink(reused, path)
            rng.random()
        elif not os.path.exists(path):
            src = key if key in have else photos[rng.randrange(len(photos))]
            im, q = variant(os.path.join(a.photos, src), i, rng)
            im.save(path, quality=q)
        else:
            rng.random()
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
        w, h = jpeg_size(head) or (0, 0)
        splits[split].append({"license": 1, "file_name": name, "coco_url": "", "height": h,
                              "width": w, "date_captured": "2013-11-14 00:00:00", "flickr_url": "",
                              "id": image_id})
        caps = list(caps)
        if i < EXTRA_CAPTIONS:
            caps.append(sets[(i + 1) % len(sets)][1][0])
        for c in caps:
            anns[split].append({"image_id": image_id, "id": ann_id, "caption": c})
            ann_id += 1
        if i % 10000 == 0:
            print(f"{i}/{a.n}", file=sys.stderr, flush=True)
    os.makedirs(os.path.join(a.out, "annotations"), exist_ok=True)
    for split in splits:
        doc = {"info": {"description": "embtui bench: COCO-shaped, generated", "year": 2017},
               "licenses": [{"id": 1, "name": "see ../shared/data/README.md", "url": ""}],
               "images": splits[split], "annotations": anns[split]}
        with open(os.path.join(a.out, "annotations", f"captions_{split}.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f)
    total = sum(len(v) for v in anns.values())
    print(f"{a.n} photos ({len(splits['train2017'])} train2017, {len(splits['val2017'])} val2017), "
          f"{total} captions in {a.out}", file=sys.stderr)


def jpeg_size(b):
    """(width, height) from a JPEG's SOF marker, or None."""
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            return None
        marker, length = b[i + 1], int.from_bytes(b[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(b[i + 7:i + 9], "big"), int.from_bytes(b[i + 5:i + 7], "big")
        i += 2 + length
    return None


if __name__ == "__main__":
    main()
