"""Hub-layout repos built from tiny randomly initialised transformers models, as the Hub's ONNX
repos are laid out: transformers.js (`onnx/model.onnx`, or `onnx/vision_model.onnx` +
`onnx/text_model.onnx`; variants `*_fp16.onnx`, `*_quantized.onnx`; external weights in
`*.onnx_data`) and fastembed (`model.onnx` at the root). Processor configs come from
transformers' own `save_pretrained`; one repo keeps the older `feature_extractor_type` form
with an int `size`. Each repo's reference embedder (transformers processor + torch) is returned
for the parity checks.
"""
import json
import logging
import os
import shutil
import sys
import warnings

warnings.filterwarnings("ignore")  # the tracer's notes on tiny models, not results
logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's quantizer advice

HERE = os.path.dirname(os.path.abspath(__file__))
ONNX_DIR = os.path.join(HERE, "..", "..", "onnx")
sys.path.insert(0, ONNX_DIR)
import export_hf  # noqa: E402
import test_export  # noqa: E402


def _export(module, args, path, inputs, outputs, axes, external=False):
    import onnx
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    export_hf.explicit_same_padding(module)
    with torch.no_grad():
        export_hf.onnx_export(module, args, path, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    if external:  # all weights in NAME.onnx_data, as transformers.js writes large models
        model = onnx.load(path)
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + "_data", size_threshold=0)


def _variants(path, size):
    """NAME_fp16.onnx (float16 weights and arithmetic, float32 IO) and NAME_quantized.onnx
    (onnxruntime's dynamic int8 quantization) beside NAME.onnx."""
    import numpy as np
    from onnxruntime.quantization import QuantType, quantize_dynamic

    stem = path[: -len(".onnx")]
    parity = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    cos = export_hf.half_precision(path, stem + "_fp16.onnx", parity)
    quantize_dynamic(path, stem + "_quantized.onnx", weight_type=QuantType.QUInt8)
    return cos


def _config(model, repo, drop=()):
    cfg = model.config.to_dict()
    for k in drop:
        cfg.pop(k, None)
    with open(os.path.join(repo, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def build(root, work):
    """Writes every repo under ROOT/ORG/NAME and returns {repo id: (reference fn, arch)}: the
    reference maps a list of PIL images to torch embeddings (before normalisation)."""
    import torch
    import transformers as T

    refs = {}
    axes_img = {"pixel_values": {0: "batch"}}

    # CLIP: both towers, transformers.js layout, fp16 + quantized image variants.
    repo = os.path.join(root, "tiny-hub", "clip")
    model, proc = test_export.tiny("clip")
    src = os.path.join(work, "src-clip")
    test_export.tiny_tokenizer(src)
    for k, v in (("eos_token_id", 3), ("bos_token_id", 2), ("pad_token_id", 0)):
        setattr(model.config.text_config, k, v)
    model.eval()
    os.makedirs(repo, exist_ok=True)
    proc.save_pretrained(repo)
    _config(model, repo)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, f)):  # transformers 5 writes no special_tokens_map.json
            shutil.copy(os.path.join(src, f), repo)

    class ClipVision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            out = self.m.vision_model(pixel_values=pixel_values)
            return export_hf.features(self.m.get_image_features(pixel_values=pixel_values)), out.last_hidden_state

    class ClipText(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            out = self.m.text_model(input_ids=input_ids, attention_mask=attention_mask)
            emb = export_hf.features(self.m.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
            return emb, out.last_hidden_state

    x = torch.zeros(2, 3, 64, 64)
    vision = os.path.join(repo, "onnx", "vision_model.onnx")
    _export(ClipVision(model).eval(), (x,), vision, ["pixel_values"], ["image_embeds", "last_hidden_state"], axes_img)
    ids = torch.tensor([[2, 5, 6, 3]])
    _export(ClipText(model).eval(), (ids, torch.ones_like(ids)), os.path.join(repo, "onnx", "text_model.onnx"),
            ["input_ids", "attention_mask"], ["text_embeds", "last_hidden_state"],
            {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}})
    _variants(vision, 64)
    refs["tiny-hub/clip"] = (lambda imgs, m=model, p=proc: export_hf.features(
        m.get_image_features(pixel_values=p(images=imgs, return_tensors="pt")["pixel_values"])), "clip", model, src)

    # SigLIP: both towers, the image tower's weights in vision_model.onnx_data.
    repo = os.path.join(root, "tiny-hub", "siglip")
    model, proc = test_export.tiny("siglip")
    src = os.path.join(work, "src-siglip")
    test_export.tiny_tokenizer(src)
    for k, v in (("eos_token_id", 3), ("bos_token_id", 2), ("pad_token_id", 0)):
        setattr(model.config.text_config, k, v)
    model.eval()
    os.makedirs(repo, exist_ok=True)
    proc.save_pretrained(repo)
    _config(model, repo)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, f)):  # transformers 5 writes no special_tokens_map.json
            shutil.copy(os.path.join(src, f), repo)

    class SiglipVision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            out = self.m.vision_model(pixel_values=pixel_values)
            return export_hf.features(self.m.get_image_features(pixel_values=pixel_values)), out.last_hidden_state

    class SiglipText(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            out = self.m.text_model(input_ids=input_ids)
            return export_hf.features(self.m.get_text_features(input_ids=input_ids)), out.last_hidden_state

    _export(SiglipVision(model).eval(), (x,), os.path.join(repo, "onnx", "vision_model.onnx"), ["pixel_values"],
            ["pooler_output", "last_hidden_state"], axes_img, external=True)
    ids = torch.tensor([[2, 5, 6, 3] + [0] * 28])
    _export(SiglipText(model).eval(), (ids,), os.path.join(repo, "onnx", "text_model.onnx"), ["input_ids"],
            ["pooler_output", "last_hidden_state"], {"input_ids": {0: "batch", 1: "tokens"}})
    refs["tiny-hub/siglip"] = (lambda imgs, m=model, p=proc: export_hf.features(
        m.get_image_features(pixel_values=p(images=imgs, return_tensors="pt")["pixel_values"])), "siglip", model, src)

    # ViT with its pooler, an older repo's processor config (feature_extractor_type, int size).
    repo = os.path.join(root, "tiny-hub", "vit-old-config")
    torch.manual_seed(0)
    cfg = T.ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37)
    model = T.ViTModel(cfg).eval()
    proc = T.ViTImageProcessor(size={"height": 64, "width": 64})
    os.makedirs(repo, exist_ok=True)
    proc.save_pretrained(repo)
    path = os.path.join(repo, "preprocessor_config.json")
    pre = json.load(open(path))
    pre.pop("image_processor_type", None)
    pre["feature_extractor_type"] = "ViTFeatureExtractor"
    pre["size"] = 64
    json.dump(pre, open(path, "w"), indent=2)
    _config(model, repo)

    class Both(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            out = self.m(pixel_values)
            return out.last_hidden_state, out.pooler_output

    _export(Both(model).eval(), (x,), os.path.join(repo, "onnx", "model.onnx"), ["pixel_values"],
            ["last_hidden_state", "pooler_output"], axes_img)
    refs["tiny-hub/vit-old-config"] = (lambda imgs, m=model, p=proc: m(
        p(images=imgs, return_tensors="pt")["pixel_values"]).last_hidden_state[:, 0], "vit", model, None)

    # DINOv2 (BitImageProcessor: shortest edge, centre crop), weights in model.onnx_data.
    repo = os.path.join(root, "tiny-hub", "dinov2")
    model, proc = test_export.tiny("dinov2")
    model.eval()
    os.makedirs(repo, exist_ok=True)
    proc.save_pretrained(repo)
    _config(model, repo)
    _export(Both(model).eval(), (torch.zeros(2, 3, 56, 56),), os.path.join(repo, "onnx", "model.onnx"),
            ["pixel_values"], ["last_hidden_state", "pooler_output"], axes_img, external=True)
    refs["tiny-hub/dinov2"] = (lambda imgs, m=model, p=proc: m(
        p(images=imgs, return_tensors="pt")["pixel_values"]).last_hidden_state[:, 0], "dinov2", model, None)

    # A CNN in fastembed's layout: ResNet, ConvNext processor (shortest edge / crop_pct, crop).
    repo = os.path.join(root, "tiny-hub", "resnet-fastembed")
    torch.manual_seed(0)
    cfg = T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic")
    model = T.ResNetModel(cfg).eval()
    for m in model.modules():  # HF's init would make a random CNN's features vanish (see test_export.tiny)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    proc = T.ConvNextImageProcessor(size={"shortest_edge": 56}, crop_pct=0.875, resample=3)
    os.makedirs(repo, exist_ok=True)
    proc.save_pretrained(repo)
    _config(model, repo)
    _export(Both(model).eval(), (torch.zeros(2, 3, 56, 56),), os.path.join(repo, "model.onnx"), ["pixel_values"],
            ["last_hidden_state", "pooler_output"], axes_img)
    refs["tiny-hub/resnet-fastembed"] = (lambda imgs, m=model, p=proc: m(
        p(images=imgs, return_tensors="pt")["pixel_values"]).pooler_output.flatten(1), "resnet", model, None)

    # A repo with weights only (no ONNX), and a gated copy of the ViT repo.
    repo = os.path.join(root, "tiny-hub", "safetensors-only")
    os.makedirs(repo, exist_ok=True)
    T.ViTModel(cfg_vit := T.ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=37)).save_pretrained(repo)
    del cfg_vit
    shutil.copytree(os.path.join(root, "tiny-hub", "vit-old-config"), os.path.join(root, "tiny-hub", "gated"))
    return refs
