#!/usr/bin/env python3
"""Export a Hugging Face vision model to ONNX for embtui, with its manifest entry.

    export_hf.py MODEL [--models-dir models] [--source DIR_OR_HF_ID] [--opset 17]
                       [--no-text] [--external-data] [--precision fp32|fp16]

MODEL is a zoo name (see ZOO below or `--list`). Preprocessing (size, crop, resample, mean/std)
is read from the model's own image-processor config; the pooling is the one the embedding
comparison used. The ONNX file goes to MODELS_DIR/MODEL.onnx and the entry into
MODELS_DIR/manifest.toml, which embtui reads automatically. `--source` points at a local
`save_pretrained` folder instead of the Hub (the tests use it for tiny random models).
`--precision fp16` writes MODEL-fp16 instead: the image tower in float16 (half the file; fast
on CUDA), its parity with the fp32 graph printed and recorded in models.lock.json.
Works with torch 1.13 + transformers 4.38 (`just venv-export`) and torch 2.x + transformers 5
(`just venv-export-modern`).
"""
import argparse
import contextlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ZOO = {
    "efficientnet-b7": dict(hf="google/efficientnet-b7", arch="efficientnet", license="Apache-2.0",
                            about="EfficientNet-B7, ImageNet-1k; mean of the last block's feature map (640-d)"),
    "vit-large-in21k": dict(hf="google/vit-large-patch16-224-in21k", arch="vit", license="Apache-2.0",
                            about="ViT-L/16 pre-trained on ImageNet-21k; CLS token (1024-d)"),
    "dinov2-base": dict(hf="facebook/dinov2-base", arch="dinov2", license="Apache-2.0",
                        about="DINOv2 ViT-B/14, self-supervised; CLS token (768-d)"),
    "dinov2-large": dict(hf="facebook/dinov2-large", arch="dinov2", license="Apache-2.0",
                         about="DINOv2 ViT-L/14; CLS token (1024-d)"),
    "clip-vit-b32": dict(hf="openai/clip-vit-base-patch32", arch="clip", license="MIT",
                         about="CLIP ViT-B/32 image tower; get_image_features (512-d)"),
    "clip-vit-l14": dict(hf="openai/clip-vit-large-patch14", arch="clip", license="MIT",
                         about="CLIP ViT-L/14 image tower; get_image_features (768-d)"),
    "siglip-base": dict(hf="google/siglip-base-patch16-224", arch="siglip", license="Apache-2.0",
                        about="SigLIP B/16 image tower; get_image_features (768-d)"),
    "blip2-qformer": dict(hf="Salesforce/blip2-opt-2.7b", arch="blip2", license="MIT",
                          about="BLIP-2 vision encoder + Q-Former (no language model); mean of 32 query tokens (768-d)"),
}
RESAMPLE = {0: "nearest", 1: "lanczos3", 2: "bilinear", 3: "bicubic", 4: "area"}


def fail(msg, fix):
    sys.exit(f"export-hf: {msg}\n  fix: {fix}")


def need_torch():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        fail(f"{e.name} is not installed in this Python ({sys.executable})",
             "run `just export-hf MODEL` (it makes .venv-export with torch and transformers)")


def features(out):
    """The projected vector of `get_image_features` / `get_text_features`: a tensor in
    transformers 4.x, an output object (vector in `.pooler_output`) in 5.x."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for attr in ("pooler_output", "image_embeds", "text_embeds"):
        v = getattr(out, attr, None)
        if isinstance(v, torch.Tensor):
            return v
    raise TypeError(f"no feature tensor in {type(out).__name__}")


def onnx_export(module, args, out, **kwargs):
    """torch.onnx.export with the TorchScript exporter on every torch: torch >= 2.5 defaults to
    the dynamo exporter (onnxscript, a NAME.onnx.data beside the graph, no opset 17)."""
    import inspect

    import torch

    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    torch.onnx.export(module, args, out, **kwargs)


def image_model(arch, source):
    """The embedding module for `arch`, weights from `source` (Hub id or local folder)."""
    import torch
    import transformers as T

    if arch == "blip2":
        return Blip2Embed.from_source(source)
    cls = {"efficientnet": T.EfficientNetModel, "vit": T.ViTModel, "dinov2": T.Dinov2Model,
           "clip": T.CLIPModel, "siglip": T.SiglipModel}[arch]
    kwargs = {"add_pooling_layer": False} if arch == "vit" else {}
    model = cls.from_pretrained(source, **kwargs).eval()

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            if arch == "efficientnet":
                out = self.m(pixel_values, output_hidden_states=True)
                return out.hidden_states[-1].mean(dim=(2, 3))
            if arch in ("vit", "dinov2"):
                return self.m(pixel_values).last_hidden_state[:, 0]
            return features(self.m.get_image_features(pixel_values=pixel_values))

    return Embed().eval()


def _blip2_class():
    import torch
    import transformers as T

    class Blip2Embed(torch.nn.Module):
        """BLIP-2's vision encoder and Q-Former only: the language model is never loaded."""

        def __init__(self, config):
            super().__init__()
            self.vision_model = T.Blip2VisionModel(config.vision_config)
            self.query_tokens = torch.nn.Parameter(torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size))
            self.qformer = T.Blip2QFormerModel(config.qformer_config)

        def forward(self, pixel_values):
            image = self.vision_model(pixel_values).last_hidden_state
            mask = torch.ones(image.shape[:-1], dtype=torch.long)
            q = self.query_tokens.expand(image.shape[0], -1, -1)
            out = self.qformer(query_embeds=q, encoder_hidden_states=image, encoder_attention_mask=mask)
            return out.last_hidden_state.mean(dim=1).float()

        @classmethod
        def from_source(cls, source):
            config = T.Blip2Config.from_pretrained(source)
            m = cls(config)
            state = load_prefixed(source, ("vision_model.", "qformer.", "query_tokens"))
            missing, unexpected = m.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
            if missing:
                fail(f"BLIP-2 weights lack {missing[:3]}…", "check the model id or the local folder")
            return m.eval()

    return Blip2Embed


class _Lazy:
    def __getattr__(self, name):
        return getattr(_blip2_class(), name)


Blip2Embed = _Lazy()


def load_prefixed(source, prefixes):
    """Only the tensors whose names start with `prefixes`, reading only the shards holding them,
    tensor by tensor (safetensors' `safe_open`): a multi-GB shard is never read whole."""
    import torch
    from safetensors import safe_open

    def load_file(path):
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefixes)}

    def fetch(name):
        if os.path.isdir(source):
            p = os.path.join(source, name)
            return p if os.path.exists(p) else None
        from huggingface_hub import hf_hub_download
        try:
            return hf_hub_download(source, name)
        except Exception:  # noqa: BLE001 - the next candidate file is tried
            return None

    index = fetch("model.safetensors.index.json")
    if index:
        weight_map = json.load(open(index))["weight_map"]
        shards = sorted({f for k, f in weight_map.items() if k.startswith(prefixes)})
        state = {}
        for shard in shards:
            state.update({k: v for k, v in load_file(fetch(shard)).items() if k.startswith(prefixes)})
        return state
    single = fetch("model.safetensors")
    if single:
        return {k: v for k, v in load_file(single).items() if k.startswith(prefixes)}
    binary = fetch("pytorch_model.bin")
    if binary:
        return {k: v for k, v in torch.load(binary, map_location="cpu").items() if k.startswith(prefixes)}
    fail(f"no weights found for {source}", "check the model id, your Hugging Face access, or the folder")


def preprocessing(source):
    """The manifest's preprocessing fields, read from the model's image-processor config."""
    from transformers import AutoImageProcessor

    p = AutoImageProcessor.from_pretrained(source)
    size = p.size if getattr(p, "do_resize", True) else None
    if not size:
        fail(f"{source}: the image processor does not resize", "add the entry to a manifest by hand")
    if "shortest_edge" in size:
        resize = {"rule": "shorter", "to": int(size["shortest_edge"]), "round": "floor"}
    elif size.get("height") == size.get("width"):
        resize = {"rule": "exact", "to": int(size["height"])}
    else:
        fail(f"{source}: non-square resize {size}", "add the entry to a manifest by hand")
    resample = int(getattr(p, "resample", 3))
    if resample not in RESAMPLE:
        fail(f"{source}: resample filter {resample} is not supported", "add the entry by hand")
    resize["interpolation"] = RESAMPLE[resample]
    entry = {"resize": resize}
    final = resize["to"]
    if getattr(p, "do_center_crop", False) and getattr(p, "crop_size", None):
        crop = p.crop_size
        if crop["height"] != crop["width"]:
            fail(f"{source}: non-square crop {crop}", "add the entry by hand")
        entry["crop"] = int(crop["height"])
        final = entry["crop"]
    elif resize["rule"] != "exact":
        fail(f"{source}: resize keeps the aspect ratio but there is no crop", "add the entry by hand")
    scale = float(p.rescale_factor) if getattr(p, "do_rescale", True) else 1.0
    mean = [float(x) for x in p.image_mean] if getattr(p, "do_normalize", True) else [0.0] * 3
    std = [float(x) for x in p.image_std] if getattr(p, "do_normalize", True) else [1.0] * 3
    if getattr(p, "rescale_offset", False):
        mean = [m + 1.0 for m in mean]  # x*scale - 1 - mean
    if getattr(p, "include_top", False) and getattr(p, "do_normalize", True):
        std = [s * s for s in std]  # EfficientNet normalises by std a second time
    entry.update(size=final, rescale=scale, mean=mean, std=std)
    return entry


def toml_entry(e):
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return repr(v)

    return "[[model]]\n" + "".join(f"{k} = {val(v)}\n" for k, v in e.items())


def write_manifest(models_dir, entry):
    """Adds or replaces `entry` (by name) in MODELS_DIR/manifest.toml."""
    import tomllib

    path = os.path.join(models_dir, "manifest.toml")
    entries = []
    if os.path.exists(path):
        with open(path, "rb") as f:
            entries = [m for m in tomllib.load(f).get("model", []) if m["name"] != entry["name"]]
    entries.append(entry)
    with open(path, "w") as f:
        f.write("# Written by `just export-hf`; embtui reads it beside the built-in zoo.\n\n")
        f.write("\n".join(toml_entry(e) for e in entries))


def explicit_same_padding(model):
    """Conv layers with padding="same" (odd kernels, stride 1) or "valid" get the equal numeric
    padding: older torch.onnx cannot export the string forms (aten::_convolution_mode)."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.padding == "valid":
            m.padding = (0, 0)
        if isinstance(m, torch.nn.Conv2d) and m.padding == "same":
            if any(k % 2 == 0 for k in m.kernel_size) or any(s != 1 for s in m.stride):
                fail("a 'same'-padded convolution with an even kernel or a stride", "export by hand")
            m.padding = tuple(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation))


def export_text(name, arch, source, models_dir, opset):
    """CLIP/SigLIP text tower → MODELS_DIR/NAME-text.onnx + NAME-text/tokenizer.json."""
    import torch
    import transformers as T
    from transformers import AutoTokenizer

    cls = T.CLIPModel if arch == "clip" else T.SiglipModel
    model = cls.from_pretrained(source).eval()
    tok = AutoTokenizer.from_pretrained(source)
    if not getattr(tok, "is_fast", False):
        fail(f"{source}: no fast tokenizer (tokenizer.json)", "use a model whose repo ships tokenizer.json")
    tok_dir = os.path.join(models_dir, f"{name}-text")
    tok.save_pretrained(tok_dir)
    use_mask = arch == "clip"
    max_length = int(model.config.text_config.max_position_embeddings)

    class Text(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask=None):
            return features(self.m.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

    text = Text().eval()
    ids = tok(["a photo of a dog"], return_tensors="pt", padding="max_length" if arch == "siglip" else False,
              max_length=max_length if arch == "siglip" else None, truncation=True)
    args = (ids["input_ids"], ids["attention_mask"]) if use_mask else (ids["input_ids"],)
    names = ["input_ids", "attention_mask"] if use_mask else ["input_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    axes["text_embedding"] = {0: "batch"}
    with torch.no_grad():
        files, _ = exported(text, args, f"{name}-text", models_dir, input_names=names, output_names=["text_embedding"],
                         dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
    tower = {"file": f"{name}-text.onnx", "tokenizer": f"{name}-text/tokenizer.json",
             "max_length": max_length, "input_ids": "input_ids", "output": "text_embedding"}
    if arch == "siglip":
        tower["pad_to"] = max_length
        tower["pad_id"] = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
    if use_mask:
        tower["attention_mask"] = "attention_mask"
    return tower, text, tok, files + [f"{name}-text/tokenizer.json"]


def text_tokenizer(name, source):
    """The text tower's fast tokenizer, checked before anything is exported: a slow-only one
    (SigLIP's sentencepiece) is converted where transformers can, else the export stops here
    and says how to export the image tower alone."""
    from transformers import AutoTokenizer

    why = None
    try:
        tok = AutoTokenizer.from_pretrained(source, use_fast=True)
        if getattr(tok, "is_fast", False):
            return tok
        why = f"its tokenizer ({type(tok).__name__}) is slow-only and this transformers cannot convert it to tokenizer.json"
    except (ImportError, ValueError) as e:
        why = f"its tokenizer cannot be loaded ({e}); `pip install sentencepiece protobuf` may fix that"
    fail(f"{name}: {why}; nothing was exported",
         f"re-run with --no-text to export the image tower alone (no text search), or use a repo that ships tokenizer.json")


# Inputs that are shapes, sizes, scales or indices (by op, from this input index on).
SHAPE_INPUTS = {"Resize": 1, "Upsample": 1, "Reshape": 1, "Expand": 1, "Tile": 1, "Slice": 1, "Pad": 1,
                "Unsqueeze": 1, "Squeeze": 1, "ConstantOfShape": 0, "Range": 0}


def shape_nodes(model):
    """The nodes that compute shapes, sizes or scales (DINOv2 interpolates its position
    embeddings to a size computed as 256 ** 0.5 and from the input's shape): in float16 a 16
    can become 15.99 and an outer scale of 1 become 0.9995, which ONNX Runtime's cubic Resize
    refuses, so they stay float32. Stops at Shape: only its input's shape matters."""
    producer = {o: n for n in model.graph.node for o in n.output}
    todo = [i for n in model.graph.node if n.op_type in SHAPE_INPUTS for i in n.input[SHAPE_INPUTS[n.op_type]:] if i]
    keep = set()
    while todo:
        node = producer.get(todo.pop())
        if node is not None and node.name not in keep:
            keep.add(node.name)
            if node.op_type not in ("Shape", "Size"):
                todo.extend(i for i in node.input if i)
    return sorted(keep)


def half_precision(src, dst, parity_input):
    """An fp16 copy of the graph at `src` written to `dst`: weights and arithmetic in float16,
    inputs and outputs float32 (what embtui feeds and reads), Resize and whatever computes
    shapes, sizes and scales kept in float32 (`shape_nodes`). Returns the minimum cosine between the two
    graphs' outputs on `parity_input` (ONNX Runtime, CPU). On the CPU, ONNX Runtime runs ops
    that lack a float16 kernel in float32, so this measures the weights' rounding and the
    float16 kernels it has; CUDA computes everything in float16."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(src)
    half = convert_float_to_float16(model, keep_io_types=True, node_block_list=shape_nodes(model),
                                    op_block_list=list(DEFAULT_OP_BLOCK_LIST) + ["Resize"])
    # The converter inserts one Cast per blocked consumer of an fp16 tensor, all alike (same
    # name, input and output): one is kept.
    seen, nodes = set(), []
    for n in half.graph.node:
        key = (n.name, tuple(n.output)) if n.op_type == "Cast" else id(n)
        if key not in seen:
            seen.add(key)
            nodes.append(n)
    del half.graph.node[:]
    half.graph.node.extend(nodes)
    big = half.ByteSize() > 1_900_000_000
    onnx.save_model(half, dst, save_as_external_data=big, all_tensors_to_one_file=True,
                    location=os.path.basename(dst) + ".data")
    outs = []
    for path in (src, dst):
        quiet = ort.SessionOptions()
        quiet.log_severity_level = 3  # not the constant-folding notes about float16 Pow
        sess = ort.InferenceSession(path, quiet, providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {sess.get_inputs()[0].name: parity_input})[0].reshape(len(parity_input), -1))
    a, b = (o.astype(np.float64) for o in outs)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return float(cos.min())


@contextlib.contextmanager
def private_folder(models_dir, stem):
    """A temporary folder inside MODELS_DIR for one export (same filesystem, so `land` is an
    atomic rename); removed with whatever did not land."""
    import shutil
    import tempfile

    os.makedirs(models_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=models_dir, prefix=f".{stem}-export-")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def land(tmp, models_dir, files):
    """Moves `files` from the private folder into MODELS_DIR."""
    for f in files:
        os.replace(os.path.join(tmp, f), os.path.join(models_dir, f))


def exported(module, args, stem, models_dir, external_data=False, fp16_parity_input=None, **kwargs):
    """Exports `module` as MODELS_DIR/STEM.onnx through a private folder, so the loose
    external-data files torch writes for models over 2 GB (named after tensors) never land in
    models/ where another export could overwrite them: a graph with external data is saved
    again with all of it in one file, STEM.onnx.data (also with `external_data`, to test
    this path on small models). With `fp16_parity_input` the graph is converted to fp16
    (`half_precision`) before it leaves the private folder. Returns the files written, the
    graph first, and the fp16 parity (min cosine) or None."""
    import onnx

    with private_folder(models_dir, stem) as tmp:
        out = os.path.join(tmp, f"{stem}.onnx")
        parity = None
        if fp16_parity_input is None:
            onnx_export(module, args, out, **kwargs)
        else:
            full = os.path.join(tmp, "fp32", f"{stem}.onnx")
            os.makedirs(os.path.dirname(full))
            onnx_export(module, args, full, **kwargs)
            parity = half_precision(full, out, fp16_parity_input)
        graph = onnx.load(out, load_external_data=False)
        has_external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer)
        data = f"{stem}.onnx.data"
        files = [f"{stem}.onnx"]
        if has_external or external_data:
            model = onnx.load(out)
            onnx.save_model(model, out, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data, size_threshold=0)
            files.append(data)
        elif os.path.exists(os.path.join(models_dir, data)):
            os.remove(os.path.join(models_dir, data))  # an earlier export's weights
        land(tmp, models_dir, files)
        return files, parity


def record_lock(models_dir, name, files, fp16_parity=None):
    """Every file of an exported model hashed in MODELS_DIR/models.lock.json (`doctor` checks
    them): the graph as `sha256`, the others under `files`; an fp16 export also records its
    parity with the fp32 graph."""
    from convert_offline import sha256

    path = os.path.join(models_dir, "models.lock.json")
    lock = json.load(open(path)) if os.path.exists(path) else {}
    lock[name] = {"sha256": sha256(os.path.join(models_dir, files[0])),
                  "files": {f: sha256(os.path.join(models_dir, f)) for f in files[1:]}}
    if fp16_parity is not None:
        lock[name].update(precision="fp16", fp16_parity_min_cos=round(fp16_parity, 6),
                          fp16_parity_inputs=f"{PARITY_INPUTS} seeded N(0, 1) images, ONNX Runtime CPU")
    with open(path, "w") as f:
        json.dump(lock, f, indent=2, sort_keys=True)
        f.write("\n")


PARITY_INPUTS = 8


def export(name, models_dir, source=None, opset=17, text=True, external_data=False, precision="fp32"):
    """Exports zoo model `name`; with precision "fp16" as NAME-fp16 (image tower in fp16, a
    text tower stays fp32). Returns (graph path, manifest entry, torch module)."""
    import torch

    if name not in ZOO:
        fail(f"`{name}` is not in the zoo", f"choose one of: {', '.join(ZOO)}")
    if precision not in ("fp32", "fp16"):
        fail(f"precision `{precision}` is not supported", "use --precision fp32 or --precision fp16")
    z = ZOO[name]
    source = source or z["hf"]
    if text and z["arch"] in ("clip", "siglip"):
        text_tokenizer(name, source)
    try:
        pre = preprocessing(source)
        model = image_model(z["arch"], source)
    except OSError as e:
        fail(f"could not download or read {source}: {e}",
             "check the network and `huggingface-cli login` (or pass --source with a local folder)")
    explicit_same_padding(model)
    stem = name if precision == "fp32" else f"{name}-fp16"
    out = os.path.join(models_dir, f"{stem}.onnx")
    dummy = torch.zeros(2, 3, pre["size"], pre["size"])
    parity_input = None
    if precision == "fp16":
        gen = torch.Generator().manual_seed(0)
        parity_input = torch.randn(PARITY_INPUTS, 3, pre["size"], pre["size"], generator=gen).numpy()
    with torch.no_grad():
        dim = int(model(dummy).shape[-1])
        files, parity = exported(model, (dummy,), stem, models_dir, external_data, parity_input,
                                 input_names=["pixel_values"], output_names=["embedding"],
                                 dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
                                 opset_version=opset, do_constant_folding=True)
    about = z["about"] if parity is None else (
        f"{z['about']}; fp16 weights and arithmetic (vs fp32: min cosine {parity:.5f} on {PARITY_INPUTS} seeded inputs)")
    entry = {"name": stem, "family": z["arch"], "source": f"hf:{z['hf']}", "license": z["license"],
             "description": about, "file": f"{stem}.onnx", "input": "pixel_values", "layout": "nchw",
             "size": pre["size"], "resize": pre["resize"]}
    if "crop" in pre:
        entry["crop"] = pre["crop"]
    entry.update(rescale=pre["rescale"], mean=pre["mean"], std=pre["std"], channels="rgb",
                 output="embedding", pooling="none", dim=dim)
    if text and z["arch"] in ("clip", "siglip"):
        entry["text"], _, _, text_files = export_text(stem, z["arch"], source, models_dir, opset)
        files += text_files
    elif z["arch"] in ("clip", "siglip"):
        print(f"{name}: image tower only (--no-text): `search --text` and the TUI's text search will not work")
    write_manifest(models_dir, entry)
    record_lock(models_dir, stem, files, parity)
    from convert_offline import sha256
    print(f"{stem}: {out} ({dim}-d, sha256 {sha256(out)[:16]}…; files {', '.join(files)}, hashed in "
          f"models.lock.json); entry in {models_dir}/manifest.toml")
    if parity is not None:
        print(f"{stem}: fp16 parity with the fp32 graph: min cosine {parity:.6f} on {PARITY_INPUTS} seeded "
              f"N(0, 1) inputs (ONNX Runtime CPU runs ops without a float16 kernel in float32; CUDA runs all in float16)")
        if parity < 0.99:
            print(f"{stem}: warning: fp16 parity {parity:.4f} < 0.99; this model may lose accuracy in fp16, prefer fp32")
    return out, entry, model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--source", help="local save_pretrained folder or Hub id (default: the zoo's id)")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--no-text", action="store_true", help="CLIP/SigLIP: export the image tower alone")
    ap.add_argument("--external-data", action="store_true",
                    help="weights in NAME.onnx.data beside the graph (automatic above 2 GB)")
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                    help="fp16: export NAME-fp16 (image tower in float16, half the size; for CUDA), parity reported")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list or not args.model:
        for k, z in ZOO.items():
            print(f"{k:<18} {z['hf']:<40} {z['about']}")
        return
    if args.model not in ZOO:
        fail(f"`{args.model}` is not in the zoo", f"choose one of: {', '.join(ZOO)}")
    need_torch()
    export(args.model, args.models_dir, args.source, args.opset, text=not args.no_text,
           external_data=args.external_data, precision=args.precision)


if __name__ == "__main__":
    main()
