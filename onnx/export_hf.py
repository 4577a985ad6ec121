#!/usr/bin/env python3
"""Export a Hugging Face vision model to ONNX for embtui, with its manifest entry.

    export_hf.py MODEL [--models-dir models] [--source DIR_OR_HF_ID] [--opset 17]

MODEL is a zoo name (see ZOO below or `--list`). Preprocessing (size, crop, resample, mean/std)
is read from the model's own image-processor config; the pooling is the one the embedding
comparison used. The ONNX file goes to MODELS_DIR/MODEL.onnx and the entry into
MODELS_DIR/manifest.toml, which embtui reads automatically. `--source` points at a local
`save_pretrained` folder instead of the Hub (the tests use it for tiny random models).
"""
import argparse
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
        files = exported(text, args, f"{name}-text", models_dir, input_names=names, output_names=["text_embedding"],
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


def exported(module, args, stem, models_dir, external_data=False, **kwargs):
    """Exports `module` as MODELS_DIR/STEM.onnx through a private folder, so the loose
    external-data files torch writes for models over 2 GB (named after tensors) never land in
    models/ where another export could overwrite them: a graph with external data is saved
    again with all of it in one file, STEM.onnx.data (also with `external_data`, to test
    this path on small models). Returns the files written, the graph first."""
    import shutil
    import tempfile

    import onnx

    os.makedirs(models_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=models_dir, prefix=f".{stem}-export-")
    try:
        out = os.path.join(tmp, f"{stem}.onnx")
        onnx_export(module, args, out, **kwargs)
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
        for f in files:
            os.replace(os.path.join(tmp, f), os.path.join(models_dir, f))
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def record_lock(models_dir, name, files):
    """Every file of an exported model hashed in MODELS_DIR/models.lock.json (`doctor` checks
    them): the graph as `sha256`, the others under `files`."""
    from convert_offline import sha256

    path = os.path.join(models_dir, "models.lock.json")
    lock = json.load(open(path)) if os.path.exists(path) else {}
    lock[name] = {"sha256": sha256(os.path.join(models_dir, files[0])),
                  "files": {f: sha256(os.path.join(models_dir, f)) for f in files[1:]}}
    with open(path, "w") as f:
        json.dump(lock, f, indent=2, sort_keys=True)
        f.write("\n")


def export(name, models_dir, source=None, opset=17, text=True, external_data=False):
    import torch

    if name not in ZOO:
        fail(f"`{name}` is not in the zoo", f"choose one of: {', '.join(ZOO)}")
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
    out = os.path.join(models_dir, f"{name}.onnx")
    dummy = torch.zeros(2, 3, pre["size"], pre["size"])
    with torch.no_grad():
        dim = int(model(dummy).shape[-1])
        files = exported(model, (dummy,), name, models_dir, external_data, input_names=["pixel_values"],
                         output_names=["embedding"], dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
                         opset_version=opset, do_constant_folding=True)
    entry = {"name": name, "family": z["arch"], "source": f"hf:{z['hf']}", "license": z["license"],
             "description": z["about"], "file": f"{name}.onnx", "input": "pixel_values", "layout": "nchw",
             "size": pre["size"], "resize": pre["resize"]}
    if "crop" in pre:
        entry["crop"] = pre["crop"]
    entry.update(rescale=pre["rescale"], mean=pre["mean"], std=pre["std"], channels="rgb",
                 output="embedding", pooling="none", dim=dim)
    if text and z["arch"] in ("clip", "siglip"):
        entry["text"], _, _, text_files = export_text(name, z["arch"], source, models_dir, opset)
        files += text_files
    elif z["arch"] in ("clip", "siglip"):
        print(f"{name}: image tower only (--no-text): `search --text` and the TUI's text search will not work")
    write_manifest(models_dir, entry)
    record_lock(models_dir, name, files)
    from convert_offline import sha256
    print(f"{name}: {out} ({dim}-d, sha256 {sha256(out)[:16]}…; files {', '.join(files)}, hashed in "
          f"models.lock.json); entry in {models_dir}/manifest.toml")
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
           external_data=args.external_data)


if __name__ == "__main__":
    main()
