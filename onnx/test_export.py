#!/usr/bin/env python3
"""`just test-export`: the Hugging Face exporter on tiny randomly initialised models.

For every architecture of the zoo a small config of the same transformers class is built,
saved with `save_pretrained` and exported through export_hf.py's own code path. Checks:
  (a) ONNX Runtime's output equals PyTorch's (max abs diff <= 1e-4 of the largest output) on
      real photos;
  (b) embtui loads the model from the written manifest entry and, preprocessing with it, gives
      embeddings with cosine >= 0.999 to PyTorch fed by the model's own image processor;
  (c) for CLIP and SigLIP, embtui's tokenizer gives the same token ids as the model's own and its
      text-tower embeddings match PyTorch's (cosine >= 0.999); `search --text` and the TUI's
      text prompt return neighbours.
And four cases of their own: external data in one NAME.onnx.data, a slow-only tokenizer,
an fp16 export (parity with the fp32 graph, half the size, embtui embeds with it), and
`just fp16` on a real pretrained model.
Runs on either export stack: `just test-export` (torch 1.13 + transformers 4.38) and
`just test-export-modern` (torch 2.x + transformers 5 from PyPI).
Needs ../shared/data for the photos (skips with a message when absent).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import export_hf  # noqa: E402

PHOTOS = os.path.join(ROOT, "..", "shared", "data", "flickr8k-1k", "Images")


def tiny(arch):
    """(model, image processor) of `arch`, tiny and randomly initialised (seed 0)."""
    import torch
    import transformers as T

    torch.manual_seed(0)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    if arch == "efficientnet":
        cfg = T.EfficientNetConfig(image_size=64, width_coefficient=0.25, depth_coefficient=0.3, hidden_dim=320)
        model = T.EfficientNetModel(cfg)
        # HF's init (std 0.02) makes a deep random CNN's activations vanish to ~1e-34, which
        # would compare nothing; He init keeps them at a usable scale.
        # transformers 5 also draws BatchNorm weights from N(0, 0.02): identity BatchNorms.
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.ones_(m.weight)
                torch.nn.init.zeros_(m.bias)
        return model, T.EfficientNetImageProcessor(size={"height": 64, "width": 64})
    if arch == "vit":
        cfg = T.ViTConfig(image_size=64, patch_size=16, **small)
        return T.ViTModel(cfg, add_pooling_layer=False), T.ViTImageProcessor(size={"height": 64, "width": 64})
    if arch == "dinov2":
        cfg = T.Dinov2Config(image_size=56, patch_size=14, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2)
        proc = T.BitImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 56, "width": 56}, do_center_crop=True,
                                   resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_convert_rgb=True)
        return T.Dinov2Model(cfg), proc
    text = dict(vocab_size=99, max_position_embeddings=32, **small)
    vision = dict(image_size=64, patch_size=16, **small)
    if arch == "clip":
        cfg = T.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        proc = T.CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
        return T.CLIPModel(cfg), proc
    if arch == "siglip":
        cfg = T.SiglipConfig(text_config=text, vision_config=vision)
        return T.SiglipModel(cfg), T.SiglipImageProcessor(size={"height": 64, "width": 64})
    if arch == "blip2":
        cfg = T.Blip2Config(vision_config=vision,
                            qformer_config=dict(vocab_size=99, encoder_hidden_size=32, **small),
                            text_config=dict(model_type="opt", vocab_size=99, hidden_size=16, num_hidden_layers=1,
                                             ffn_dim=16, num_attention_heads=2, word_embed_proj_dim=16),
                            num_query_tokens=4)
        return T.Blip2Model(cfg), T.BlipImageProcessor(size={"height": 64, "width": 64})
    raise ValueError(arch)


TEXTS = ["a dog runs on the grass", "two children play in the snow .", "a man rides a red bicycle"]


def tiny_tokenizer(src):
    """A word-level fast tokenizer over a few caption words, saved beside a tiny text model."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in TEXTS for w in t.lower().split()} | {"photo", "of", "cat", "beach"})
    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(src)


def check_text(name, arch, binary, models_dir, src):
    """(c): embtui's tokenizer + text tower against PyTorch's, on the same texts."""
    import json

    import torch
    import transformers as T
    from transformers import AutoTokenizer

    model = (T.CLIPModel if arch == "clip" else T.SiglipModel).from_pretrained(src).eval()
    tok = AutoTokenizer.from_pretrained(src)
    out = json.loads(subprocess.run([binary, "text-embed", "--json", "--models-dir", models_dir, "--model", name, *TEXTS],
                                    check=True, capture_output=True, text=True).stdout)
    worst, ids_equal = 1.0, True
    for text, got in zip(TEXTS, out):
        if arch == "siglip":
            enc = tok([text], padding="max_length", max_length=model.config.text_config.max_position_embeddings, return_tensors="pt")
            with torch.no_grad():
                ref = export_hf.features(model.get_text_features(input_ids=enc["input_ids"]))[0].numpy()
        else:
            enc = tok([text], return_tensors="pt")
            with torch.no_grad():
                ref = export_hf.features(model.get_text_features(input_ids=enc["input_ids"],
                                                                 attention_mask=enc["attention_mask"]))[0].numpy()
        ids_equal &= got["ids"] == enc["input_ids"][0].tolist()
        ours = np.array(got["embedding"], dtype=np.float32)
        worst = min(worst, float(ours @ (ref / np.linalg.norm(ref))))
    return ids_equal, worst


def tui_text_query(binary, models_dir, name, photos, store):
    """The TUI's `t` prompt embeds text with the exported tower (tmux drives the real binary)."""
    import time

    if shutil.which("tmux") is None:
        print("SKIP: tmux missing; TUI text query not checked")
        return True
    session = "embtui-test-export"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    cmd = (f"{binary} browse --device cpu --image-protocol halfblocks --models-dir {models_dir} "
           f"--model {name} --store {store} --dataset {photos}")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    screen = ""
    try:
        for step, keys in enumerate([None, ["t"], ["-l", TEXTS[0]], ["Enter"]]):
            if keys:
                subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)
            for _ in range(100):
                screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                        capture_output=True, text=True).stdout
                want = [" ready ", "text query:", TEXTS[0], f"text: {TEXTS[0]}"][step]
                if want in screen and (step < 3 or "1. " in screen):
                    break
                time.sleep(0.2)
            else:
                print(screen)
                return False
        return True
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def check_arch(arch, name, work, photos, names, models_dir, binary):
    """Exports a tiny `arch` model as `name` and checks (a)-(c); (ok, one-line report)."""
    import onnxruntime as ort
    import torch
    from PIL import Image

    src = os.path.join(work, "src", arch)
    model, proc = tiny(arch)
    if arch in ("clip", "siglip"):
        model.config.text_config.eos_token_id = 3  # the tiny tokenizer's <eos>
        model.config.text_config.bos_token_id = 2
        model.config.text_config.pad_token_id = 0
        tiny_tokenizer(src)
    model.save_pretrained(src)
    proc.save_pretrained(src)
    out, entry, wrapper = export_hf.export(name, models_dir, source=src)
    images = [Image.open(os.path.join(photos, n)).convert("RGB") for n in names]
    pixels = proc(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = wrapper(pixels).numpy()
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    onnx_out = sess.run(["embedding"], {"pixel_values": pixels.numpy()})[0]
    # Relative to the output's scale: a tiny random CNN's features can be ~1e-4 in size.
    max_abs = float(np.abs(onnx_out - ref).max())
    rel = max_abs / max(float(np.abs(ref).max()), 1e-30)
    npy = os.path.join(work, f"{name}.npy")
    # --decode exact: the model's image processor decodes full size, and these tiny models'
    # 64-pixel inputs would otherwise let embtui decode the 500×375 photos at 1/2 scale.
    # Its own store: vectors cached by an earlier run of the same tiny model must not stand in.
    subprocess.run([binary, "--decode", "exact", "--store", os.path.join(work, "store-export"), "export",
                    "--device", "cpu", "--models-dir", models_dir, "--model", name, "--dataset", photos,
                    "--out", npy], check=True, capture_output=True)
    ours = np.load(npy)
    ids = open(os.path.join(work, f"{name}.ids.txt")).read().split()
    assert ids == names, (ids, names)
    refn = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (ours * refn).sum(axis=1)
    ok = rel <= 1e-4 and cos.min() >= 0.999
    text = ""
    if "text" in entry:
        ids_equal, text_cos = check_text(name, arch, binary, models_dir, src)
        # And a text search over the photos goes end to end through the store.
        res = subprocess.run([binary, "search", "--device", "cpu", "--json", "--text", TEXTS[0], "-k", "3",
                              "--models-dir", models_dir, "--model", name, "--dataset", photos,
                              "--store", os.path.join(work, "store")], capture_output=True, text=True)
        searched = res.returncode == 0 and len(__import__("json").loads(res.stdout)["hits"]) == 3
        captioned = os.path.join(ROOT, "fixtures", "flickr30k-token")  # the TUI needs captions
        tui_ok = tui_text_query(binary, models_dir, name, captioned, os.path.join(work, "store"))
        ok = ok and ids_equal and text_cos >= 0.999 and searched and tui_ok
        text = (f"  text: ids {'equal' if ids_equal else 'DIFFER'}, min cos {text_cos:.6f}, "
                f"search {'ok' if searched else 'FAILED: ' + res.stderr.strip()}, "
                f"TUI {'ok' if tui_ok else 'FAILED'}")
    return ok, (f"dim {entry['dim']:>4}  onnx-vs-torch max|diff| {max_abs:.2e} ({rel:.1e} of max|out|)  "
                f"embtui-vs-torch min cos {cos.min():.6f}{text}")


def slow_siglip_tokenizer(work):
    """SigLIP with its real slow tokenizer class (SiglipTokenizer over a sentencepiece model
    trained here on a few captions): the export must stop before writing anything and say how
    to go on, and with text=False export the image tower alone."""
    import sentencepiece as spm
    import transformers as T

    src = os.path.join(work, "src", "siglip-slow")
    os.makedirs(src, exist_ok=True)
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(TEXTS * 20))
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(src, "spiece"), vocab_size=24,
                                   model_type="unigram", minloglevel=2)
    model, proc = tiny("siglip")
    model.save_pretrained(src)
    proc.save_pretrained(src)
    T.SiglipTokenizer(vocab_file=os.path.join(src, "spiece.model")).save_pretrained(src)
    out_dir = os.path.join(work, "models-slow")
    try:
        export_hf.export("siglip-base", out_dir, source=src)
        return False, "exported although the tokenizer is slow-only"
    except SystemExit as e:
        said = str(e)
    if "--no-text" not in said or os.path.exists(os.path.join(out_dir, "siglip-base.onnx")):
        return False, f"stopped without the fix or after writing files: {said}"
    _, entry, _ = export_hf.export("siglip-base", out_dir, source=src, text=False)
    ok = "text" not in entry and os.path.exists(os.path.join(out_dir, "siglip-base.onnx"))
    return ok, f"slow SiglipTokenizer: stopped before exporting ({said.splitlines()[0][:70]}…), --no-text exports the image tower"


def external_data(work, photos, binary):
    """A model exported with its weights in one NAME.onnx.data file: exactly two files land in
    models/, both hashed in models.lock.json; embtui embeds with it, `doctor` verifies both,
    and names the data file when it changes (and the vectors' cache key changes with it)."""
    import torch

    name, src = "vit-large-in21k", os.path.join(work, "src", "vit-ext")
    torch.manual_seed(0)
    model, proc = tiny("vit")
    model.save_pretrained(src)
    proc.save_pretrained(src)
    out_dir = os.path.join(work, "models-ext")
    export_hf.export(name, out_dir, source=src, external_data=True)
    listed = sorted(f for f in os.listdir(out_dir) if not f.startswith("."))
    want = sorted(["manifest.toml", "models.lock.json", f"{name}.onnx", f"{name}.onnx.data"])
    if listed != want:
        return False, f"models dir holds {listed}"
    lock = __import__("json").load(open(os.path.join(out_dir, "models.lock.json")))[name]
    store = os.path.join(work, "store-ext")
    run = [binary, "--store", store, "export", "--device", "cpu", "--models-dir", out_dir, "--model", name,
           "--dataset", photos, "--out", os.path.join(work, "ext.npy")]
    subprocess.run(run, check=True, capture_output=True)
    doctor = [binary, "doctor", "--models-dir", out_dir]
    before = subprocess.run(doctor, capture_output=True, text=True).stdout
    with open(os.path.join(out_dir, f"{name}.onnx.data"), "ab") as f:
        f.write(b"\0" * 16)
    after = subprocess.run(doctor, capture_output=True, text=True).stdout
    again = subprocess.run(run, capture_output=True, text=True).stderr
    ok = (f"ok   {name}: sha256" in before and f"FAIL {name}: {name}.onnx.data differs" in after
          and list(lock["files"]) == [f"{name}.onnx.data"] and "0 reused" in again)
    return ok, (f"external data: 2 files, both hashed; doctor {'verifies' if ok else 'FAILED'}; "
                f"a changed {name}.onnx.data is named and re-embeds")


def fp16(work, photos, names, binary):
    """`--precision fp16` on DINOv2 (layer norms, attention and the position-embedding
    resize): only NAME-fp16 files land, its weights are float16 (about half the fp32 bytes), models.lock.json records its parity, and embtui's vectors from it stay close to
    PyTorch's fp32 ones on real photos."""
    import onnx
    import torch
    from PIL import Image

    name, src = "dinov2-base", os.path.join(work, "src", "dinov2-fp16")
    model, proc = tiny("dinov2")
    model.save_pretrained(src)
    proc.save_pretrained(src)
    out_dir, full_dir = os.path.join(work, "models-fp16"), os.path.join(work, "models-fp32")
    out, entry, wrapper = export_hf.export(name, out_dir, source=src, precision="fp16")
    full, _, _ = export_hf.export(name, full_dir, source=src)
    listed = sorted(f for f in os.listdir(out_dir) if not f.startswith("."))
    if listed != ["dinov2-base-fp16.onnx", "manifest.toml", "models.lock.json"]:
        return False, f"models dir holds {listed}"
    graph = onnx.load(out)
    halves = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    weights = lambda g: sum(len(t.raw_data) for t in g.graph.initializer)  # noqa: E731
    ratio = weights(graph) / weights(onnx.load(full))
    lock = __import__("json").load(open(os.path.join(out_dir, "models.lock.json")))[f"{name}-fp16"]
    images = [Image.open(os.path.join(photos, n)).convert("RGB") for n in names]
    with torch.no_grad():
        ref = wrapper(proc(images=images, return_tensors="pt")["pixel_values"]).numpy()
    npy = os.path.join(work, "fp16.npy")
    subprocess.run([binary, "--decode", "exact", "--store", os.path.join(work, "store-fp16"), "export", "--device", "cpu",
                    "--models-dir", out_dir, "--model", f"{name}-fp16", "--dataset", photos, "--out", npy],
                   check=True, capture_output=True)
    ours = np.load(npy)
    cos = float(((ours * (ref / np.linalg.norm(ref, axis=1, keepdims=True))).sum(axis=1)).min())
    ok = (entry["name"] == f"{name}-fp16" and halves > 0 and ratio < 0.6 and lock.get("precision") == "fp16"
          and lock.get("fp16_parity_min_cos", 0) >= 0.99 and cos >= 0.99)
    return ok, (f"fp16: {halves} float16 initializers, weights {ratio:.2f}× the fp32 bytes, parity recorded "
                f"{lock.get('fp16_parity_min_cos')}, embtui-vs-torch-fp32 min cos {cos:.6f}")


def fp16_offline(work, photos, binary):
    """`just fp16` on a real pretrained model (EfficientNet-Lite0 from `just setup`): embtui
    embeds real photos with the fp16 copy as with the fp32 model (cosine >= 0.9999)."""
    import fp16 as tool

    name = "efficientnet-lite0"
    out_dir = os.path.join(work, "models-offline")
    os.makedirs(out_dir)
    shutil.copy(os.path.join(ROOT, "models", f"{name}.onnx"), out_dir)
    parity = tool.convert(name, out_dir)
    vecs = []
    for m in (name, f"{name}-fp16"):
        npy = os.path.join(work, f"offline-{m}.npy")
        subprocess.run([binary, "--store", os.path.join(work, "store-offline"), "export", "--device", "cpu",
                        "--models-dir", out_dir, "--model", m, "--dataset", photos, "--out", npy],
                       check=True, capture_output=True)
        vecs.append(np.load(npy))
    cos = float((vecs[0] * vecs[1]).sum(axis=1).min())
    ratio = os.path.getsize(os.path.join(out_dir, f"{name}-fp16.onnx")) / os.path.getsize(os.path.join(out_dir, f"{name}.onnx"))
    # `--precision fp16 --model NAME` runs the copy; a model without one is refused with the fix.
    flag = os.path.join(work, "offline-flag.npy")
    run = [binary, "--precision", "fp16", "--store", os.path.join(work, "store-offline"), "export", "--device", "cpu",
           "--models-dir", out_dir, "--dataset", photos, "--out", flag, "--model"]
    subprocess.run(run + [name], check=True, capture_output=True)
    same = bool(np.array_equal(np.load(flag), vecs[1]))
    missing = subprocess.run(run + ["open-nsfw"], capture_output=True, text=True)
    refused = missing.returncode == 2 and "just fp16 open-nsfw" in missing.stderr
    return parity >= 0.9999 and cos >= 0.9999 and ratio < 0.55 and same and refused, (
        f"just fp16 on the real {name}: file {ratio:.2f}× the fp32 size, parity {parity:.6f}, "
        f"embtui fp16-vs-fp32 min cos {cos:.6f} on {len(vecs[0])} photos; --precision fp16 "
        f"{'runs the copy' if same else 'DID NOT run the copy'}, "
        f"{'refuses' if refused else 'DID NOT refuse'} a model without one")


def main():
    if not os.path.isdir(PHOTOS):
        in_ci = os.environ.get("CI", "") not in ("", "0", "false")
        print(f"{'FAIL' if in_ci else 'SKIP'}: ../shared/data is absent; test-export needs real photos")
        return 1 if in_ci else 0
    binary = os.path.join(ROOT, "target", "release", "embtui")
    names = sorted(os.listdir(PHOTOS))[:6]
    work = tempfile.mkdtemp(prefix="embtui-test-export")
    photos = os.path.join(work, "photos")
    os.makedirs(photos)
    for n in names:
        shutil.copy(os.path.join(PHOTOS, n), photos)
    models_dir = os.path.join(work, "models")
    failures, rows = 0, []
    per_arch = {}
    for name, z in export_hf.ZOO.items():
        per_arch.setdefault(z["arch"], name)
    try:
        for arch, name in per_arch.items():
            try:
                ok, line = check_arch(arch, name, work, photos, names, models_dir, binary)
            except subprocess.CalledProcessError as e:
                # Show what embtui (or the exporter) said, not only its exit status.
                said = (e.stderr or "").strip() if isinstance(e.stderr, str) else (e.stderr or b"").decode(errors="replace").strip()
                ok, line = False, f"{' '.join(map(str, e.cmd[:3]))}… exited {e.returncode}: {said or '(no message)'}"
            except (Exception, SystemExit) as e:  # noqa: BLE001 - one failure must not hide the others
                ok, line = False, f"{type(e).__name__}: {e}"
            failures += not ok
            rows.append((name, arch, ok))
            print(f"{'ok  ' if ok else 'FAIL'} {name:<16} {arch:<12} {line}", flush=True)
        for name, case, check in [("vit-large-in21k", "vit-ext", lambda: external_data(work, photos, binary)),
                                  ("siglip-base", "siglip-slow", lambda: slow_siglip_tokenizer(work)),
                                  ("dinov2-base", "fp16", lambda: fp16(work, photos, names, binary)),
                                  ("efficientnet-lite0", "fp16-real", lambda: fp16_offline(work, photos, binary))]:
            try:
                ok, line = check()
            except Exception as e:  # noqa: BLE001 - one failure must not hide the others
                ok, line = False, f"{type(e).__name__}: {e}"
            failures += not ok
            rows.append((name, case, ok))
            print(f"{'ok  ' if ok else 'FAIL'} {name:<16} {case:<12} {line}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(rows) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
